#! /bin/bash
# Pretrain with the DeepSpeed launcher, as the original:
#
#   SAVE_PATH=/ckpt GLM_CORPORA=corpora.json bash scripts/ds_pretrain_nvidia.sh config/ds_block_large.sh [more flags]
#
# Environment (nothing is hard-coded):
#   SAVE_PATH            where checkpoints go (required by the configs)
#   GLM_CORPORA          corpus registry mapping --train-data names to files (docs/data.md)
#   NUM_WORKERS          nodes (default 1); with more than one, HOST_FILE_PATH is required
#   NUM_GPUS_PER_WORKER  GPUs per node (default: all that nvidia-smi lists)
#   HOST_FILE_PATH       DeepSpeed hostfile ("host slots=N" lines): required for several nodes, used when set
#   MP_SIZE              tensor model-parallel size (default 1)
#   MASTER_PORT          rendezvous port (default: random in 10000-65535)
# Extra arguments after the config are appended to its flags (argparse keeps the last occurrence).
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash scripts/ds_pretrain_nvidia.sh CONFIG.sh [extra pretrain_glm.py flags]" >&2
    exit 2
fi
config=$(realpath "$1"); shift
cd "$(dirname "$0")/.."

NUM_WORKERS=${NUM_WORKERS:-1}
NUM_GPUS_PER_WORKER=${NUM_GPUS_PER_WORKER:-$(nvidia-smi -L 2>/dev/null | wc -l)}
[ "$NUM_GPUS_PER_WORKER" -gt 0 ] || NUM_GPUS_PER_WORKER=1
MP_SIZE=${MP_SIZE:-1}
MASTER_PORT=${MASTER_PORT:-$(shuf -n 1 -i 10000-65535)}
export MP_SIZE

# shellcheck source=/dev/null
source "$config"

hostfile_args=()
if [ "$NUM_WORKERS" -gt 1 ] || [ -n "${HOST_FILE_PATH:-}" ]; then
    hostfile_args=(--hostfile "${HOST_FILE_PATH:?set HOST_FILE_PATH to a DeepSpeed hostfile when NUM_WORKERS > 1}")
fi
export NCCL_DEBUG=${NCCL_DEBUG:-warn} NCCL_IB_DISABLE=${NCCL_IB_DISABLE:-0} NCCL_NET_GDR_LEVEL=${NCCL_NET_GDR_LEVEL:-2}

mkdir -p logs
log="logs/$(basename "$config" .sh)-$(date +%m-%d-%H-%M).log"
# shellcheck disable=SC2086  # $gpt_options is a whitespace-separated flag list by design
set -x
deepspeed --master_port "$MASTER_PORT" --num_nodes "$NUM_WORKERS" --num_gpus "$NUM_GPUS_PER_WORKER" \
    "${hostfile_args[@]}" pretrain_glm.py $gpt_options "$@" 2>&1 | tee "$log"
