"""ZeRO-3 with CPU offload (``offload_optimizer`` and ``offload_param``) on two gloo ranks, tiny model.

One launch trains, one after another:

* ``zero3``: ZeRO-3 without offload (torch's AdamW), checkpoint at ``SAVE_AT``;
* ``offload``: the same with optimizer and parameters offloaded to the CPU; no JSON optimizer, so our
  AdamW's groups go to DeepSpeed's CPU Adam (the default DeepSpeed insists on), checkpoint at ``SAVE_AT``;
* ``offload-resumed``: ``offload`` resumed from its own checkpoint (and, in a one-rank launch, at
  data-parallel size 1 with the same global batch);
* ``offload-tp2``, ``offload-tp1to2``, ``offload-tp2to1``: ``offload`` at tensor-parallel size 2 (data-parallel
  size 1), uninterrupted and resumed from ``offload``'s checkpoint, and ``offload-tp2`` resumed at TP 1 x DP 2;
* ``offload-torch``: offload with ``"zero_force_ds_cpu_optimizer": false``, torch's AdamW stepping on the CPU;
* three fp16 steps under each shipped 10B ZeRO-3 offload JSON (config/, config_tasks/; micro batch cut).

DeepSpeed compiles its CPU Adam (C++, ninja) the first time it is used on a machine and caches it under
``TORCH_EXTENSIONS_DIR`` (~/.cache/torch_extensions): the first run of this module takes about 1.5 minutes
longer (measured on the 2-core VM), later runs about 15 s.

Tolerances:

* ``offload`` resumed reproduces ``offload`` bit for bit (same engine, same state).
* ``offload-torch`` against ``zero3``: the same optimizer on the same fp32 partitions, only where they
  live differs (on this CPU-only machine "offload" is a copy from CPU to CPU): expected equal; 1e-6 allowed.
* ``offload`` (CPU Adam) against ``zero3`` (torch AdamW): the same AdamW update with the same fp32 state,
  computed by another kernel (DeepSpeed's vectorised C++ loop; torch's fused kernel), so the updates
  differ by float32 rounding (a few ulp of each weight) and that drifts through training.  The bound is the
  one the other fp32 engine comparisons use (tests/distributed/test_resume_other_size.py), 1e-4 on a loss
  of ~4.8, i.e. 2e-5 relative; losing or mis-applying optimizer state shows as 1e-3 or more.
"""

import json
import math
import os
from pathlib import Path

import pytest
import torch

from glm import mpu
from glm.training.losses import language_model_loss
from tests.distributed.launcher import run_distributed
from tests.distributed.test_engines_distributed import NO_DROPOUT, make
from tests.distributed.test_resume_other_size import train_engine
from tests.training.synthetic import SyntheticLoader, tiny_config

ROOT = Path(__file__).resolve().parents[2]
STEPS = 12
SAVE_AT = 6
GLOBAL_BATCH = 4
PER_RANK = 2  # at two ranks
SAME_OPTIMIZER_TOLERANCE = 1e-6
CPU_ADAM_TOLERANCE = 1e-4

OFFLOAD = {"offload_optimizer": {"device": "cpu"}, "offload_param": {"device": "cpu"}}
RUNS = {  # name: (zero_optimization additions, top-level additions)
    "zero3": ({}, {}),
    "offload": (OFFLOAD, {}),
    "offload-torch": (OFFLOAD, {"zero_force_ds_cpu_optimizer": False}),
}


def run_config(name, directory, load=None, mp=1):
    zero, extra = RUNS[name]
    per_rank = GLOBAL_BATCH // mpu.get_data_parallel_world_size()
    ds = {"train_micro_batch_size_per_gpu": per_rank, "gradient_accumulation_steps": 1, "gradient_clipping": 0.5,
          "zero_optimization": {"stage": 3, **zero}, "zero_allow_untested_optimizer": True,
          "steps_per_print": 10 ** 9, **extra}
    path = os.path.join(directory, f"{name}-mp{mp}-rank{torch.distributed.get_rank()}.json")
    with open(path, "w") as f:
        json.dump(ds, f)
    flags = [*NO_DROPOUT, "--batch-size", str(per_rank), "--weight-decay", "0.1", "--clip-grad", "0.5",
             "--model-parallel-size", str(mp), "--train-iters", str(STEPS), "--seed", "5", "--deepspeed",
             "--deepspeed_config", path]
    return tiny_config(*flags).updated(load=load)


def train(name, directory, save=None, load=None, mp=1):
    """Losses of updates ``start+1..STEPS`` at tensor-parallel size ``mp``; with ``save``, a checkpoint
    of update ``SAVE_AT``."""
    mpu.destroy_model_parallel()
    mpu.initialize_model_parallel(mp)
    cfg = run_config(name, directory, load, mp)
    engine = make(cfg)
    return [result.loss for result in train_engine(cfg, engine, GLOBAL_BATCH, STEPS, SAVE_AT, save)], engine


SHIPPED = ("config/config_block_10B_zero3_offload.json", "config_tasks/config_blocklm_10B_zero3_offload.json")


def shipped_json_steps(json_path, directory, steps=3):
    """``steps`` updates of the tiny model under a shipped 10B JSON (its micro batch cut to ``PER_RANK``,
    fp16 as its recipe): ``(results, engine)``."""
    ds = json.loads((ROOT / json_path).read_text())
    ds.update(train_micro_batch_size_per_gpu=PER_RANK, gradient_accumulation_steps=1)
    path = os.path.join(directory, f"shipped-rank{torch.distributed.get_rank()}.json")
    with open(path, "w") as f:
        json.dump(ds, f)
    cfg = tiny_config(*NO_DROPOUT, "--batch-size", str(PER_RANK), "--fp16", "--deepspeed", "--deepspeed_config", path)
    engine = make(cfg)
    loader = iter(SyntheticLoader(PER_RANK, mpu.get_data_parallel_rank(), mpu.get_data_parallel_world_size()))
    return [engine.train_batch([next(loader)], language_model_loss) for _ in range(steps)], engine


def _two_ranks(rank, world, directory):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    mpu.initialize_model_parallel(1)
    losses = {}
    for name in ("zero3", "offload"):
        losses[name], engine = train(name, directory, save=os.path.join(directory, name))
        if name == "offload":
            from deepspeed.ops.adam import DeepSpeedCPUAdam
            assert isinstance(engine.engine.basic_optimizer, DeepSpeedCPUAdam)
            assert engine.engine.zero_offload_param() and engine.engine.zero_use_cpu_optimizer()
    losses["offload-resumed"], _ = train("offload", directory, load=os.path.join(directory, "offload"))
    # At another tensor-parallel size, the data-parallel size changing with it (2 ranks: TP 1 x DP 2 <-> TP 2 x DP 1).
    losses["offload-tp2"], _ = train("offload", directory, save=os.path.join(directory, "offload-tp2"), mp=2)
    losses["offload-tp1to2"], _ = train("offload", directory, load=os.path.join(directory, "offload"), mp=2)
    losses["offload-tp2to1"], _ = train("offload", directory, load=os.path.join(directory, "offload-tp2"))
    losses["offload-torch"], engine = train("offload-torch", directory)
    assert isinstance(engine.engine.basic_optimizer, torch.optim.AdamW)
    from deepspeed.ops.adam import DeepSpeedCPUAdam
    for json_path in SHIPPED:
        results, engine = shipped_json_steps(json_path, directory)
        assert engine.engine.zero_optimization_stage() == 3 and engine.engine.zero_offload_param()
        assert isinstance(engine.engine.basic_optimizer, DeepSpeedCPUAdam)  # built by DeepSpeed from the JSON
        assert all(math.isfinite(r.loss) for r in results) and not results[-1].skipped, json_path
    if rank == 0:
        with open(os.path.join(directory, "losses.json"), "w") as f:
            json.dump(losses, f)


def _one_rank(rank, world, directory):
    """The two-rank offload checkpoint resumed at data-parallel size 1 (same global batch; its optimizer
    shards re-partitioned through DeepSpeed's universal checkpoint); then a one-rank offload run that
    saves, for :func:`_two_ranks_resume`."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    mpu.initialize_model_parallel(1)
    losses, _ = train("offload", directory, load=os.path.join(directory, "offload"))
    with open(os.path.join(directory, "losses-dp2to1.json"), "w") as f:
        json.dump(losses, f)
    train("offload", directory, save=os.path.join(directory, "offload-dp1"))


def _two_ranks_resume(rank, world, directory):
    """The one-rank offload checkpoint resumed at data-parallel size 2."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    mpu.initialize_model_parallel(1)
    losses, _ = train("offload", directory, load=os.path.join(directory, "offload-dp1"))
    if rank == 0:
        with open(os.path.join(directory, "losses-dp1to2.json"), "w") as f:
            json.dump(losses, f)


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    pytest.importorskip("deepspeed")
    directory = str(tmp_path_factory.mktemp("zero3-offload"))
    run_distributed(_two_ranks, 2, directory)
    run_distributed(_one_rank, 1, directory)
    run_distributed(_two_ranks_resume, 2, directory)
    losses = {}
    for name, key in (("losses.json", None), ("losses-dp2to1.json", "offload-dp2to1"),
                      ("losses-dp1to2.json", "offload-dp1to2")):
        with open(os.path.join(directory, name)) as f:
            value = json.load(f)
        losses.update(value if key is None else {key: value})
    return directory, losses


def max_difference(a, b):
    assert len(a) == len(b), (a, b)
    return max(abs(x - y) for x, y in zip(a, b))


@pytest.mark.slow
def test_offload_matches_zero3_without_offload(launched):
    _, losses = launched
    assert losses["zero3"][-1] < losses["zero3"][0] - 0.1  # it learns
    cpu_adam = max_difference(losses["offload"], losses["zero3"])
    torch_adam = max_difference(losses["offload-torch"], losses["zero3"])
    print(f"ZeRO-3 offload vs without, {STEPS} updates: CPU Adam max {cpu_adam:.2e}, torch AdamW max {torch_adam:.2e}")
    assert torch_adam <= SAME_OPTIMIZER_TOLERANCE
    assert cpu_adam < CPU_ADAM_TOLERANCE


@pytest.mark.slow
def test_offload_resumes_exactly(launched):
    _, losses = launched
    assert losses["offload-resumed"] == losses["offload"][SAVE_AT:]


@pytest.mark.slow
def test_offload_resumes_at_another_data_parallel_size(launched):
    """2 -> 1 rank with the same global batch: the reduction order changes (the fp32 noise of
    tests/distributed/test_resume_other_size.py, bound 1e-4), nothing else."""
    _, losses = launched
    difference = max_difference(losses["offload-dp2to1"], losses["offload"][SAVE_AT:])
    print(f"ZeRO-3 offload resumed at DP 1 from DP 2: max {difference:.2e}")
    assert difference < CPU_ADAM_TOLERANCE
    # 1 -> 2 ranks: compared with the uninterrupted two-rank run, which the one-rank run equals up to
    # the same reduction-order noise.
    difference = max_difference(losses["offload-dp1to2"], losses["offload"][SAVE_AT:])
    print(f"ZeRO-3 offload resumed at DP 2 from DP 1: max {difference:.2e}")
    assert difference < CPU_ADAM_TOLERANCE


@pytest.mark.slow
def test_offload_resumes_at_another_tensor_parallel_size(launched):
    """TP 1 x DP 2 -> TP 2 x DP 1 and back: the optimizer state re-cut for the new tensor-parallel ranks
    (tests/distributed/test_resume_other_size.py), DeepSpeed's CPU Adam stepping it; the reduction order
    changes, nothing else (bound 1e-4 as above)."""
    _, losses = launched
    assert max_difference(losses["offload-tp2"], losses["offload"]) < CPU_ADAM_TOLERANCE
    for resumed, reference in (("offload-tp1to2", "offload-tp2"), ("offload-tp2to1", "offload")):
        difference = max_difference(losses[resumed], losses[reference][SAVE_AT:])
        first = next((SAVE_AT + 1 + i for i, (a, b) in enumerate(zip(losses[resumed], losses[reference][SAVE_AT:]))
                      if a != b), None)
        print(f"ZeRO-3 offload {resumed}: first difference at {first}, max {difference:.2e}")
        assert difference < CPU_ADAM_TOLERANCE, resumed


@pytest.mark.slow
def test_offload_checkpoint_consolidates(launched, tmp_path):
    """``change_mp.py --consolidate-zero`` of the offload run's 2-rank checkpoint gives the weights of
    the run without offload at the same update (within the CPU Adam rounding above)."""
    from change_mp import main as change_mp_main
    from glm.checkpoint.io import load_checkpoint_file
    directory, _ = launched
    consolidated = {}
    for name in ("zero3", "offload"):
        out = tmp_path / name
        assert change_mp_main([os.path.join(directory, name), "1", "--consolidate-zero", "--output", str(out)]) == 0
        consolidated[name] = load_checkpoint_file(str(out / str(SAVE_AT) / "mp_rank_00_model_states.pt"))
    assert consolidated["offload"]["iteration"] == SAVE_AT
    reference, offloaded = consolidated["zero3"]["module"], consolidated["offload"]["module"]
    assert offloaded.keys() == reference.keys()
    for key, value in reference.items():
        assert offloaded[key].dtype == torch.float32 and offloaded[key].shape == value.shape
        torch.testing.assert_close(offloaded[key], value, rtol=0, atol=1e-5, msg=key)


def test_offload_without_cpu_adam_names_the_way_out(monkeypatch):
    """Where DeepSpeed's CPU Adam cannot be built, the run stops with the cause and the JSON setting
    that steps torch's AdamW instead."""
    pytest.importorskip("deepspeed")
    import deepspeed.ops.adam
    from glm.training.engines import cpu_adam_like, offloads_optimizer

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(deepspeed.ops.adam, "DeepSpeedCPUAdam", no_compiler)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    with pytest.raises(RuntimeError, match='Ninja is required.*"zero_force_ds_cpu_optimizer": false'):
        cpu_adam_like(optimizer)
    assert offloads_optimizer({"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"}}})
    assert not offloads_optimizer({"zero_optimization": {"stage": 3, "offload_param": {"device": "cpu"}}})
    assert not offloads_optimizer({"zero_optimization": {"offload_optimizer": {"device": "none"}}})
