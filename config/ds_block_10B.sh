#! /bin/bash
# GLM-10B: 48 layers x 4096, GPT-2 BPE, all three objectives (ZeRO-2).
# Sourced by scripts/ds_pretrain_nvidia.sh (or scripts/pretrain_torchrun.sh); defines $gpt_options.
# Paths come from the environment: SAVE_PATH (checkpoints are written under it), and the corpus
# registry named by GLM_CORPORA (docs/data.md) that maps the --train-data names to files.
script_path=$(realpath "${BASH_SOURCE[0]}")
script_dir=$(dirname "$script_path")
config_json="$script_dir/config_block_10B.json"
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
       --short-seq-prob 0.02 \
       --experiment-name blocklm-10b \
       --num-layers 48 \
       --hidden-size 4096 \
       --num-attention-heads 64 \
       --seq-length 512 \
       --max-position-embeddings 1024 \
       --tokenizer-type GPT2BPETokenizer \
       --train-iters 250000 \
       --lr-decay-style cosine \
       --lr-decay-iters 175000 \
       --lr-decay-ratio 0.1 \
       --warmup .04 \
       --train-data pile cc-news \
       --filter-english \
       ${common_options}"
