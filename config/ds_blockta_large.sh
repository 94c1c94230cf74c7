#! /bin/bash
# GLM-RoBERTa (335M): RoBERTa BPE vocabulary (needs roberta-vocab.json/merges via GLM_VOCAB_DIR), task masks.
# Sourced by scripts/ds_pretrain_nvidia.sh (or scripts/pretrain_torchrun.sh); defines $gpt_options.
# Paths come from the environment: SAVE_PATH (checkpoints are written under it), and the corpus
# registry named by GLM_CORPORA (docs/data.md) that maps the --train-data names to files.
script_path=$(realpath "${BASH_SOURCE[0]}")
script_dir=$(dirname "$script_path")
config_json="$script_dir/config_blockta_large.json"
# shellcheck source=common.sh
source "$script_dir/common.sh"

gpt_options=" \
       --block-lm \
       --task-mask \
       --bert-prob 1.0 \
       --experiment-name blocklm-roberta-large-blank \
       --num-layers 24 \
       --hidden-size 1024 \
       --num-attention-heads 16 \
       --seq-length 512 \
       --max-position-embeddings 512 \
       --tokenizer-type GPT2BPETokenizer \
       --tokenizer-model-type roberta \
       --train-iters 500000 \
       --lr-decay-style linear \
       --lr-decay-iters 500000 \
       --lr-decay-ratio 0.025 \
       --warmup .06 \
       --train-data wikibook cc-news openwebtext \
       --shuffle \
       ${common_options}"
