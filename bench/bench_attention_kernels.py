"""Forward + backward of GLM's attention alone, per kernel, the measurement behind ``AUTO_KERNELS``.

    OMP_NUM_THREADS=2 python bench/bench_attention_kernels.py            # both shapes, fp32 and bf16
    OMP_NUM_THREADS=2 python bench/bench_attention_kernels.py --rounds 9

For each shape (GLM-Base: batch 2, 12 heads, sequence 512, head 64; the demo's: batch 8, 4 heads,
sequence 256), dtype and attention dropout (0.1 or off), the ``sdpa``, ``reference`` and ``explicit``
kernels run on the same separator mask (separator at 85% of the sequence) through
``attend_in_two_parts``, as a training step runs them, one call each in turn per round (so a shared
machine's slow moments hit them alike); the table gives medians and the kernel ``auto`` runs.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.common import machine, print_table  # noqa: E402
from glm.model import attention as attn  # noqa: E402
from glm.model.dropout import Dropout  # noqa: E402

SHAPES = {"GLM-Base": (2, 12, 512, 64), "demo": (8, 4, 256, 64)}
KERNELS = ("sdpa", "reference", "explicit")


def separator_mask(batch, length):
    sep = int(length * 0.85)
    rows, columns = torch.arange(length).view(-1, 1), torch.arange(length).view(1, -1)
    mask = (columns <= rows) | (columns < sep)
    return mask.expand(batch, 1, length, length), (sep, sep)


def kernel_calls(dropout):
    """Each kernel with the mask in the form it takes (``explicit``'s bias is built once per forward, as
    the transformer does, and sliced by ``attend_in_two_parts`` like the boolean mask)."""
    drop = Dropout(dropout)
    return {"sdpa": lambda q, k, v, m: attn.sdpa_attention(q, k, v, m, dropout),
            "reference": lambda q, k, v, m: attn.reference_attention(q, k, v, m, drop),
            "explicit": lambda q, k, v, bias: attn.explicit_attention(q, k, v, bias, dropout)}


def measure(shape, dtype, dropout, rounds):
    batch, heads, length, head_dim = shape
    mask, prefix = separator_mask(batch, length)
    torch.manual_seed(0)
    query, key, value = (torch.randn(batch, heads, length, head_dim, dtype=dtype, requires_grad=True)
                         for _ in range(3))
    calls = kernel_calls(dropout)
    times = {name: [] for name in calls}
    for r in range(rounds + 1):           # the first round warms up
        for name, call in calls.items():
            start = time.perf_counter()
            kernel_mask = attn.additive_mask(mask, dtype) if name == "explicit" else mask
            attn.attend_in_two_parts(call, query, key, value, kernel_mask, prefix).float().sum().backward()
            if r:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    opts = parser.parse_args()
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for dropout in (0.0, 0.1):
            cells = []
            for shape in SHAPES.values():
                medians = measure(shape, dtype, dropout, opts.rounds)
                cells.append(" / ".join(f"{1000 * medians[k]:.0f}" for k in KERNELS))
            name = str(dtype).replace("torch.", "")
            rows.append([name, f"{dropout:g}", *cells, attn.AUTO_KERNELS.get(("cpu", dtype, dropout > 0), "sdpa")])
    header = ["dtype", "dropout"] + [f"{s} {'/'.join(KERNELS)} ms" for s in SHAPES] + ["auto"]
    print_table(f"attention forward + backward, {opts.rounds} rounds; {machine()}", header, rows, right_aligned_from=2)


if __name__ == "__main__":
    main()
