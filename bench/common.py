"""Helpers shared by the benchmarks: a measured matmul peak, timing, machine description."""

import argparse
import os
import platform
import statistics
import time

import torch


def machine():
    """One line naming the machine and thread count the figures were taken on."""
    cpu = platform.processor() or platform.machine()
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    return f"{os.cpu_count()}-core {cpu} CPU, {torch.get_num_threads()} threads (torch {torch.__version__})"


# Dense bf16/fp16 tensor-core peaks (no sparsity), spec/performance.md.
NOMINAL_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def nominal_peak():
    """The vendor's dense half-precision peak of the current GPU, or None."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in NOMINAL_PEAKS.items() if k in name), None)


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def measure_matmul_peak(dtype=torch.float32, size=2048, repeats=5, device="cpu"):
    """Achieved FLOP/s of a large square matmul in ``dtype``: the peak MFU is measured against."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    for _ in range(2):
        a @ b
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / min(times)


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_table(title, header, rows, right_aligned_from=None):
    """A short fixed-width table; benchmarks print one last.  Columns from index
    ``right_aligned_from`` on (figures) are right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    first_right = len(widths) if right_aligned_from is None else right_aligned_from
    line = "  ".join(("{:>%d}" if i >= first_right else "{:<%d}") % w for i, w in enumerate(widths))
    print()
    print(title)
    print(line.format(*header))
    print(line.format(*["-" * w for w in widths]))
    for row in rows:
        print(line.format(*row))


def shape_parser(description, dtypes=("fp32", "bf16", "fp16")):
    """Argument parser with the model-shape options every model benchmark takes (GLM-Base defaults)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--vocab", type=int, default=30592)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", choices=list(dtypes), default="fp32")
    return parser


def glm_config(argv, **updates):
    """GLM flags parsed as the entry points parse them, as the typed configuration the library takes;
    ``updates`` replace fields by name (``vocab_size=50048``)."""
    from glm.arguments import get_args
    from glm.config import build_config

    config = build_config(get_args(list(argv)))
    return config.updated(**updates) if updates else config
