"""GLM-Base pretraining step beside a same-shape Hugging Face model, fp32 and bf16, in one process (issue 18).

    OMP_NUM_THREADS=2 python bench/bench_vs_hf.py                 # GLM-Base, sequence 512, batch 2, 6 rounds
    OMP_NUM_THREADS=2 python bench/bench_vs_hf.py --baseline      # also the step as it was before issue 18
    OMP_NUM_THREADS=2 python bench/bench_vs_hf.py --profile       # top operators of one GLM step per dtype
    OMP_NUM_THREADS=2 python bench/bench_vs_hf.py --compile       # also the GLM fp32 step with --compile

GLM: the project's plain engine (``pretrain_glm.py``'s step: forward, loss, backward, clipping, AdamW) on
real blank-infilling batches from the collator with the token-span objective of ``config/ds_block_base.sh``
(``--block-lm --bert-prob 1.0``: 15% of the tokens in spans of Poisson(3) length, BERT uncased WordPiece
vocabulary padded to 30592), text packed from a corpus as the pretraining dataset does, dropout 0.1, bf16 =
``--bf16`` (autocast).  Hugging Face: ``BertForMaskedLM`` of the same shape (12 x 768, 12 heads, FFN 3072,
vocabulary 30592, ``attn_implementation="sdpa"``, dropout 0.1) on the same text with 15% of the positions
labelled, AdamW (foreach), clipping at 1.0, bf16 = ``torch.autocast``.  ``--baseline`` adds the GLM step as
it was before issue 18 (vocabulary projection at every position, so every layer at every position, SDPA
attention in one call over the whole mask, torch's dropout masks, foreach AdamW) on the same models.
``--compile`` adds "GLM fp32 compiled": the same step with ``--compile`` (every transformer layer through
``torch.compile``; its first steps, compiling, fall in the warm-up: the blank-infilling batches differ in
length, so the second one recompiles for a dynamic length).

The configurations take one step each in turn (round-robin) so that a shared machine's slow moments hit
them alike; the table gives the median, the spread (min-max) and the forward + loss + backward part
(the step less ``optimizer.step``), the positions a step runs (a GLM sample is its text plus part B: about
562 positions per 512 tokens of text here, against the MLM model's 512) and the time per position, then the
issue's targets (full steps, as the issue states them).
"""

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.bench_collator import default_corpus, packed_samples  # noqa: E402
from bench.common import glm_config, machine, print_table  # noqa: E402
from data_utils.tokenizers import configure_tokenizer  # noqa: E402
from data_utils.blocklm import build_block_strategy  # noqa: E402
from glm import mpu  # noqa: E402
from glm.learning_rates import get_learning_rate_scheduler  # noqa: E402
from glm.training.engines import PlainEngine  # noqa: E402
from glm.training.losses import language_model_loss  # noqa: E402
from glm.training.model_setup import build_model, build_optimizer  # noqa: E402
from glm.training.seed import set_random_seed  # noqa: E402

TARGETS = [("GLM fp32", "HF fp32", 1.2), ("GLM bf16", "HF bf16", 1.5), ("GLM bf16", "HF fp32", 3.5)]


def dense_projection_forward(model, batch):
    """The loss as computed before issue 18: logits at every position, masked afterwards."""
    logits = model(batch["text"], batch["position_id"], batch["attention_mask"])[0]
    losses = mpu.vocab_parallel_cross_entropy(logits, batch["target"])
    mask = batch["loss_mask"].float()
    return (losses * mask).sum() / mask.sum().clamp(min=1.0), {}


@contextlib.contextmanager
def attention_backend(model, backend):
    """Run ``model`` with another attention backend (its transformer's spec, asked at every forward)."""
    from glm.model.attention import AttentionSpec

    transformer = model.transformer
    saved = transformer.attention_spec
    transformer.attention_spec = AttentionSpec.of(backend, saved.relative)
    try:
        yield
    finally:
        transformer.attention_spec = saved


@contextlib.contextmanager
def attention_in_one_call():
    """Attention as before issue 18: one kernel call over the whole mask (no part-A split)."""
    from glm.model import attention

    saved = attention.attend_in_two_parts
    attention.attend_in_two_parts = lambda attend, query, key, value, mask, prefix: attend(query, key, value, mask)
    try:
        yield
    finally:
        attention.attend_in_two_parts = saved


@contextlib.contextmanager
def torch_dropout_masks():
    """Dropout as before issue 18: torch's ``bernoulli_`` masks instead of the cheap CPU ones."""
    from glm.model import dropout

    saved = dropout.uses_cheap_mask
    dropout.uses_cheap_mask = lambda x: False
    try:
        yield
    finally:
        dropout.uses_cheap_mask = saved


@contextlib.contextmanager
def foreach_adamw(optimizer):
    """Run ``optimizer`` with torch's foreach AdamW kernels instead of the fused ones (read per step)."""
    saved = [(g["fused"], g["foreach"]) for g in optimizer.param_groups]
    for g in optimizer.param_groups:
        g["fused"], g["foreach"] = False, True
    try:
        yield
    finally:
        for g, (fused, foreach) in zip(optimizer.param_groups, saved):
            g["fused"], g["foreach"] = fused, foreach


class OptimizerClock:
    """Seconds spent inside ``optimizer.step`` (hooks), to split a step into fwd+bwd and update."""

    def __init__(self, optimizer):
        self.seconds = 0.0
        optimizer.register_step_pre_hook(lambda *_: setattr(self, "_start", time.perf_counter()))
        optimizer.register_step_post_hook(lambda *_: setattr(self, "seconds",
                                                             self.seconds + time.perf_counter() - self._start))


def glm_engine(opts, vocab_size, bf16, compile=False):
    argv = ["--block-lm", "--num-layers", "12", "--hidden-size", "768", "--num-attention-heads", "12",
            "--seq-length", str(opts.seq), "--max-position-embeddings", str(opts.seq), "--batch-size",
            str(opts.batch), "--train-iters", "1000", "--lr", "1e-4", "--warmup", "0.01", "--weight-decay", "0.01"]
    config = glm_config(argv + (["--bf16"] if bf16 else []) + (["--compile"] if compile else []), vocab_size=vocab_size)
    set_random_seed(1234)
    device = torch.device("cpu")
    model = build_model(config, device)
    optimizer = build_optimizer(config, model)
    return PlainEngine(model, optimizer, get_learning_rate_scheduler(optimizer, config), config, device)


def hf_model(opts, vocab_size):
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(vocab_size=vocab_size, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, max_position_embeddings=opts.seq, attn_implementation="sdpa")
    torch.manual_seed(1234)
    model = BertForMaskedLM(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, foreach=True)
    return model, optimizer


def hf_batches(samples, batch_size, count, mask_id):
    """MLM batches of the same packed text: 15% of the positions labelled and replaced by [MASK]."""
    g = torch.Generator().manual_seed(0)
    batches = []
    for i in range(count):
        chunk = samples[(i * batch_size) % len(samples):][:batch_size]
        text = torch.stack([torch.as_tensor(s["text"]) for s in chunk])
        picked = torch.rand(text.shape, generator=g) < 0.15
        batches.append({"input_ids": text.masked_fill(picked, mask_id),
                        "labels": text.masked_fill(~picked, -100)})
    return batches


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per configuration first")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--corpus", type=Path, default=default_corpus())
    parser.add_argument("--baseline", action="store_true",
                        help="also time the GLM step as before issue 18 (dense projection, SDPA attention, foreach AdamW)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the GLM fp32 step with --compile (torch.compile of every transformer layer)")
    parser.add_argument("--profile", action="store_true", help="print the top operators of one GLM step per dtype")
    parser.add_argument("--json", type=Path, help="also write the step times here")
    opts = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    load_before = os.getloadavg()

    data_config = glm_config(["--block-lm", "--bert-prob", "1.0", "--seq-length", str(opts.seq),
                              "--tokenizer-type", "BertWordPieceTokenizer", "--tokenizer-model-type",
                              "bert-base-uncased"])
    tokenizer, data_config = configure_tokenizer(data_config)
    with open(opts.corpus) as f:
        documents = [tokenizer.EncodeAsIds(json.loads(line)["text"]).tokenization for line in f if line.strip()]
    count = opts.rounds + opts.warmup
    samples = packed_samples(documents, tokenizer, opts.seq, opts.batch * count)
    strategy = build_block_strategy(data_config, tokenizer)
    glm_batches = [strategy.construct_blocks([dict(s, iteration=i) for s in samples[i * opts.batch:][:opts.batch]])
                   for i in range(count)]
    part_b = statistics.mean(float(b["loss_mask"].float().mean()) for b in glm_batches)
    # A blank-infilling sample is longer than its text: part B repeats every span after a [sop] (and
    # part A keeps a [MASK] per span), so GLM runs more positions per step than the MLM model does.
    glm_positions = statistics.mean(b["text"].numel() for b in glm_batches)
    vocab = data_config.model.vocab_size
    mask_id = tokenizer.get_command("MASK").Id
    hf_data = hf_batches(samples, opts.batch, count, mask_id)

    engines = {"fp32": glm_engine(opts, vocab, False), "bf16": glm_engine(opts, vocab, True)}
    if opts.compile:
        engines["fp32 compiled"] = glm_engine(opts, vocab, False, compile=True)
    hf = {"fp32": hf_model(opts, vocab), "bf16": hf_model(opts, vocab)}
    clocks = {f"GLM {k}": OptimizerClock(e.optimizer) for k, e in engines.items()}
    clocks.update({f"HF {k}": OptimizerClock(opt) for k, (_, opt) in hf.items()})

    def glm_step(dtype, i, before=False):
        engine = engines[dtype]
        if not before:
            return engine.train_batch([glm_batches[i]], language_model_loss)
        with attention_backend(engine.module, "sdpa"), attention_in_one_call(), torch_dropout_masks(), \
                foreach_adamw(engine.optimizer):
            return engine.train_batch([glm_batches[i]], dense_projection_forward)

    def hf_step(dtype, i):
        model, optimizer = hf[dtype]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = model(**hf_data[i]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    configs = {"GLM fp32": lambda i: glm_step("fp32", i), "GLM bf16": lambda i: glm_step("bf16", i),
               "HF fp32": lambda i: hf_step("fp32", i), "HF bf16": lambda i: hf_step("bf16", i)}
    if opts.compile:
        configs["GLM fp32 compiled"] = lambda i: glm_step("fp32 compiled", i)
    if opts.baseline:
        configs["GLM fp32 before"] = lambda i: glm_step("fp32", i, before=True)
        configs["GLM bf16 before"] = lambda i: glm_step("bf16", i, before=True)

    def clock_of(label):
        return clocks[label.replace(" before", "")]

    for i in range(opts.warmup):
        for label, step in configs.items():
            start = time.perf_counter()
            step(i)
            print(f"warm-up step {i} of {label}: {1000 * (time.perf_counter() - start):.0f} ms", flush=True)
    if opts.profile:
        from torch.profiler import ProfilerActivity, profile
        for dtype in engines:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                glm_step(dtype, 0)
            print(f"\nGLM {dtype} step, top operators by self CPU time")
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    steps = {label: [] for label in configs}
    updates = {label: [] for label in configs}
    for r in range(opts.rounds):
        for label, step in configs.items():
            clock = clock_of(label)
            in_optimizer = clock.seconds
            start = time.perf_counter()
            step(opts.warmup + r)
            steps[label].append(time.perf_counter() - start)
            updates[label].append(clock.seconds - in_optimizer)
    load_after = os.getloadavg()

    medians = {label: statistics.median(t) for label, t in steps.items()}
    fwd_bwd = {label: statistics.median(s - u for s, u in zip(steps[label], updates[label])) for label in steps}
    positions = {label: glm_positions if label.startswith("GLM") else opts.batch * opts.seq for label in steps}
    rows = [[label, f"{1000 * medians[label]:.0f}", f"{1000 * min(t):.0f}-{1000 * max(t):.0f}",
             f"{1000 * fwd_bwd[label]:.0f}", f"{1000 * (medians[label] - fwd_bwd[label]):.0f}",
             f"{positions[label]:.0f}", f"{1e6 * medians[label] / positions[label]:.0f}"]
            for label, t in steps.items()]
    print_table(f"GLM-Base pretraining step vs Hugging Face BertForMaskedLM (sdpa), 12x768x12, vocab {vocab}, "
                f"sequence {opts.seq}, batch {opts.batch}, loss on {100 * part_b:.1f}% of GLM positions, "
                f"{opts.rounds} rounds round-robin; {machine()}; load average {load_before[0]:.2f} before, "
                f"{load_after[0]:.2f} after",
                ["configuration", "median ms/step", "min-max ms", "fwd+loss+bwd ms", "optimizer ms", "positions/step",
                 "us/position"], rows,
                right_aligned_from=1)
    target_rows = []
    for ours, theirs, target in TARGETS:
        for label in [ours] + [f"{ours} {variant}" for variant in ("compiled", "before") if f"{ours} {variant}" in medians]:
            full = medians[theirs] / medians[label]
            part = fwd_bwd[theirs] / fwd_bwd[label]
            target_rows.append([f"{label} vs {theirs}", f"{target:.1f}x", f"{full:.2f}x", f"{part:.2f}x",
                                "met" if full >= target else "missed"])
    print_table("targets (speed-up = their median step / ours)",
                ["comparison", "target", "full step", "fwd+loss+bwd", "full step"], target_rows, right_aligned_from=1)
    if opts.json:
        opts.json.write_text(json.dumps({"steps": steps, "updates": updates, "positions": positions,
                                         "load": [load_before, load_after]}))


if __name__ == "__main__":
    main()
