#! /bin/bash
# GLM-Base (110M): 12 layers, BERT base uncased vocabulary, token-span blanks.
# Sourced by scripts/ds_pretrain_nvidia.sh (or scripts/pretrain_torchrun.sh); defines $gpt_options.
# Paths come from the environment: SAVE_PATH (checkpoints are written under it), and the corpus
# registry named by GLM_CORPORA (docs/data.md) that maps the --train-data names to files.
script_path=$(realpath "${BASH_SOURCE[0]}")
script_dir=$(dirname "$script_path")
config_json="$script_dir/config_block_base.json"
# shellcheck source=common.sh
source "$script_dir/common.sh"

gpt_options=" \
       --block-lm \
       --bert-prob 1.0 \
       --experiment-name blocklm-base-blank \
       --num-layers 12 \
       --hidden-size 768 \
       --num-attention-heads 12 \
       --seq-length 512 \
       --max-position-embeddings 512 \
       --tokenizer-type BertWordPieceTokenizer \
       --tokenizer-model-type bert-base-uncased \
       --train-iters 150000 \
       --lr-decay-style cosine \
       --lr-decay-iters 120000 \
       --lr-decay-ratio 0.05 \
       --warmup .05 \
       --train-data bert-base \
       ${common_options}"
