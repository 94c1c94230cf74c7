#!/usr/bin/env bash
# The embedded default run: on a fresh machine, set up the environment, train a SentencePiece tokenizer
# on the built-in King James Bible corpus, pretrain a small GLM with all three blank-infilling objectives
# (token spans, sentences, document [gMASK]), save a checkpoint and print per-mode validation loss and
# perplexity.  About ten minutes on 2 CPU cores, faster with a GPU.
#
#   bash scripts/demo.sh                                       # everything under runs/demo
#   DEMO_DIR=/tmp/x bash scripts/demo.sh --train-iters 100     # extra flags go to pretrain_glm.py
#   DEMO_CORPUS=/path/to/corpus.jsonl bash scripts/demo.sh     # your own corpus (one {"text": ...} per line,
#                                                              # see docs/data.md); tokenizer trained on it too
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh requirements.txt
PY="${GLM_VENV:-.venv}/bin/python"
OUT="${DEMO_DIR:-runs/demo}"
CORPUS="${DEMO_CORPUS:-kjv}"
mkdir -p "$OUT"

echo "== tokenizer: SentencePiece (8000 pieces) trained on $CORPUS"
"$PY" scripts/train_tokenizer.py --corpus "$CORPUS" --vocab-size 8000 --output "$OUT/tokenizer"

echo "== pretraining a 4-layer GLM (hidden 256) on $CORPUS"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
"$PY" pretrain_glm.py \
    --block-lm --task-mask --bert-prob 0.5 --gap-sentence-prob 0.3 --gpt-min-ratio 0.25 --avg-block-length 3 \
    --train-data "$CORPUS" --split 949,50,1 \
    --tokenizer-type SentencePieceTokenizer --tokenizer-path "$OUT/tokenizer.model" \
    --num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256 --max-position-embeddings 256 \
    --batch-size 8 --train-iters 350 --lr 1e-3 --warmup 0.02 --lr-decay-style cosine --lr-decay-ratio 0.1 \
    --weight-decay 0.01 --clip-grad 1.0 --log-interval 25 --eval-interval 100 --eval-iters 10 \
    --save "$OUT/checkpoints" --save-interval 175 --experiment-name demo --num-workers 1 --seed 1234 \
    --resume-dataloader "$@"

echo "== filling blanks with the model just trained: [MASK] a short span, [sMASK] a sentence, [gMASK] the rest"
CKPT="$(ls -d "$OUT"/checkpoints/demo-* | sort | tail -n 1)"
printf '%s\n' \
    "In the beginning God created the [MASK] and the earth." \
    "And God said, Let there be light: and there was light. [sMASK] And the evening and the morning were the first day." \
    "And the LORD spake unto Moses, saying, [gMASK]" |
"$PY" generate_samples.py \
    --block-lm --task-mask --tokenizer-type SentencePieceTokenizer --tokenizer-path "$OUT/tokenizer.model" \
    --num-layers 4 --hidden-size 256 --num-attention-heads 4 --seq-length 256 --max-position-embeddings 256 \
    --load-pretrained "$CKPT" --out-seq-length 40 --temperature 0.9 --top-k 40 --seed 1234 \
    --samples-dir "$OUT/samples"
echo
