#! /bin/bash
# GLM-RoBERTa (335M): RoBERTa BPE vocabulary (needs roberta-vocab.json and roberta-merges.txt via GLM_VOCAB_DIR).
# Released checkpoint folder: ${CHECKPOINT_PATH}/glm-roberta-large-blank (the unpacked archive, holding mp_rank_00_model_states.pt).
MODEL_TYPE="blocklm-roberta-large"
MODEL_ARGS="--block-lm \
            --num-layers 24 \
            --hidden-size 1024 \
            --num-attention-heads 16 \
            --max-position-embeddings 512 \
            --tokenizer-model-type roberta \
            --tokenizer-type GPT2BPETokenizer \
            --cloze-eval \
            --load-pretrained ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the folder holding the released checkpoints}/glm-roberta-large-blank"
