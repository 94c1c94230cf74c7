#! /bin/bash
# GLM-10B-Chinese: Chinese SentencePiece WITHOUT --fix-command-token ([gMASK] and eop share id 50007, as the released model was trained).
# Released checkpoint folder: ${CHECKPOINT_PATH}/glm-10b-chinese (the unpacked archive, holding mp_rank_00_model_states.pt).
MODEL_TYPE="blocklm-10B-chinese"
MODEL_ARGS="--block-lm \
            --num-layers 48 \
            --hidden-size 4096 \
            --num-attention-heads 64 \
            --max-position-embeddings 1024 \
            --tokenizer-type ChineseSPTokenizer \
            --task-mask \
            --cloze-eval \
            --load-pretrained ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the folder holding the released checkpoints}/glm-10b-chinese"
