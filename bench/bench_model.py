"""Forward+backward throughput of a GLM-Base-shaped model, beside a Hugging Face model of the
same shape, and the SDPA attention path beside the reference path.

    python bench/bench_model.py                  # GLM-Base shape, seq 512, this CPU
    python bench/bench_model.py --device cuda --dtype bf16 --layers 24 --hidden 1024 --heads 16

Needs ``pip install transformers`` for the Hugging Face column (skipped with a note otherwise).
Each step is forward, loss and backward (no optimizer).  The models are timed alternately in the
same process so machine noise hits them alike; the table reports medians and the ratio.
MFU = model FLOPs (``glm.model.flops_per_token``) / a matmul peak measured in the same run.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import shape_parser, machine, measure_matmul_peak, median_time, nominal_peak, print_table  # noqa: E402
from glm import mpu  # noqa: E402
from glm.model import GLMModel, flops_per_token  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_glm(args, backend):
    torch.manual_seed(0)
    model = GLMModel(num_layers=args.layers, vocab_size=args.vocab, hidden_size=args.hidden,
                     num_attention_heads=args.heads, embedding_dropout_prob=0.1, attention_dropout_prob=0.1,
                     output_dropout_prob=0.1, max_sequence_length=args.seq, max_memory_length=0,
                     checkpoint_activations=False, block_position_encoding=True, attention_backend=backend)
    return model.to(args.device).train()


def build_hf(args):
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except Exception as err:  # not installed, or broken beside this torch
        print(f"Hugging Face comparison skipped: cannot import transformers ({type(err).__name__}: {err}); "
              "pip install transformers")
        return None
    config = GPT2Config(vocab_size=args.vocab, n_positions=args.seq, n_embd=args.hidden, n_layer=args.layers,
                        n_head=args.heads, n_inner=4 * args.hidden, activation_function="gelu_new",
                        layer_norm_epsilon=1e-5, resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1,
                        tie_word_embeddings=True, bos_token_id=None, eos_token_id=None)
    torch.manual_seed(0)
    return GPT2LMHeadModel(config).to(args.device).train()


def glm_batch(args):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g).to(args.device)
    positions = torch.arange(args.seq).expand(args.batch, -1)
    # A GLM pretraining-like layout: Part A of 85% of the sequence, then Part B.
    sep = torch.full((args.batch,), int(args.seq * 0.85))
    block = (torch.arange(args.seq) >= sep[0]).long().cumsum(0).expand(args.batch, -1)
    pos = torch.stack([positions, block], dim=1).to(args.device)
    return ids, pos, sep.to(args.device)


def glm_step(model, batch, dtype, device):
    ids, pos, sep = batch

    def step():
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype != torch.float32):
            logits = model(ids, pos, sep)[0]
            loss = mpu.vocab_parallel_cross_entropy(logits, ids).mean()
        loss.backward()
        model.zero_grad(set_to_none=True)
    return step


def hf_step(model, batch, dtype, device):
    ids = batch[0]

    def step():
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype != torch.float32):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
    return step


def main():
    parser = shape_parser(__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference attention path")
    args = parser.parse_args()
    dtype = DTYPES[args.dtype]

    batch = glm_batch(args)
    runs = {"GLM (SDPA attention)": glm_step(build_glm(args, "sdpa"), batch, dtype, args.device)}
    if not args.no_reference:
        runs["GLM (reference attention)"] = glm_step(build_glm(args, "reference"), batch, dtype, args.device)
    hf = build_hf(args)
    if hf is not None:
        runs["HF transformers GPT-2, same shape"] = hf_step(hf, batch, dtype, args.device)

    for step in runs.values():  # warm-up (allocator, oneDNN/cuBLAS kernel selection)
        step()
    times = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, step in runs.items():
            times[name].append(median_time(step, 1))
    peak = measure_matmul_peak(dtype, size=8192 if args.device == "cuda" else 2048, device=args.device)
    tokens = args.batch * args.seq
    fpt = flops_per_token(args.layers, args.hidden, args.vocab, args.seq)
    medians = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    base = medians["GLM (SDPA attention)"]
    nominal = nominal_peak()
    rows = []
    for name, seconds in medians.items():
        flops = fpt * tokens / seconds
        row = [name, f"{seconds * 1000:.1f}", f"{tokens / seconds:,.0f}", f"{flops / 1e9:,.1f}",
               f"{100 * flops / peak:.1f}%"]
        if nominal:
            row.append(f"{100 * flops / nominal:.1f}%")
        rows.append(row + [f"{seconds / base:.2f}"])
    print_table(
        f"forward+backward, {args.layers} layers x {args.hidden} hidden x {args.heads} heads, vocab {args.vocab}, "
        f"seq {args.seq}, batch {args.batch}, {args.dtype}, on {machine()}; measured {args.dtype} matmul peak "
        f"{peak / 1e9:,.0f} GFLOP/s; ratio = time / GLM-SDPA time (>1 means slower than GLM)",
        ["model", "ms/step", "tokens/s", "GFLOP/s", "MFU (measured peak)"]
        + (["MFU (nominal dense peak)"] if nominal else []) + ["ratio"], rows)


if __name__ == "__main__":
    main()
