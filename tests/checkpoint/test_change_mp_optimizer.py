"""change_mp.py carries the plain engine's optimizer state: Adam's moments are re-cut like their weights
(by glm.checkpoint.reshard, the code a resume at another size runs), step and group settings, the LR
schedule, iteration, loss scaler and data position are kept, and the model-parallel RNG streams are marked
as another size's.  A resume from the converted checkpoint at the new tensor-parallel size gives the same
losses, bit for bit, as resuming the original checkpoint at that size (which re-cuts while loading):
tensor-parallel 1 -> 2 on two gloo ranks and 2 -> 1 on one, dropout on."""

import glob
import json
import os
import subprocess
import sys

import pytest
import torch

from glm import mpu
from glm.checkpoint import save_model_checkpoint
from glm.checkpoint.change_mp import RNG_TRACKER_SIZE_KEY, change_model_parallel
from glm.checkpoint.reshard import optimizer_parameter_names, partition_map
from glm.mpu.partition import shard_tensor
from glm.training.checkpointing import load_training_checkpoint, save_training_checkpoint
from glm.training.losses import language_model_loss
from tests.checkpoint.test_change_mp import _files
from tests.checkpoint.test_reshard_optimizer import trained_adam
from tests.distributed.launcher import run_distributed
from tests.distributed.test_engines_distributed import make
from tests.training.synthetic import SyntheticLoader, tiny_config
from tests.training.test_pretrain_e2e import ROOT, corpus, env, flags, losses, run  # noqa: F401 (corpus: a fixture)

QUIET = dict(log=lambda *a: None)
FIRST_SAVE, SECOND_SAVE, LAST = 3, 6, 9


@pytest.mark.parametrize("lora_rank", [0, 4], ids=["full", "lora"])
def test_moments_are_cut_like_their_weights_and_merge_back(tmp_path, lora_rank):
    model, optimizer = trained_adam(lora_rank)
    state = optimizer.state_dict()
    scheduler = {"num_iters": 2, "decay_style": "cosine"}
    save_model_checkpoint(str(tmp_path / "run"), "2", {"module": model.state_dict(), "optimizer": state,
                                                       "lr_scheduler": scheduler, "iteration": 2,
                                                       "grad_scaler": {"scale": 512.0},
                                                       "data_state": {"epoch": 0}, "mp_world_size": 1})
    logged = []
    split = change_model_parallel(str(tmp_path / "run"), 2, log=logged.append)
    assert any("optimizer state re-cut" in line for line in logged)
    assert not any("--no-load-optim" in line for line in logged)
    names, layout = optimizer_parameter_names(optimizer, model), partition_map(model)
    _, shards = _files(split)
    for rank, shard in enumerate(shards):
        assert shard["lr_scheduler"] == scheduler and shard["iteration"] == 2 and shard["mp_world_size"] == 2
        assert shard["grad_scaler"] == {"scale": 512.0} and shard["data_state"] == {"epoch": 0}
        assert shard["optimizer"]["param_groups"] == state["param_groups"]
        for index, entry in state["state"].items():
            dim, stride = layout[names[index]]
            assert shard["optimizer"]["state"][index]["exp_avg"].shape == shard["module"][names[index]].shape
            for key in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(shard["optimizer"]["state"][index][key], shard_tensor(entry[key], dim, stride, 2,
                                                                                         rank))
            assert torch.equal(shard["optimizer"]["state"][index]["step"], entry["step"])
    merged = change_model_parallel(split, 1, output_dir=str(tmp_path / "merged"), **QUIET)
    (back,) = _files(merged)[1]
    for index, entry in state["state"].items():
        for key, value in entry.items():
            assert torch.equal(back["optimizer"]["state"][index][key], value), (index, key)


def test_optimizer_of_another_trainable_set_is_dropped_with_a_note(tmp_path):
    """Moments that do not belong to the parameters the shapes describe (here: one group missing, as
    in a run that froze parts) are never cut by guesswork."""
    model, optimizer = trained_adam()
    state = optimizer.state_dict()
    state = {"state": {i: v for i, v in state["state"].items() if i < len(state["param_groups"][0]["params"])},
             "param_groups": state["param_groups"][:1]}
    save_model_checkpoint(str(tmp_path / "run"), "2", {"module": model.state_dict(), "optimizer": state,
                                                       "iteration": 2})
    logged = []
    out = change_model_parallel(str(tmp_path / "run"), 2, log=logged.append)
    assert any("--no-load-optim" in line and "parameter groups" in line for line in logged), logged
    assert all(shard["optimizer"] is None for shard in _files(out)[1])


# -- resumed training: the converted checkpoint against the load-time reshard -------------------------

def _train(mp, directory, name, load=None, save_at=None, no_load_optim=False):
    """Losses of the updates after ``load``'s iteration (or from scratch) up to ``LAST`` or ``save_at``
    at tensor-parallel size ``mp``, dropout on; a checkpoint of ``save_at`` goes to ``directory/name``."""
    mpu.destroy_model_parallel()
    mpu.initialize_model_parallel(mp)
    cfg = tiny_config("--model-parallel-size", str(mp), "--train-iters", str(LAST), "--weight-decay", "0.1",
                      *(["--no-load-optim"] if no_load_optim else [])).updated(load=load)
    engine = make(cfg)
    start = 0
    if load:
        resume = load_training_checkpoint(cfg, engine)
        start = resume.iteration
        resume.restore_rng()
    loader = iter(SyntheticLoader(cfg.training.batch_size, start=start))
    losses = []
    for iteration in range(start + 1, (save_at or LAST) + 1):
        losses.append(engine.train_batch([next(loader)], language_model_loss).loss)
    if save_at:
        save_training_checkpoint(os.path.join(directory, name), save_at, engine)
    if torch.distributed.get_rank() == 0:
        with open(os.path.join(directory, f"{name}.json"), "w") as f:
            json.dump(losses, f)


def _env(rank, world):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))


def _first_tp1(rank, world, directory):
    _env(rank, world)
    _train(1, directory, "tp1", save_at=FIRST_SAVE)


def _tp2(rank, world, directory):
    _env(rank, world)
    _train(2, directory, "tp2-from-original", load=f"{directory}/tp1", save_at=SECOND_SAVE)
    _train(2, directory, "tp2-from-converted", load=f"{directory}/tp1_MP2", save_at=SECOND_SAVE)
    _train(2, directory, "tp2-fresh-optimizer", load=f"{directory}/tp1_MP2", save_at=SECOND_SAVE,
           no_load_optim=True)


def _back_to_tp1(rank, world, directory):
    _env(rank, world)
    _train(1, directory, "tp1-from-original", load=f"{directory}/tp2-from-original")
    _train(1, directory, "tp1-from-converted", load=f"{directory}/tp2-from-original_MP1")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("change-mp-resume"))
    run_distributed(_first_tp1, 1, directory)
    change_model_parallel(f"{directory}/tp1", 2, **QUIET)
    run_distributed(_tp2, 2, directory)
    change_model_parallel(f"{directory}/tp2-from-original", 1, **QUIET)
    run_distributed(_back_to_tp1, 1, directory)
    losses = {}
    for name in os.listdir(directory):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as f:
                losses[name[:-5]] = json.load(f)
    return directory, losses


@pytest.mark.slow
def test_tensor_parallel_1_to_2_resumes_like_the_load_time_reshard(runs):
    directory, losses = runs
    _, shards = _files(f"{directory}/tp1_MP2")
    assert all(shard["optimizer"] is not None and shard[RNG_TRACKER_SIZE_KEY] == 1 for shard in shards)
    converted, original = losses["tp2-from-converted"], losses["tp2-from-original"]
    assert len(converted) == SECOND_SAVE - FIRST_SAVE
    assert converted == original  # bit for bit
    # The optimizer state matters: Adam restarted from zero moments gives other losses from the second update.
    fresh = losses["tp2-fresh-optimizer"]
    assert fresh[0] == converted[0] and max(abs(a - b) for a, b in zip(fresh[1:], converted[1:])) > 1e-3


@pytest.mark.slow
def test_tensor_parallel_2_to_1_resumes_like_the_load_time_reshard(runs):
    directory, losses = runs
    (shard,) = _files(f"{directory}/tp2-from-original_MP1")[1]
    assert shard["optimizer"] is not None and shard[RNG_TRACKER_SIZE_KEY] == 2
    converted, original = losses["tp1-from-converted"], losses["tp1-from-original"]
    assert len(converted) == LAST - SECOND_SAVE
    assert converted == original


# -- the same through the programs: pretrain_glm.py at tensor-parallel size 2 on a converted checkpoint --

def _pretrain_tp2(corpus, tmp_path, load, save):
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(ROOT / "pretrain_glm.py"), *flags(corpus, tmp_path / "cache", "--save", str(save), "--load", str(load),
                                                "--model-parallel-size", "2", "--train-iters", "8")],
        cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "at iteration 4" in result.stdout
    return losses(save)


@pytest.mark.slow
def test_pretrain_glm_resumes_a_converted_checkpoint_with_its_optimizer(corpus, tmp_path):
    trained = run(flags(corpus, tmp_path / "cache", "--save", str(tmp_path / "s"), "--train-iters", "4"))
    assert trained.returncode == 0, trained.stderr[-3000:]
    (run_dir,) = glob.glob(f"{tmp_path}/s/run-*")
    converted = subprocess.run([sys.executable, str(ROOT / "change_mp.py"), run_dir, "2"], cwd=ROOT, env=env(),
                               capture_output=True, text=True, timeout=120)
    assert converted.returncode == 0, converted.stderr
    assert "optimizer state re-cut" in converted.stdout and "--no-load-optim" not in converted.stdout
    from_converted = _pretrain_tp2(corpus, tmp_path, run_dir + "_MP2", tmp_path / "from-converted")
    from_original = _pretrain_tp2(corpus, tmp_path, run_dir, tmp_path / "from-original")
    assert sorted(from_converted) == [5, 6, 7, 8]
    assert from_converted == from_original  # bit for bit
