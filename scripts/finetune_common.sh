#! /bin/bash
# Sourced by the finetuning launchers: reads MODEL_CONFIG.sh and TASK_CONFIG.sh (the first two
# arguments), leaves the remaining arguments in EXTRA_ARGS, and sets
#   N_GPU      ranks to launch (default: the visible GPUs, or 1 CPU process),
#   PRECISION  --fp16 on GPUs (as the released scripts), nothing on CPU,
#   SAVE_ARGS  --save $SAVE_PATH when SAVE_PATH is set (checkpoints go to $SAVE_PATH/<experiment>),
#   TASK_FLAGS the finetune_glm.py flags every launcher passes (task, data, experiment, summary dir).
# Paths come from the environment: CHECKPOINT_PATH (model configs), DATA_ROOT (task configs).
if [ $# -lt 2 ]; then
    echo "usage: bash $0 MODEL_CONFIG.sh TASK_CONFIG.sh [extra finetune_glm.py flags]" >&2
    exit 2
fi
model_config=$(realpath "$1"); task_config=$(realpath "$2"); shift 2
EXTRA_ARGS=("$@")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=/dev/null
source "$model_config"
# shellcheck source=/dev/null
source "$task_config"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    N_GPU=${N_GPU:-$(nvidia-smi -L | wc -l)}
    PRECISION="--fp16"
else
    N_GPU=${N_GPU:-1}
    PRECISION=""
fi
SAVE_ARGS=""
if [ -n "${SAVE_PATH:-}" ]; then SAVE_ARGS="--save ${SAVE_PATH}"; fi
TASK_FLAGS=(--finetune --experiment-name "$EXPERIMENT_NAME" --task "$TASK_NAME" --data-dir "$DATA_PATH"
            --summary-dir "${SUMMARY_DIR:-.}")
export N_GPU PRECISION SAVE_ARGS
