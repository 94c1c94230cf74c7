#!/usr/bin/env python
"""Will a run fit?  The memory plan of a GLM configuration, before the run (docs/memory.md).

    python memory_plan.py config_tasks/model_blocklm_10B.sh --gpus 8 --gpu-memory 40GB \\
        --batch-size 4 --seq-length 512 --bf16 --checkpoint-activations
    python memory_plan.py config_tasks/model_blocklm_10B.sh --gpus 1 --gpu-memory 80GB --fit
    python memory_plan.py --num-layers 24 --hidden-size 1024 --num-attention-heads 16 --mode inference

Model shell configs (``config_tasks/model_blocklm_*.sh``, the files the ``scripts/`` launchers take) are
sourced for their ``MODEL_ARGS``; every other argument is a GLM flag (``--deepspeed --deepspeed_config
FILE`` for the DeepSpeed engine and its ZeRO stage and offload, ``--model-parallel-size``, ``--lora-rank``,
``--freeze-transformer``, ...).  The vocabulary is the padded size of the config's tokenizer unless
``--vocab-size`` is given.  ``--fit`` prints the first layout (tensor-parallel size, ZeRO stage,
activation checkpointing, offload) whose plan fits.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys

from glm.arguments import get_args
from glm.config import build_config
from glm.memory import PADDED_VOCAB, Devices, Workload, format_plan, parse_size, plan, smallest_layout


def model_args(shell_config):
    """The ``MODEL_ARGS`` of a model shell config (sourced by bash as the launchers do; the checkpoint
    folder it names need not exist)."""
    env = dict(os.environ)
    env.setdefault("CHECKPOINT_PATH", "/checkpoints")
    out = subprocess.run(["bash", "-c", 'source "$1" && printf "%s" "$MODEL_ARGS"', "bash", shell_config],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"memory_plan.py: could not source {shell_config}: {out.stderr.strip()}")
    return shlex.split(out.stdout)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     usage="memory_plan.py [MODEL_CONFIG.sh ...] [options] [GLM flags]")
    parser.add_argument("--gpus", type=int, default=1, help="devices of the job (data x tensor parallel)")
    parser.add_argument("--gpu-memory", help="memory of one device, e.g. 40GB (binary units)")
    parser.add_argument("--host-memory", help="host memory of one node, for offload, e.g. 512GB")
    parser.add_argument("--mode", choices=("train", "inference"), default="train")
    parser.add_argument("--projected-fraction", type=float, default=None,
                        help="share of positions the loss projects onto the vocabulary (default: 0.2, or the "
                             "target share of a seq2seq task)")
    parser.add_argument("--choices", type=int, default=1,
                        help="sequences per sample: the choices of a multiple-choice task (COPA 2, ReCoRD its "
                             "largest number of entities); finetuning runs read it off their samples")
    parser.add_argument("--fit", action="store_true", help="print the smallest layout that fits")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    # Read here too because the GLM parser caps it at the world size of this (single) process.
    parser.add_argument("--model-parallel-size", type=int, default=1, dest="tensor_parallel")
    return parser


def make_config(argv, gpus, tensor_parallel):
    shell_configs = [a for a in argv if a.endswith(".sh") and os.path.isfile(a)]
    flags = [a for a in argv if a not in shell_configs]
    glm_flags = [f for c in shell_configs for f in model_args(c)] + flags
    config = build_config(get_args(glm_flags))
    # Planned for GPUs: fused attention kernels (no sequence-squared score tensors), as on CUDA.
    updates = dict(world_size=gpus, model_parallel_size=tensor_parallel, cuda=True)
    if "--vocab-size" not in glm_flags:
        updates["vocab_size"] = PADDED_VOCAB.get(config.data.tokenizer_type, config.model.vocab_size)
    return config.updated(**updates)


def main(argv=None):
    parser = build_parser()
    options, rest = parser.parse_known_args(argv)
    if options.choices < 1:
        parser.error(f"--choices must be at least 1 (sequences per sample), got {options.choices}")
    config = make_config(rest, options.gpus, options.tensor_parallel)
    devices = Devices(options.gpus, parse_size(options.gpu_memory) if options.gpu_memory else None,
                      parse_size(options.host_memory) if options.host_memory else None)
    workload = Workload(sequences_per_sample=options.choices)
    result = plan(config, devices, mode=options.mode, projected_fraction=options.projected_fraction, workload=workload)
    if options.json:
        print(json.dumps(dict(vars(result), fits=result.fits, layout=result.layout()), indent=1, sort_keys=True))
    else:
        print(format_plan(result))
    if options.fit:
        updates, fitting = smallest_layout(config, devices, mode=options.mode,
                                           projected_fraction=options.projected_fraction, workload=workload)
        if fitting is None:
            print(f"\nno layout of {options.gpus} device(s) fits; add devices or lower --batch-size / --seq-length")
            return 1
        print(f"\nsmallest layout that fits: {fitting.layout()}")
        print(format_plan(fitting))
        if updates.get("deepspeed"):
            print("DeepSpeed JSON (zero_optimization and precision sections; add your batch and optimizer "
                  "settings):\n" + json.dumps({k: v for k, v in updates["deepspeed_config_dict"].items()
                                               if k in ("zero_optimization", "bf16", "fp16")}, indent=1))
    return 0 if result.fits in (None, True) or options.fit else 2


if __name__ == "__main__":
    sys.exit(main())
