#! /bin/bash
# GLM-Large (335M), English, BERT large uncased vocabulary.
# Released checkpoint folder: ${CHECKPOINT_PATH}/glm-large-blank (the unpacked archive, holding mp_rank_00_model_states.pt).
MODEL_TYPE="blocklm-large"
MODEL_ARGS="--block-lm \
            --num-layers 24 \
            --hidden-size 1024 \
            --num-attention-heads 16 \
            --max-position-embeddings 512 \
            --tokenizer-model-type bert-large-uncased \
            --tokenizer-type BertWordPieceTokenizer \
            --load-pretrained ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the folder holding the released checkpoints}/glm-large-blank"
