#! /bin/bash
# GLM-Base (110M), English, BERT base uncased vocabulary.
# Released checkpoint folder: ${CHECKPOINT_PATH}/glm-base-blank (the unpacked archive, holding mp_rank_00_model_states.pt).
MODEL_TYPE="blocklm-base"
MODEL_ARGS="--block-lm \
            --num-layers 12 \
            --hidden-size 768 \
            --num-attention-heads 12 \
            --max-position-embeddings 512 \
            --tokenizer-model-type bert-base-uncased \
            --tokenizer-type BertWordPieceTokenizer \
            --load-pretrained ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the folder holding the released checkpoints}/glm-base-blank"
