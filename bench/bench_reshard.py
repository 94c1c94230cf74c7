"""Time and peak memory of ``change_mp.py`` on a GLM-Large-shaped random checkpoint, 1 -> 4 -> 1.

    python bench/bench_reshard.py                      # 24 layers x 1024, vocab 30592, fp16 (~0.7 GB)
    python bench/bench_reshard.py --dtype fp32         # ~1.4 GB
    python bench/bench_reshard.py --layers 2 --hidden 128 --vocab 1024   # quick smoke run

Every reshard runs in a fresh subprocess that reports its own peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and its resident memory just before the reshard
starts (after ``import torch``), so "peak - baseline" is what the reshard itself needed.  Tensor
storage is allocated outside Python's allocator, so ``tracemalloc`` (also reported) only sees
the Python-side bookkeeping.  The requirement checked: peak - baseline < 2 x checkpoint size.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DTYPES = {"fp16": "float16", "fp32": "float32", "bf16": "bfloat16"}


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def worker(src, target, out):
    import torch  # noqa: F401  (counted in the baseline, like the model code the layout is read from)
    import glm.model  # noqa: F401
    from glm.checkpoint.change_mp import change_model_parallel
    baseline = _rss_kib()
    tracemalloc.start()
    start = time.perf_counter()
    change_model_parallel(src, target, output_dir=out, log=lambda *a: None)
    seconds = time.perf_counter() - start
    _, py_peak = tracemalloc.get_traced_memory()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "baseline_kib": baseline, "peak_kib": peak, "tracemalloc_peak": py_peak}))


def make_checkpoint(path, layers, hidden, vocab, max_seq, dtype):
    import torch
    from glm.checkpoint import save_model_checkpoint
    from glm.checkpoint.reshard import partition_map
    from glm.model import GLMModel
    with torch.device("meta"):
        model = GLMModel(num_layers=layers, vocab_size=vocab, hidden_size=hidden, num_attention_heads=16,
                         embedding_dropout_prob=0.1, attention_dropout_prob=0.1, output_dropout_prob=0.1,
                         max_sequence_length=max_seq, max_memory_length=0, checkpoint_activations=False,
                         block_position_encoding=True)
    assert partition_map(model)
    g = torch.Generator().manual_seed(0)
    module = {k: torch.randn(v.shape, generator=g, dtype=getattr(torch, dtype))
              for k, v in model.state_dict().items()}
    save_model_checkpoint(path, "release", {"module": module, "iteration": 0})
    return sum(t.numel() * t.element_size() for t in module.values())


def _run(src, target, out):
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", src, str(target), out],
                            capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=30592)
    parser.add_argument("--max-seq", type=int, default=512)
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp16")
    parser.add_argument("--workdir", default=None, help="where to write the checkpoints (default: a temp dir)")
    parser.add_argument("--worker", nargs=3, metavar=("SRC", "TARGET", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.worker[2])
        return
    import torch
    workdir = tempfile.mkdtemp(prefix="bench_reshard-", dir=args.workdir)
    try:
        src = os.path.join(workdir, "glm")
        size = make_checkpoint(src, args.layers, args.hidden, args.vocab, args.max_seq, DTYPES[args.dtype])
        print(f"checkpoint: {args.layers} layers x {args.hidden}, vocab {args.vocab}, {args.dtype}: "
              f"{size / 2**20:.0f} MiB of tensors; {os.cpu_count()} CPUs, torch {torch.__version__}")
        print(f"{'step':<10}{'seconds':>9}{'peak RSS':>12}{'baseline':>11}{'peak-base':>12}{'/ ckpt':>8}{'tracemalloc':>13}")
        ok = True
        for name, source, target, out in (("1 -> 4", src, 4, src + "_MP4"), ("4 -> 1", src + "_MP4", 1, src + "_MP1")):
            r = _run(source, target, out)
            used = (r["peak_kib"] - r["baseline_kib"]) * 1024
            ok &= used < 2 * size
            print(f"{name:<10}{r['seconds']:>9.2f}{r['peak_kib'] / 2**10:>9.0f} MiB{r['baseline_kib'] / 2**10:>8.0f} MiB"
                  f"{used / 2**20:>9.0f} MiB{used / size:>8.2f}{r['tracemalloc_peak'] / 2**20:>10.1f} MiB")
        final = torch.load(os.path.join(src + "_MP1", "release", "mp_rank_00_model_states.pt"), mmap=True,
                           weights_only=True)["module"]
        first = torch.load(os.path.join(src, "release", "mp_rank_00_model_states.pt"), mmap=True,
                           weights_only=True)["module"]
        same = all(torch.equal(first[k], final[k]) for k in first)
        print(f"round trip bit-exact: {same}; peak below 2x checkpoint size: {ok}")
        if not (same and ok):
            sys.exit(1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
