"""Evaluation throughput of WikiText-style sliding-window perplexity on a GLM-Base-shaped model.

    python bench/bench_lm_eval.py                        # 12 layers, 768, 12 heads, vocab 30592, this CPU
    python bench/bench_lm_eval.py --windows 16 --batch 8 --seq 1024 --stride 256 --device cuda --dtype bf16

A synthetic document (random ids) is cut into windows exactly as ``--task wikitext`` does
(``tasks.language_model.dataset.LMDataset``: ``--seq`` = ``--seq-length``, ``--stride`` =
``--overlapping-eval``) and scored with the evaluator (``tasks.scoring.score_samples``) one window at
a time ("plain") and ``--batch`` windows per forward ("batched").  Scored tokens/s counts the
tokens whose loss enters the perplexity; processed tokens/s counts every input position.
"""

import os
import sys
from types import SimpleNamespace

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import machine, median_time, print_table, shape_parser  # noqa: E402
from glm.model import GLMModel  # noqa: E402
from tasks.language_model.dataset import LMDataset  # noqa: E402
from tasks.scoring import score_samples  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
BERT_COMMANDS = {"ENC": 101, "MASK": 103, "gMASK": 103, "sop": 30522, "eos": 0, "pad": 0}


class CommandIds:
    def get_command(self, name):
        return SimpleNamespace(Id=BERT_COMMANDS[name])


def main():
    parser = shape_parser(__doc__)
    parser.set_defaults(batch=4, repeats=1)
    parser.add_argument("--stride", type=int, default=256, help="--overlapping-eval")
    parser.add_argument("--windows", type=int, default=6, help="windows per timed pass")
    parser.add_argument("--unidirectional", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = GLMModel(num_layers=args.layers, vocab_size=args.vocab, hidden_size=args.hidden,
                     num_attention_heads=args.heads, embedding_dropout_prob=0.0, attention_dropout_prob=0.0,
                     output_dropout_prob=0.0, max_sequence_length=args.seq, max_memory_length=0,
                     checkpoint_activations=False, parallel_output=False, block_position_encoding=True)
    model = model.to(args.device, DTYPES[args.dtype]).eval()

    # A document long enough for --windows windows: first window seq-1 tokens, then stride each.
    length = args.seq - 1 + (args.windows - 1) * args.stride
    document = torch.randint(1000, 30000, (length,), generator=torch.Generator().manual_seed(0)).tolist()
    flags = SimpleNamespace(seq_length=args.seq, overlapping_eval=args.stride, block_lm=True,
                            unidirectional=args.unidirectional, task_mask=False, no_block_position=False)
    dataset = LMDataset(flags, [document], CommandIds(), length, length)
    samples = [dataset[i] for i in range(len(dataset))]
    scored = sum(int(s["loss_mask"].sum()) for s in samples)
    processed = sum(len(s["text"]) for s in samples)

    rows = []
    for name, batch in (("plain", 1), ("batched", args.batch)):
        run = lambda: score_samples(model, samples, batch_size=batch, device=args.device)  # noqa: E731
        run()  # warm-up
        seconds = median_time(run, args.repeats)
        rows.append([name, batch, len(samples), f"{seconds:.2f}", f"{scored / seconds:,.0f}",
                     f"{processed / seconds:,.0f}"])
    print(f"machine: {machine()}")
    print(f"model: {args.layers} layers, hidden {args.hidden}, {args.heads} heads, vocab {args.vocab}, {args.dtype}; "
          f"--seq-length {args.seq} --overlapping-eval {args.stride}"
          f"{' --unidirectional' if args.unidirectional else ''}; {scored} scored / {processed} processed tokens")
    print_table("WikiText-style perplexity evaluation",
                ["mode", "batch", "windows", "seconds", "scored tok/s", "processed tok/s"], rows)


if __name__ == "__main__":
    main()
