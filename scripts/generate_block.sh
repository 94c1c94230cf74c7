#! /bin/bash
# Fill blanks interactively with a released (or your own) GLM model:
#
#   CHECKPOINT_PATH=/ckpts bash scripts/generate_block.sh config_tasks/model_blocklm_large.sh [more flags]
#
# Any config_tasks/model_blocklm_*.sh works (it sets MODEL_ARGS, including --load-pretrained under
# $CHECKPOINT_PATH).  Extra flags go to generate_samples.py, e.g. `--input-file contexts.txt
# --output-file results.jsonl` for batch mode, or `--num-beams 5 --length-penalty 1` for beam search.
# Environment: CHECKPOINT_PATH (required by the configs), MP_SIZE (tensor-parallel processes, default 1),
# MAXSEQLEN (--out-seq-length, default 512), PYTHON (default python), GLM_VOCAB_DIR (vocabulary files).
# The original's flags: --fp16 (applies on GPU; CPU runs stay fp32), --out-seq-length 512,
# --seq-length 512, --temperature 0.9, --top-k 40.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash scripts/generate_block.sh config_tasks/model_blocklm_XXX.sh [extra generate_samples.py flags]" >&2
    exit 2
fi
config=$(realpath "$1"); shift
cd "$(dirname "$0")/.."
MP_SIZE=${MP_SIZE:-1}
MAXSEQLEN=${MAXSEQLEN:-512}
# shellcheck source=/dev/null
source "$config"
if [ -z "${MODEL_ARGS:-}" ]; then
    echo "generate_block.sh: $config did not set MODEL_ARGS" >&2
    exit 2
fi
if [ "$MP_SIZE" -gt 1 ]; then
    launcher=(torchrun --nproc-per-node "$MP_SIZE" --master-port "${MASTER_PORT:-29500}")
else
    launcher=("${PYTHON:-python}")
fi
# shellcheck disable=SC2086
exec "${launcher[@]}" generate_samples.py \
    --DDP-impl none \
    --model-parallel-size "$MP_SIZE" \
    $MODEL_ARGS \
    --fp16 \
    --cache-dir cache \
    --out-seq-length "$MAXSEQLEN" \
    --seq-length 512 \
    --temperature 0.9 \
    --top-k 40 \
    --top-p 0 \
    "$@"
