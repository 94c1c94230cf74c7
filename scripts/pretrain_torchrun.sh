#! /bin/bash
# Pretrain under torchrun instead of the DeepSpeed launcher (no ssh, no hostfile):
#
#   SAVE_PATH=/ckpt bash scripts/pretrain_torchrun.sh config/ds_block_large.sh [more flags]
#
# Environment: SAVE_PATH, GLM_CORPORA as for ds_pretrain_nvidia.sh; NPROC_PER_NODE (default: GPUs, or 1);
# NNODES (default 1), NODE_RANK (default 0), MASTER_ADDR/MASTER_PORT for several nodes; MP_SIZE.
# The DeepSpeed engine still runs when the config passes --deepspeed (it needs no launcher of its own).
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bash scripts/pretrain_torchrun.sh CONFIG.sh [extra pretrain_glm.py flags]" >&2
    exit 2
fi
config=$(realpath "$1"); shift
cd "$(dirname "$0")/.."
NPROC_PER_NODE=${NPROC_PER_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l)}
[ "$NPROC_PER_NODE" -gt 0 ] || NPROC_PER_NODE=1
export MP_SIZE=${MP_SIZE:-1}
# shellcheck source=/dev/null
source "$config"
# shellcheck disable=SC2086
exec torchrun --nnodes "${NNODES:-1}" --node-rank "${NODE_RANK:-0}" --nproc-per-node "$NPROC_PER_NODE" \
    --master-addr "${MASTER_ADDR:-127.0.0.1}" --master-port "${MASTER_PORT:-29500}" \
    pretrain_glm.py $gpt_options "$@"
