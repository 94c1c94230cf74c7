#! /bin/bash
# GLM-10B-Chinese continued at sequence 1024.
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
       --bert-prob 0.5 \
       --gap-sentence-prob 0.3 \
       --avg-block-length 3 \
       --gpt-min-ratio 0.25 \
       --block-mask-prob 0.1 \
       --short-seq-prob 0.5 \
       --experiment-name blocklm-10b-chinese-longer \
       --num-layers 48 \
       --hidden-size 4096 \
       --num-attention-heads 64 \
       --seq-length 1024 \
       --max-position-embeddings 1024 \
       --tokenizer-type ChineseSPTokenizer \
       --load ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the 512-token GLM-10B-Chinese checkpoint to continue from} \
       --no-load-lr-scheduler \
       --train-iters 20000 \
       --lr-decay-style cosine \
       --lr-decay-iters 20000 \
       --lr-decay-ratio 0.1 \
       --warmup .025 \
       --train-data wudao baike zhihu \
       ${common_options}"
