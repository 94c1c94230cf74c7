"""Decoding speed of a GLM-Base-shaped model: blank filling with the memory cache vs full
recomputation, and beam search throughput.

    python bench/bench_generation.py                       # GLM-Base shape, this CPU
    python bench/bench_generation.py --new-tokens 64 --recompute-stride 8 --layers 2   # quick look

* Blank filling: a ``--context`` token context is encoded once, then ``--new-tokens`` tokens are
  generated greedily at one ``[MASK]`` (end tokens disabled, so exactly that many), each step feeding
  one token through the memory (``glm.generation.sample_block``): the key/value cache the library
  uses by default, and the model's own hidden-state memory (the original's way).  The baseline recomputes
  the whole sequence (context + ``sop`` + tokens so far, Part A bidirectional, Part B causal) for
  every new token.  Recomputation is slow, so by default only every ``--recompute-stride``-th step
  is timed and the total is integrated over all steps (trapezoid rule over sequence length; step
  time is smooth in the length); ``--recompute-stride 1`` times every step.
* Beam search: ``--beams`` beams, ``--beam-new-tokens`` steps (no early end), batch ``--beam-batch``
  contexts of ``--context`` tokens through ``glm.generation.generate``; sequences/s.
Random weights (throughput does not depend on them); eval mode, fp32 unless ``--dtype``.
"""

import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import machine, print_table, shape_parser, sync  # noqa: E402
from glm.generation import DecodeConfig, KVCacheModel, generate, model_step, sample_block  # noqa: E402
from glm.model import GLMModel  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SOP = 4


def build(args):
    torch.manual_seed(0)
    model = GLMModel(num_layers=args.layers, vocab_size=args.vocab, hidden_size=args.hidden,
                     num_attention_heads=args.heads, embedding_dropout_prob=0.0, attention_dropout_prob=0.0,
                     output_dropout_prob=0.0, max_sequence_length=args.seq, max_memory_length=args.seq - 1,
                     checkpoint_activations=False, parallel_output=False, block_position_encoding=True)
    return model.to(device=args.device, dtype=DTYPES[args.dtype]).eval()


def context_inputs(args, batch=1):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(10, args.vocab - 200, (batch, args.context), generator=g)
    ids[:, 0] = 1
    mask_position = args.context // 2
    ids[:, mask_position] = 2
    positions = torch.stack([torch.arange(args.context), torch.zeros(args.context, dtype=torch.long)])
    positions = positions.unsqueeze(0).expand(batch, -1, -1).contiguous()
    return ids.to(args.device), positions.to(args.device), mask_position


@torch.no_grad()
def with_memory(model, args, kv_cache=True):
    """Blank filling the library's way: the context once, then one token per step, through the
    key/value cache (default) or the model's own hidden-state memory."""
    model = KVCacheModel(model) if kv_cache else model
    ids, positions, mask_position = context_inputs(args)
    config = DecodeConfig(max_new_tokens=args.new_tokens, top_k=1, end_ids=(), num_tokens=args.vocab - 64)
    sync()
    start = time.perf_counter()
    _, *mems = model(ids, positions, torch.tensor([args.context], device=args.device))
    mask = torch.tensor([mask_position], device=args.device)
    logits, mems = model_step(model, torch.tensor([SOP], device=args.device), mask, 1, mems)
    out, _ = sample_block(model, logits, mems, mask, 2, config)
    sync()
    elapsed = time.perf_counter() - start
    assert len(out[0]) == args.new_tokens
    return elapsed, out[0]


@torch.no_grad()
def recompute_step(model, args, ids, mask_position, block):
    """One full recomputation: context + sop + block tokens so far; returns (time, next id)."""
    n = 1 + len(block)
    tokens = torch.cat([ids[0], torch.tensor([SOP] + block, device=args.device)]).unsqueeze(0)
    pos = torch.cat([torch.arange(args.context), torch.full((n,), mask_position)])
    block_pos = torch.cat([torch.zeros(args.context, dtype=torch.long), torch.arange(1, n + 1)])
    positions = torch.stack([pos, block_pos]).unsqueeze(0).to(args.device)
    sync()
    start = time.perf_counter()
    logits, *_ = model(tokens, positions, torch.tensor([args.context], device=args.device))
    token = int(logits[0, -1, :args.vocab - 64].argmax())
    sync()
    return time.perf_counter() - start, token


def recompute(model, args, reference_tokens):
    """Time of generating ``new_tokens`` by full recomputation (timed at every stride-th step,
    integrated over all steps).  Also checks the recomputed ids agree with the memory path."""
    ids, _, mask_position = context_inputs(args)
    steps = list(range(0, args.new_tokens, args.recompute_stride))
    if steps[-1] != args.new_tokens - 1:
        steps.append(args.new_tokens - 1)
    timed = {}
    agree = 0
    for step in steps:
        elapsed, token = recompute_step(model, args, ids, mask_position, reference_tokens[:step])
        timed[step] = elapsed
        agree += token == reference_tokens[step]
    total = 0.0
    for a, b in zip(steps, steps[1:]):
        total += (timed[a] + timed[b]) / 2 * (b - a)
    total += timed[steps[0]]  # trapezoid covers steps[0]..steps[-1] as intervals; count the first step too
    return total, agree, len(steps)


@torch.no_grad()
def beam_throughput(model, args):
    ids, positions, mask_position = context_inputs(args, args.beam_batch)
    batch = args.beam_batch
    tokens = torch.cat([ids, torch.full((batch, 1), SOP, device=args.device)], dim=1)
    last = torch.tensor([mask_position, 1], device=args.device).view(1, 2, 1).expand(batch, -1, -1)
    positions = torch.cat([positions, last], dim=2)
    sep = torch.full((batch,), args.context, device=args.device)
    config = DecodeConfig(max_new_tokens=args.beam_new_tokens, num_beams=args.beams, length_penalty=1.0,
                          end_ids=(), num_tokens=args.vocab - 64)
    sync()
    start = time.perf_counter()
    out, _ = generate(model, tokens, positions, sep, config)
    sync()
    elapsed = time.perf_counter() - start
    assert all(len(o) == args.beam_new_tokens for o in out)
    return elapsed


def main():
    parser = shape_parser(__doc__, tuple(DTYPES))
    parser.add_argument("--context", type=int, default=128, help="context tokens (default 128)")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--recompute-stride", type=int, default=16)
    parser.add_argument("--beams", type=int, default=5)
    parser.add_argument("--beam-new-tokens", type=int, default=32)
    parser.add_argument("--beam-batch", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.context + args.new_tokens + 1 > args.seq - 1:
        args.seq = args.context + args.new_tokens + 2  # the memory must hold the whole block
    print(f"machine: {machine()}")
    print(f"model: {args.layers} layers, hidden {args.hidden}, {args.heads} heads, vocab {args.vocab}, "
          f"{args.seq} positions, {args.dtype}; context {args.context} tokens")
    model = build(args)
    with_memory(model, args)  # warm-up (small allocations, thread pools)
    mem_time, tokens = with_memory(model, args)
    print(f"key/value cache: {args.new_tokens} tokens in {mem_time:.2f} s")
    hidden_time, hidden_tokens = with_memory(model, args, kv_cache=False)
    print(f"model's hidden-state memory: {args.new_tokens} tokens in {hidden_time:.2f} s "
          f"(same ids as the key/value cache: {hidden_tokens == tokens})")
    full_time, agree, timed = recompute(model, args, tokens)
    print(f"full recomputation: {full_time:.2f} s (integrated from {timed} timed steps; {agree}/{timed} "
          "recomputed ids equal the memory path's)")
    beam_time = beam_throughput(model, args)
    print(f"beam search: {args.beam_batch} sequences x {args.beams} beams x {args.beam_new_tokens} tokens in "
          f"{beam_time:.2f} s")
    rows = [
        ["blank filling, key/value cache", f"{args.new_tokens}", f"{args.new_tokens / mem_time:.1f} tok/s", "1.0x"],
        ["blank filling, hidden-state memory", f"{args.new_tokens}", f"{args.new_tokens / hidden_time:.1f} tok/s",
         f"{mem_time / hidden_time:.3f}x"],
        ["blank filling, full recomputation", f"{args.new_tokens}", f"{args.new_tokens / full_time:.1f} tok/s",
         f"{mem_time / full_time:.3f}x"],
        ["speed-up: key/value cache vs recomputation", "", f"{full_time / mem_time:.1f}x", ""],
        ["speed-up: hidden-state memory vs recomputation", "", f"{full_time / hidden_time:.1f}x", ""],
        [f"beam search ({args.beams} beams)", f"{args.beam_new_tokens}", f"{args.beam_batch / beam_time:.3f} seq/s",
         f"{args.beam_batch * args.beam_new_tokens / beam_time:.1f} tok/s"],
    ]
    print_table("Generation throughput (" + machine() + ")", ["what", "new tokens", "throughput", "relative"], rows)


if __name__ == "__main__":
    main()
