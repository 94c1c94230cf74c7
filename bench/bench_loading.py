"""Peak host memory of loading a checkpoint: into bf16 and fp32 models, change_mp.py and the
Hugging Face export, on a GLM-2B-shaped random fp16 checkpoint (36 layers, hidden 2048, 32 heads,
vocabulary 50304: about 3.9 GB).

    python bench/bench_loading.py                       # all measurements, ~5 minutes, ~12 GB free RAM
    python bench/bench_loading.py --layers 12           # a third of the layers (for the old path)
    python bench/bench_loading.py --before /tmp/glm-old --only load   # the same with another checkout's code
    python bench/bench_loading.py --layers 2 --hidden 128 --vocab 1024   # smoke run

Each measurement runs in a fresh subprocess that reports its own peak resident set
(``VmHWM``, which counts mapped checkpoint pages that were touched) and its resident memory
after the imports.  The loading path is the one generate_samples.py and zero-shot evaluation take:
``build_model(..., on_meta=True, dtype=...)`` then ``load_pretrained_weights``; with ``--before``
the code of another checkout is measured the way it loaded then (a randomly initialised fp32 model,
the checkpoint read in full, then cast).  The requirement: peak <= 1.3 x the loaded model.
The checkpoint is written to a temporary folder and deleted at the end.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 1024 ** 3


def _rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _model_args(layers, hidden, heads, vocab):
    from bench.common import glm_config
    return glm_config(["--block-lm", "--num-layers", str(layers), "--hidden-size", str(hidden),
                       "--num-attention-heads", str(heads), "--max-position-embeddings", "1024",
                       "--seq-length", "512", "--vocab-size", str(vocab)])


def child_make(path, layers, hidden, heads, vocab):
    import torch
    from glm.checkpoint import save_model_checkpoint
    from glm.training.model_setup import build_model
    args = _model_args(layers, hidden, heads, vocab)
    model = build_model(args, on_meta=True)
    g = torch.Generator().manual_seed(0)
    module = {}
    for key, value in model.state_dict().items():
        module[key] = (torch.randn(value.shape, generator=g) * 0.02).half()
    save_model_checkpoint(path, "release", {"module": module, "iteration": 0})
    return {"bytes": sum(t.numel() * t.element_size() for t in module.values())}


def child_load(path, layers, hidden, heads, vocab, dtype_name, before):
    import torch
    from glm.checkpoint import load_pretrained_weights
    from glm.training.model_setup import build_model
    args = _model_args(layers, hidden, heads, vocab)
    dtype = getattr(torch, dtype_name)
    baseline = _rss_bytes()
    if before:
        # What generate_samples.py / zero-shot evaluation did: an fp32 model with random weights,
        # the checkpoint loaded into it, then the cast.
        model = build_model(args, parallel_output=False)
        load_pretrained_weights(model, path, log=lambda *a: None)
        model = model.to(dtype)
    else:
        model = build_model(args, on_meta=True, dtype=dtype, parallel_output=False)
        load_pretrained_weights(model, path, log=lambda *a: None)
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return {"baseline": baseline, "model_bytes": model_bytes}


def child_change_mp(path, out):
    from glm.checkpoint.change_mp import change_model_parallel
    import glm.model  # noqa: F401
    baseline = _rss_bytes()
    change_model_parallel(path, 2, output_dir=out, log=lambda *a: None)
    return {"baseline": baseline}


def child_hf_export(path, out, heads):
    from glm.checkpoint.hf_export import export_to_hf
    baseline = _rss_bytes()
    export_to_hf(path, out, num_attention_heads=heads, log=lambda *a: None)
    return {"baseline": baseline}


def _child(argv, code_root):
    env = dict(os.environ, PYTHONPATH=code_root, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps(argv)],
                            capture_output=True, text=True, env=env, cwd=code_root)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _run_child(argv):
    kind, *rest = argv
    out = {"make": child_make, "load": child_load, "change_mp": child_change_mp, "hf_export": child_hf_export}[kind](*rest)
    # VmHWM: the peak of this process image (ru_maxrss would carry over a larger parent's peak across exec).
    with open("/proc/self/status") as f:
        out["peak"] = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) * 1024
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=36)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--vocab", type=int, default=50304)
    parser.add_argument("--before", default=None, metavar="CHECKOUT",
                        help="measure the loading code of another checkout (e.g. a `git archive` of an older commit)")
    parser.add_argument("--only", choices=("load", "change_mp", "hf_export"), action="append",
                        help="measure only these (repeatable; default: all)")
    parser.add_argument("--workdir", default=None, help="where the temporary checkpoint goes (default: /tmp)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, os.getcwd())
        _run_child(json.loads(args.child))
        return
    only = set(args.only or ("load", "change_mp", "hf_export"))
    shape = [args.layers, args.hidden, args.heads, args.vocab]
    work = tempfile.mkdtemp(prefix="glm-bench-loading-", dir=args.workdir)
    rows = []
    try:
        ckpt = os.path.join(work, "ckpt")
        size = _child(["make", ckpt, *shape], ROOT)["bytes"]
        print(f"checkpoint: {args.layers} layers, hidden {args.hidden}, vocab {args.vocab}: "
              f"{size / GIB:.2f} GiB fp16", flush=True)
        if "load" in only:
            for dtype in ("bfloat16", "float32"):
                code = args.before or ROOT
                r = _child(["load", ckpt, *shape, dtype, bool(args.before)], code)
                rows.append((f"load into {dtype}" + (" (before)" if args.before else ""), r["model_bytes"], r))
        if "change_mp" in only and not args.before:
            r = _child(["change_mp", ckpt, os.path.join(work, "mp2")], ROOT)
            rows.append(("change_mp.py 1 -> 2", size, r))
            shutil.rmtree(os.path.join(work, "mp2"), ignore_errors=True)
        if "hf_export" in only and not args.before:
            r = _child(["hf_export", ckpt, os.path.join(work, "hf"), args.heads], ROOT)
            rows.append(("Hugging Face export", size, r))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'what':32} {'reference GiB':>14} {'after imports':>14} {'peak GiB':>9} {'peak/ref':>9}")
    for name, reference, r in rows:
        print(f"{name:32} {reference / GIB:14.2f} {r['baseline'] / GIB:14.2f} {r['peak'] / GIB:9.2f} "
              f"{r['peak'] / reference:9.2f}")


if __name__ == "__main__":
    main()
