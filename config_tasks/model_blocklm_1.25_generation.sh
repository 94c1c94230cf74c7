#! /bin/bash
# GLM-410M: 30 layers x 1024, BERT large uncased vocabulary.
# Released checkpoint folder: ${CHECKPOINT_PATH}/glm-1.25-generation (the unpacked archive, holding mp_rank_00_model_states.pt).
MODEL_TYPE="blocklm-1.25-generation"
MODEL_ARGS="--block-lm \
            --num-layers 30 \
            --hidden-size 1024 \
            --num-attention-heads 16 \
            --max-position-embeddings 512 \
            --tokenizer-model-type bert-large-uncased \
            --tokenizer-type BertWordPieceTokenizer \
            --cloze-eval \
            --load-pretrained ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the folder holding the released checkpoints}/glm-1.25-generation"
