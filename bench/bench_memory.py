"""The memory plan against measured peaks (docs/memory.md).

Each shape runs in a fresh Python process: it imports everything, reads its resident set (the
baseline), builds the model, optimizer and engine the flags describe, runs three training steps of
synthetic blank-infilling batches (Part B, the projected positions, is the last 20% of each sample), and
reports its peak resident set (``VmHWM``) minus the baseline.  The plan (``glm.memory.plan``) of the same
configuration is printed next to it with the relative error.

    python bench/bench_memory.py                  # the full table (a few minutes on 2 cores)
    python bench/bench_memory.py --quick          # the small shapes tests/test_memory.py pins
"""

import argparse
import dataclasses
import gc
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

VOCAB = 30592
PROJECTED_FRACTION = 0.2

# (layers, hidden, heads, seq, batch, engine, extra flags)
SHAPES = [
    (2, 256, 4, 128, 4, "plain", ()),
    (4, 512, 8, 256, 4, "plain", ()),
    (8, 512, 8, 256, 2, "plain", ("--checkpoint-activations",)),
    (2, 1024, 16, 512, 2, "plain", ()),
    (4, 768, 12, 512, 4, "plain", ()),
    (6, 1024, 16, 256, 4, "plain", ("--checkpoint-activations",)),
    (4, 512, 8, 256, 4, "zero0", ()),
    (4, 512, 8, 256, 4, "zero1", ()),
    (4, 512, 8, 256, 4, "zero2", ()),
    (4, 512, 8, 256, 4, "zero3", ()),
    (4, 512, 8, 256, 4, "plain", ("--bf16",)),
    (4, 512, 8, 256, 4, "zero1", ("--bf16",)),
    (4, 512, 8, 256, 4, "plain", ("--lora-rank", "8")),
    (2, 256, 4, 128, 4, "zero1", ()),
    (4, 512, 8, 64, 1, "plain", ()),  # gradients and the optimizer outweigh the activations
]
# What tests/test_memory.py pins (the plain engine: a DeepSpeed process takes about a minute to start here).
QUICK = [SHAPES[0], SHAPES[1], SHAPES[2]]
# Shapes measured with two data-parallel ranks (gloo), each rank's own peak: the gradient all-reduce
# buffers (DDP's buckets, DeepSpeed's reduce and all-gather buckets) and ZeRO's partitions by 2.
TWO_RANKS = [
    (4, 512, 8, 256, 4, "plain", ()),
    (4, 512, 8, 256, 4, "zero1", ()),
    (4, 512, 8, 256, 4, "zero2", ()),
    (4, 512, 8, 256, 4, "zero3", ()),
    (4, 512, 8, 64, 1, "plain", ()),
]
# The finetuning heads (one rank, plain engine): (shape, head, choices per sample).  A multi-token cloze or
# multiple-choice classification sample runs one sequence per choice; the plan reads that, and what the
# head projects onto the vocabulary, off the task's samples (tasks.finetune.memory_workload).
HEADS = [
    ((4, 512, 8, 256, 2, "plain", ()), "multi-token-cloze", 4),
    ((4, 512, 8, 256, 4, "plain", ()), "single-token-cloze", 1),
    ((4, 512, 8, 256, 2, "plain", ()), "classification", 4),
]
HEAD_ANSWER_TOKENS = 8  # the answer span of a multi-token cloze sequence
# More ZeRO-3 points (one rank): its working set and buffers, at other shapes than SHAPES' one.
ZERO3_MORE = [
    (2, 256, 4, 128, 4, "zero3", ()),
    (2, 1024, 16, 512, 2, "zero3", ()),
]


def flags(layers, hidden, heads, seq, batch, engine, extra):
    argv = ["--block-lm", "--num-layers", str(layers), "--hidden-size", str(hidden), "--num-attention-heads",
            str(heads), "--seq-length", str(seq), "--max-position-embeddings", str(seq), "--batch-size", str(batch),
            *extra]
    if engine.startswith("zero"):
        argv.append("--deepspeed")
    return argv


def deepspeed_json(engine, batch, extra=()):
    json_config = {"train_micro_batch_size_per_gpu": batch, "gradient_accumulation_steps": 1,
                   "zero_optimization": {"stage": int(engine[-1])}, "zero_allow_untested_optimizer": True,
                   "gradient_clipping": 1.0, "steps_per_print": 10 ** 9}
    if "--bf16" in extra:
        json_config["bf16"] = {"enabled": True}
    return json_config


def shape_config(shape, head=None):
    from bench.common import glm_config
    layers, hidden, heads, seq, batch, engine, extra = shape
    if head in ("multi-token-cloze", "single-token-cloze"):
        extra = (*extra, "--cloze-eval")
    shape = (layers, hidden, heads, seq, batch, engine, extra)
    updates = dict(vocab_size=VOCAB)
    if engine.startswith("zero"):
        updates["deepspeed_config_dict"] = deepspeed_json(engine, batch, extra)
    return glm_config(flags(*shape), **updates)


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def head_batches(head, batch, choices, seq, generator):
    """Synthetic micro-batches of a finetuning ``head`` (``choices`` sequences per sample), the samples
    :func:`tasks.finetune.memory_workload` reads, and the forward function the engine steps."""
    import torch

    from glm.training.losses import choice_loss

    shape = (batch, choices, seq) if choices > 1 else (batch, seq)
    sep = int(seq * (1 - PROJECTED_FRACTION))
    positions = torch.stack([torch.arange(seq).expand(*shape), torch.zeros(*shape, dtype=torch.long)], -2)
    fields = {"text": torch.randint(0, VOCAB, shape, generator=generator), "position": positions,
              "mask": torch.full(shape[:-1], sep),
              "label": torch.randint(0, max(choices, 2), (batch,), generator=generator)}
    if head == "multi-token-cloze":
        fields["target"] = torch.randint(0, VOCAB, shape, generator=generator)
        fields["logit_mask"] = torch.zeros(shape)
        fields["logit_mask"][..., sep:sep + HEAD_ANSWER_TOKENS] = 1.0
    elif head == "single-token-cloze":
        fields["target"] = torch.randint(0, VOCAB, (batch, 2), generator=generator)

    def forward(model, b):
        inputs = [b["text"], b["position"], b["mask"]]
        if head == "multi-token-cloze":
            inputs += [b["target"], b["logit_mask"]]
        elif head == "single-token-cloze":
            inputs += [b["target"]]
        scores = model(*inputs)[0]
        return choice_loss(scores, b["label"]), {}

    samples = [{key: value[0] for key, value in fields.items()}]
    return [fields], samples, forward


def child(shape, rank=0, world_size=1, rendezvous=None, head=None, choices=1):
    """Run three steps of ``shape`` in this process (rank ``rank`` of ``world_size`` data-parallel
    ranks meeting through the file ``rendezvous``; ``head``: a finetuning head with ``choices``
    sequences per sample instead of the language model); print ``{"measured": bytes}``."""
    import torch
    import torch.distributed as dist

    from glm import mpu
    from glm.model.lora import add_lora_from_config
    from glm.training.engines import build_engine
    from glm.training.losses import language_model_loss
    from glm.training.model_setup import build_model, build_optimizer

    layers, hidden, heads, seq, batch, engine, extra = shape
    torch.set_num_threads(1)
    if engine.startswith("zero"):
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        import deepspeed  # noqa: F401  (imported before the baseline: its import is not the run's memory)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", rank=rank, world_size=world_size,
                            init_method=f"file://{rendezvous}" if rendezvous else None)
    mpu.initialize_model_parallel(1)
    config = shape_config(shape)
    generator = torch.Generator().manual_seed(0)
    text = torch.randint(0, VOCAB, (batch, seq), generator=generator)
    positions = torch.stack([torch.arange(seq).expand(batch, seq), torch.zeros(batch, seq, dtype=torch.long)], 1)
    sep = int(seq * (1 - PROJECTED_FRACTION))
    loss_mask = torch.zeros(batch, seq)
    loss_mask[:, sep:] = 1.0
    batches = [{"text": text, "position_id": positions.clone(), "attention_mask": torch.full((batch,), sep),
                "loss_mask": loss_mask, "target": torch.randint(0, VOCAB, (batch, seq), generator=generator)}]
    # Two steps of a tiny model of the same kind first: the code and tables the run loads lazily (the
    # fused optimizer, autograd, DeepSpeed's engine) are part of the baseline, not of the run's memory.
    device = torch.device("cpu")
    tiny = shape_config((1, 64, 4, seq, batch, engine, extra)).updated(vocab_size=128)
    tiny_run = build_engine(tiny, build_model(tiny, device), lambda m: build_optimizer(tiny, m), lambda o: None,
                            device)
    tiny_batches = [dict(b, text=b["text"] % 128, target=b["target"] % 128) for b in batches]
    for _ in range(2):
        tiny_run.train_batch(tiny_batches, language_model_loss)
    del tiny_run
    gc.collect()
    baseline = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current resident set
    forward = language_model_loss
    if head:
        from glm.training.model_setup import build_task_model
        from tasks.finetune import memory_workload
        config = shape_config(shape, head)
        batches, samples, forward = head_batches(head, batch, choices, seq, generator)
        model = build_task_model(config, device, "multiple_choice", head == "multi-token-cloze", 2).to(device)
        workload = memory_workload(model, samples)
    else:
        model = build_model(config, device)
        add_lora_from_config(model, config)  # --lora-rank: adapters on, backbone frozen (a no-op without it)
        workload = None
    run = build_engine(config, model, lambda m: build_optimizer(config, m), lambda optimizer: None, device)
    for _ in range(3):
        run.train_batch(batches, forward)
    print(json.dumps({"measured": _status("VmHWM") - baseline, "baseline": baseline,
                      "workload": workload and dataclasses.asdict(workload)}))


def measure(shape, ranks=1, timeout=900, head=None, choices=1):
    """The measured peak (bytes above the import baseline) of ``shape``, from fresh processes: with
    ``ranks`` data-parallel ranks, the largest of their peaks (with a ``head``: ``(peak, workload)``,
    the workload the finetuning driver would plan with)."""
    # glibc's malloc raises its mmap threshold as large blocks are freed and then keeps freed blocks in
    # its heap, so the resident set would count memory the run no longer holds; a fixed threshold makes
    # every tensor-sized block its own mapping, returned on free, as a GPU allocator's figure would be.
    env = dict(os.environ, OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu", PYTHONPATH=ROOT,
               MALLOC_MMAP_THRESHOLD_="65536")
    with tempfile.TemporaryDirectory() as scratch:
        rendezvous = os.path.join(scratch, "rendezvous")
        command = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(shape)]
        if head:
            command += ["--head", head, "--choices", str(choices)]
        processes = [subprocess.Popen(command + ["--rank", str(rank), "--ranks", str(ranks), "--rendezvous",
                                                 rendezvous], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env, cwd=ROOT) for rank in range(ranks)]
        peaks = []
        for process in processes:
            stdout, stderr = process.communicate(timeout=timeout)
            if process.returncode != 0:
                raise RuntimeError(f"shape {shape} ({ranks} ranks) failed:\n{stderr[-3000:]}")
            report = json.loads([l for l in stdout.splitlines() if l.startswith("{")][-1])
            peaks.append(report["measured"])
    return (max(peaks), report["workload"]) if head else max(peaks)


def predicted(shape, ranks=1, head=None, workload=None):
    """The plan of ``shape``; with a ``head``, of that finetuning run (``workload``: the dict
    :func:`measure` returns, read off the samples by the finetuning driver's own function)."""
    from glm.memory import Devices, Workload, plan
    if head:
        return plan(shape_config(shape, head), Devices(ranks), workload=Workload(**workload))
    return plan(shape_config(shape), Devices(ranks), projected_fraction=PROJECTED_FRACTION)


def describe(shape):
    layers, hidden, heads, seq, batch, engine, extra = shape
    flags = " ".join(extra).replace("--checkpoint-activations", "ckpt").replace("--", "")
    return f"{layers}x{hidden} h{heads} s{seq} b{batch}", f"{engine} {flags}".strip()


# The released models (config_tasks/model_blocklm_*.sh) and their padded vocabularies.
RELEASED = [
    ("GLM-Base 110M", "model_blocklm_base.sh"), ("GLM-Large 335M", "model_blocklm_large.sh"),
    ("GLM-Large-Chinese", "model_blocklm_large_chinese.sh"), ("GLM-RoBERTa-Large", "model_blocklm_roberta_large.sh"),
    ("GLM-2B", "model_blocklm_2B.sh"), ("GLM-10B", "model_blocklm_10B.sh"),
    ("GLM-10B-Chinese", "model_blocklm_10B_chinese.sh"),
]
# Workloads of the docs table: (name, mode, extra flags); every one at sequence 512, bf16.
WORKLOADS = [
    ("inference", "inference", ("--batch-size", "1")),
    ("full finetuning", "train", ("--batch-size", "4")),
    ("LoRA finetuning", "train", ("--batch-size", "4", "--lora-rank", "8")),
    ("pretraining", "train", ("--batch-size", "8")),
]


HOST_MEMORY = 512 * 2 ** 30  # host memory of a node, for the offload layouts of the docs table


def docs_table(allow_offload):
    """The markdown table of docs/memory.md: for every released model, device size and workload, the
    fewest devices (1 to 64) and the first layout whose plan fits (with or without CPU offload)."""
    import memory_plan
    from glm.memory import Devices, GiB, format_size, smallest_layout
    print("| model | workload | 24 GB | 40 GB | 80 GB |")
    print("|---|---|---|---|---|")
    for name, shell in RELEASED:
        for workload, mode, extra in WORKLOADS:
            cells = []
            for memory in (24, 40, 80):
                found = "does not fit 64 devices"
                for count in (1, 2, 4, 8, 16, 32, 64):
                    config = memory_plan.make_config([os.path.join(ROOT, "config_tasks", shell), "--seq-length", "512",
                                                      "--bf16", *extra], count, 1)
                    _, fitting = smallest_layout(config, Devices(count, memory * GiB, HOST_MEMORY), mode=mode,
                                                 allow_offload=allow_offload)
                    if fitting is not None:
                        # The device count is the cell's own figure: name only the tensor-parallel size.
                        layout = fitting.layout().replace(
                            f"TP {fitting.tensor_parallel} x DP {fitting.data_parallel}, ", f"TP {fitting.tensor_parallel}, ")
                        host = f", host {format_size(fitting.host)}" if fitting.host else ""
                        found = f"{count} GPU{'s' if count > 1 else ''}: {layout} ({format_size(fitting.total)}{host})"
                        break
                cells.append(found)
            print(f"| {name} | {workload} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--ranks", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--rendezvous", help=argparse.SUPPRESS)
    parser.add_argument("--head", help=argparse.SUPPRESS)
    parser.add_argument("--choices", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="only the small shapes the test pins")
    parser.add_argument("--only", choices=("one-rank", "two-ranks", "zero3", "heads"),
                        help="one group of the table: the one-rank shapes, the two-rank shapes, the extra ZeRO-3 "
                             "points, or the finetuning heads")
    parser.add_argument("--docs-table", action="store_true",
                        help="print docs/memory.md's table of the released models (planned, nothing measured)")
    options = parser.parse_args()
    if options.child:
        child(tuple(json.loads(options.child)), options.rank, options.ranks, options.rendezvous, options.head,
              options.choices)
        return
    if options.docs_table:
        print("Without CPU offload:\n")
        docs_table(False)
        print("\nWith CPU offload allowed (host memory of a node: 512 GiB):\n")
        docs_table(True)
        return
    from bench.common import machine, print_table
    if options.quick:
        runs = [(shape, 1, None, 1) for shape in QUICK]
    else:
        groups = {"one-rank": [(shape, 1, None, 1) for shape in SHAPES],
                  "two-ranks": [(shape, 2, None, 1) for shape in TWO_RANKS],
                  "zero3": [(shape, 1, None, 1) for shape in ZERO3_MORE],
                  "heads": [(shape, 1, head, choices) for shape, head, choices in HEADS]}
        runs = [run for name, group in groups.items() if options.only in (None, name) for run in group]
    rows = []
    for shape, ranks, head, choices in runs:
        if head:
            measured, workload = measure(tuple(shape), ranks, head=head, choices=choices)
            plan = predicted(shape, ranks, head, workload)
        else:
            measured, plan = measure(tuple(shape), ranks), predicted(shape, ranks)
        name, engine = describe(shape)
        if head:
            engine = f"{head}" + (f", {choices} choices" if choices > 1 else "")
        rows.append((name, engine, str(ranks), f"{plan.total / 2 ** 20:.0f}", f"{measured / 2 ** 20:.0f}",
                     f"{100 * (plan.total - measured) / measured:+.1f}%"))
        print(rows[-1], flush=True)
    print_table(f"memory plan vs measured peak resident set above imports (the largest rank's), CPU, fp32 unless "
                f"bf16; {machine()}", ("shape", "engine", "ranks", "predicted MiB", "measured MiB", "error"), rows,
                right_aligned_from=2)

if __name__ == "__main__":
    main()
