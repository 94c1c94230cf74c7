"""Pretraining-step throughput and MFU: plain engine vs DeepSpeed engine, side by side.

    python bench/bench_pretrain.py                                   # GLM-Base shape, seq 512, CPU fp32
    python bench/bench_pretrain.py --device cuda --dtype bf16 --layers 24 --hidden 1024 --heads 16 --batch 8

A step is a full optimizer step (forward, loss, backward, clipping, AdamW) of ``pretrain_glm.py``'s
engines on a fixed GLM batch (85% Part A).  The engines are timed alternately in one process.  MFU is
model FLOPs (``glm.model.flops_per_token``) per second over the device peak: the vendor's dense bf16
figure on known GPUs, else a matmul measured in the same run.  ``--profile`` prints the top operators.
"""

import json
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import (glm_config, machine, measure_matmul_peak, median_time, nominal_peak,  # noqa: E402
                          print_table, shape_parser)
from glm.learning_rates import get_learning_rate_scheduler  # noqa: E402
from glm.model import flops_per_token  # noqa: E402
from glm.training.distributed import initialize_distributed  # noqa: E402
from glm.training.engines import build_engine  # noqa: E402
from glm.training.losses import language_model_loss  # noqa: E402
from glm.training.model_setup import build_model, build_optimizer  # noqa: E402
from glm.training.seed import set_random_seed  # noqa: E402


def engine_args(opts, deepspeed, config_dir):
    argv = ["--block-lm", "--num-layers", str(opts.layers), "--hidden-size", str(opts.hidden),
            "--num-attention-heads", str(opts.heads), "--seq-length", str(opts.seq),
            "--max-position-embeddings", str(opts.seq), "--batch-size", str(opts.batch), "--train-iters", "1000",
            "--lr", "1e-4", "--warmup", "0.01", "--attention-backend", opts.backend]
    if opts.checkpoint_activations:
        argv.append("--checkpoint-activations")
    if opts.compile:
        argv.append("--compile")
    if opts.no_dropout:
        argv += ["--hidden-dropout", "0", "--attention-dropout", "0"]
    if opts.dtype == "bf16":
        argv.append("--bf16")
    elif opts.dtype == "fp16":
        argv.append("--fp16")
    if deepspeed:
        config = {"train_micro_batch_size_per_gpu": opts.batch, "gradient_accumulation_steps": 1,
                  "gradient_clipping": 1.0, "zero_optimization": {"stage": opts.zero_stage},
                  "zero_allow_untested_optimizer": True, "steps_per_print": 10 ** 9,
                  "bf16": {"enabled": opts.dtype == "bf16"}, "fp16": {"enabled": opts.dtype == "fp16"}}
        path = os.path.join(config_dir, "ds.json")
        with open(path, "w") as f:
            json.dump(config, f)
        argv += ["--deepspeed", "--deepspeed_config", path]
    return glm_config(argv, vocab_size=opts.vocab)


def fixed_batch(opts, device):
    g = torch.Generator().manual_seed(0)
    seq, batch = opts.seq, opts.batch
    sep = int(seq * 0.85)
    text = torch.randint(0, opts.vocab, (batch, seq), generator=g)
    positions = torch.arange(seq).clamp(max=sep - 1).expand(batch, -1)
    block = (torch.arange(seq) - sep + 1).clamp(min=0).expand(batch, -1)
    loss_mask = (torch.arange(seq) >= sep).long().expand(batch, -1)
    data = {"text": text, "target": torch.roll(text, -1, 1), "loss_mask": loss_mask,
            "position_id": torch.stack([positions, block], 1), "attention_mask": torch.full((batch,), sep)}
    return {k: v.to(device) for k, v in data.items()}


def main():
    parser = shape_parser(__doc__)
    parser.add_argument("--zero-stage", type=int, default=0)
    parser.add_argument("--backend", default="auto", help="attention backend of the model")
    parser.add_argument("--checkpoint-activations", action="store_true")
    parser.add_argument("--no-deepspeed", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile every transformer layer")
    parser.add_argument("--no-dropout", action="store_true", help="dropout off (FlexAttention has none)")
    parser.add_argument("--profile", action="store_true", help="print the top operators of the plain engine")
    opts = parser.parse_args()

    config_dir = tempfile.mkdtemp()
    first = engine_args(opts, deepspeed=not opts.no_deepspeed, config_dir=config_dir)
    device, _ = initialize_distributed(first)  # a one-rank process group when DeepSpeed is benchmarked
    batch = fixed_batch(opts, device)
    engines = {}
    for label, use_ds in (("plain engine", False), ("DeepSpeed engine", True)):
        if use_ds and opts.no_deepspeed:
            continue
        config = engine_args(opts, use_ds, config_dir)
        set_random_seed(1234)
        model = build_model(config, device)
        engines[label] = build_engine(config, model, lambda m, a=config: build_optimizer(a, m),
                                      lambda o, a=config: get_learning_rate_scheduler(o, a), device)
    for engine in engines.values():
        for _ in range(2):
            engine.train_batch([batch], language_model_loss)
    if opts.profile:
        from torch.profiler import ProfilerActivity, profile
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        with profile(activities=activities) as prof:
            for _ in range(3):
                engines["plain engine"].train_batch([batch], language_model_loss)
            if device.type == "cuda":
                torch.cuda.synchronize()
        key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=25))
    times = {label: [] for label in engines}
    for _ in range(opts.repeats):
        for label, engine in engines.items():
            times[label].append(median_time(lambda e=engine: e.train_batch([batch], language_model_loss), 1))
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[opts.dtype]
    peak = nominal_peak() or measure_matmul_peak(dtype, size=8192 if device.type == "cuda" else 2048,
                                                 device=device.type)
    peak_label = "vendor dense peak" if nominal_peak() else f"measured {opts.dtype} matmul peak"
    tokens = opts.batch * opts.seq
    fpt = flops_per_token(opts.layers, opts.hidden, opts.vocab, opts.seq)
    medians = {label: sorted(t)[len(t) // 2] for label, t in times.items()}
    base = medians["plain engine"]
    rows = [[label, f"{s * 1000:.1f}", f"{tokens / s:,.0f}", f"{fpt * tokens / s / 1e12:.3f}",
             f"{100 * fpt * tokens / s / peak:.1f}%", f"{s / base:.2f}"] for label, s in medians.items()]
    print_table(f"pretraining step (fwd+bwd+AdamW), {opts.layers}x{opts.hidden}x{opts.heads}, vocab {opts.vocab}, "
                f"seq {opts.seq}, batch {opts.batch}, {opts.dtype}, ZeRO stage {opts.zero_stage} for DeepSpeed, "
                f"attention {opts.backend}{', compiled layers' if opts.compile else ''}{', no dropout' if opts.no_dropout else ''}, on {machine()}; MFU against the {peak_label} {peak / 1e12:.1f} TFLOP/s",
                ["engine", "ms/step", "tokens/s", "TFLOP/s", "MFU", "time ratio"], rows)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
