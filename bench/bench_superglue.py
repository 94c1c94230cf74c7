"""Evaluation throughput of a multi-token cloze task (COPA-shaped) with and without ``--fast-decode``.

    python bench/bench_superglue.py                         # GLM-Base shape, --seq-length 256, this CPU
    python bench/bench_superglue.py --examples 64 --batch 16 --device cuda --dtype bf16

Synthetic COPA examples (premise, two choices) are written in the SuperGLUE JSON-lines format and read
by ``SuperGlueDataset`` with the BERT vocabulary (pattern 0, as ``task_copa.sh``).  The same GLM is
evaluated through ``GLMForMultiTokenCloze`` (one full sequence per choice) and through
``GLMForMultiTokenClozeFast`` (the context encoded once, each choice decoded against its memory), with
the finetuning driver's evaluation (``tasks.eval_utils.predict_choices``).  The two must agree on
every prediction; the table gives examples/s of each.
"""

import json
import os
import random
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import glm_config, machine, median_time, print_table, shape_parser  # noqa: E402
from data_utils.tokenizers import configure_tokenizer  # noqa: E402
from glm.training.model_setup import build_task_model  # noqa: E402
from tasks.batching import collate_choices  # noqa: E402
from tasks.eval_utils import predict_choices  # noqa: E402
from tasks.superglue.dataset import SuperGlueDataset  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
WORDS = ("the man woman child dog cat car house river city rain sun wind road door window book letter friend "
         "teacher doctor market garden kitchen morning evening winter summer ran walked fell opened closed broke "
         "found lost bought sold cried laughed slept woke quickly slowly loudly quietly").split()


def sentence(rng, length):
    return " ".join(rng.choice(WORDS) for _ in range(length)).capitalize() + "."


def write_copa(folder, count, seed=0):
    """``count`` COPA-format examples with premises of 10-30 words and choices of 4-10 words."""
    rng = random.Random(seed)
    with open(os.path.join(folder, "val.jsonl"), "w") as f:
        for i in range(count):
            record = {"premise": sentence(rng, rng.randint(10, 30)), "choice1": sentence(rng, rng.randint(4, 10)),
                      "choice2": sentence(rng, rng.randint(4, 10)), "question": rng.choice(["cause", "effect"]),
                      "label": rng.randint(0, 1), "idx": i}
            f.write(json.dumps(record) + "\n")


def main():
    parser = shape_parser(__doc__)
    parser.set_defaults(seq=256, batch=8, repeats=2)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    options = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="bench-copa-")
    write_copa(folder, options.examples)
    base = ["--finetune", "--cloze-eval", "--block-lm", "--task", "copa", "--data-dir", folder,
            "--tokenizer-type", "BertWordPieceTokenizer", "--tokenizer-model-type", "bert-large-uncased",
            "--num-layers", str(options.layers), "--hidden-size", str(options.hidden),
            "--num-attention-heads", str(options.heads), "--max-position-embeddings", str(options.seq),
            "--seq-length", str(options.seq), "--pattern-id", "0"]
    device = torch.device(options.device)
    rows, predictions, state = [], {}, None
    for name, extra in (("GLMForMultiTokenCloze", []), ("GLMForMultiTokenClozeFast (--fast-decode)", ["--fast-decode"])):
        config = glm_config(base + extra)
        tokenizer, config = configure_tokenizer(config)
        dataset = SuperGlueDataset(config, "dev", tokenizer)
        torch.manual_seed(0)
        head = build_task_model(config, None, "multiple_choice", multi_token=True)
        glm = head.model
        if state is None:
            state = {k: v.clone() for k, v in glm.state_dict().items()}
        glm.load_state_dict(state)   # the same weights under both heads
        head = head.to(device, DTYPES[options.dtype]).eval()
        run = lambda: predict_choices(head, dataset, options.batch, device, collate_choices)  # noqa: E731
        predictions[name] = run()[0]   # warm-up, and the predictions to compare
        seconds = median_time(run, options.repeats)
        rows.append([name, len(dataset), options.batch, f"{seconds:.2f}", f"{len(dataset) / seconds:.2f}"])
    first, fast = list(predictions.values())
    agree = sum(a == b for a, b in zip(first, fast))
    speedup = float(rows[0][3]) / float(rows[1][3])
    print(f"machine: {machine()}")
    print(f"model: {options.layers} layers, hidden {options.hidden}, {options.heads} heads, BERT vocabulary, "
          f"{options.dtype}; COPA pattern 0, --seq-length {options.seq}, 2 choices per example")
    print(f"predictions identical in {agree}/{len(first)} examples; fast decode speed-up {speedup:.2f}x")
    print_table("COPA-shaped evaluation", ["head", "examples", "batch", "seconds", "examples/s"], rows)


if __name__ == "__main__":
    main()
