#! /bin/bash
# GLM-10B continued at sequence 1024 from the 512-token checkpoint.
# Sourced by scripts/ds_pretrain_nvidia.sh (or scripts/pretrain_torchrun.sh); defines $gpt_options.
# Paths come from the environment: SAVE_PATH (checkpoints are written under it), and the corpus
# registry named by GLM_CORPORA (docs/data.md) that maps the --train-data names to files.
script_path=$(realpath "${BASH_SOURCE[0]}")
script_dir=$(dirname "$script_path")
config_json="$script_dir/config_block_10B_longer.json"
# shellcheck source=common.sh
source "$script_dir/common.sh"

gpt_options=" \
       --block-lm \
       --task-mask \
       --bert-prob 0.4 \
       --gap-sentence-prob 0.3 \
       --single-span-prob 0.05 \
       --avg-block-length 3 \
       --gpt-min-ratio 0.25 \
       --block-mask-prob 0.1 \
       --short-seq-prob 0.5 \
       --experiment-name blocklm-10b-longer \
       --num-layers 48 \
       --hidden-size 4096 \
       --num-attention-heads 64 \
       --seq-length 1024 \
       --max-position-embeddings 1024 \
       --tokenizer-type GPT2BPETokenizer \
       --load ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the 512-token GLM-10B checkpoint to continue from} \
       --no-load-lr-scheduler \
       --train-iters 50000 \
       --lr-decay-style linear \
       --lr-decay-iters 50000 \
       --lr-decay-ratio 0.1 \
       --warmup .005 \
       --train-data pile cc-news \
       --filter-english \
       ${common_options}"
