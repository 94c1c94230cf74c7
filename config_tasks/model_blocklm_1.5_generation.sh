#! /bin/bash
# GLM-515M: 30 layers x 1152, BERT large uncased vocabulary.
# Released checkpoint folder: ${CHECKPOINT_PATH}/glm-1.5-generation (the unpacked archive, holding mp_rank_00_model_states.pt).
MODEL_TYPE="blocklm-1.5-generation"
MODEL_ARGS="--block-lm \
            --num-layers 30 \
            --hidden-size 1152 \
            --num-attention-heads 18 \
            --max-position-embeddings 512 \
            --tokenizer-model-type bert-large-uncased \
            --tokenizer-type BertWordPieceTokenizer \
            --cloze-eval \
            --load-pretrained ${CHECKPOINT_PATH:?set CHECKPOINT_PATH to the folder holding the released checkpoints}/glm-1.5-generation"
