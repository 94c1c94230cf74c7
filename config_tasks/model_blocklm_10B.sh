#! /bin/bash
# GLM-10B: 48 layers x 4096, GPT-2 BPE, task masks.
# Released checkpoint folder: ${CHECKPOINT_PATH}/glm-10b-1024 (the unpacked archive, holding mp_rank_00_model_states.pt).
MODEL_TYPE="blocklm-10B"
MODEL_ARGS="--block-lm \
            --num-layers 48 \
            --hidden-size 4096 \
            --num-attention-heads 64 \
            --max-position-embeddings 1024 \
            --tokenizer-type GPT2BPETokenizer \
            --task-mask \
            --cloze-eval \
            --load-pretrained ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the folder holding the released checkpoints}/glm-10b-1024"
