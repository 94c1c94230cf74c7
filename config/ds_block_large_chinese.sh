#! /bin/bash
# GLM-Large-Chinese (335M): Chinese SentencePiece (cog-pretrain.model via GLM_VOCAB_DIR), all three objectives.
# Sourced by scripts/ds_pretrain_nvidia.sh (or scripts/pretrain_torchrun.sh); defines $gpt_options.
# Paths come from the environment: SAVE_PATH (checkpoints are written under it), and the corpus
# registry named by GLM_CORPORA (docs/data.md) that maps the --train-data names to files.
script_path=$(realpath "${BASH_SOURCE[0]}")
script_dir=$(dirname "$script_path")
config_json="$script_dir/config_block_large_chinese.json"
# shellcheck source=common.sh
source "$script_dir/common.sh"

gpt_options=" \
       --block-lm \
       --task-mask \
       --bert-prob 0.4 \
       --gap-sentence-prob 0.3 \
       --avg-block-length 3 \
       --gpt-min-ratio 0.25 \
       --block-mask-prob 0.1 \
       --short-seq-prob 0.02 \
       --experiment-name blocklm-large-chinese \
       --num-layers 24 \
       --hidden-size 1024 \
       --num-attention-heads 16 \
       --seq-length 512 \
       --max-position-embeddings 1024 \
       --tokenizer-type ChineseSPTokenizer \
       --fix-command-token \
       --train-iters 250000 \
       --lr-decay-style cosine \
       --lr-decay-iters 200000 \
       --lr-decay-ratio 0.1 \
       --warmup .04 \
       --train-data wudao baike zhihu \
       --no-lazy-loader \
       ${common_options}"
