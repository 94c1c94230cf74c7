#! /bin/bash
# GLM-Large-Chinese (335M): Chinese SentencePiece with --fix-command-token (needs cog-pretrain.model via GLM_VOCAB_DIR).
# Released checkpoint folder: ${CHECKPOINT_PATH}/glm-large-chinese (the unpacked archive, holding mp_rank_00_model_states.pt).
MODEL_TYPE="blocklm-large-chinese"
MODEL_ARGS="--block-lm \
            --num-layers 24 \
            --hidden-size 1024 \
            --num-attention-heads 16 \
            --max-position-embeddings 1024 \
            --tokenizer-type ChineseSPTokenizer \
            --fix-command-token \
            --task-mask \
            --cloze-eval \
            --load-pretrained ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the folder holding the released checkpoints}/glm-large-chinese"
