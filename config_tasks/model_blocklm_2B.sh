#! /bin/bash
# GLM-2B: 36 layers x 2048, GPT-2 BPE, task masks.
# Released checkpoint folder: ${CHECKPOINT_PATH}/glm-2b (the unpacked archive, holding mp_rank_00_model_states.pt).
MODEL_TYPE="blocklm-2B"
MODEL_ARGS="--block-lm \
            --num-layers 36 \
            --hidden-size 2048 \
            --num-attention-heads 32 \
            --max-position-embeddings 1024 \
            --tokenizer-type GPT2BPETokenizer \
            --task-mask \
            --cloze-eval \
            --load-pretrained ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the folder holding the released checkpoints}/glm-2b"
