"""A real ZeRO-2 checkpoint written by a 1-process DeepSpeed engine, consolidated into an fp32
``module`` in the original layout (glm/checkpoint/zero.py, ``change_mp.py --consolidate-zero``)."""

import json
import os

import pytest
import torch

from glm import mpu
from glm.checkpoint import CheckpointError, load_model_state
from change_mp import main as change_mp_main
from glm.checkpoint.zero import consolidate_zero_checkpoint
from tests.distributed.launcher import run_distributed
from tests.distributed.test_engines_distributed import NO_DROPOUT, make, run_engine
from tests.training.synthetic import SyntheticLoader, tiny_config


def _write_zero_checkpoint(rank, world, save_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    mpu.initialize_model_parallel(1)
    config = {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1,
              "zero_optimization": {"stage": 2}, "zero_allow_untested_optimizer": True,
              "steps_per_print": 10 ** 9}
    path = os.path.join(save_dir, "ds_config.json")
    with open(path, "w") as f:
        json.dump(config, f)
    engine = make(tiny_config(*NO_DROPOUT, "--batch-size", "2", "--deepspeed", "--deepspeed_config", path))
    run_engine(engine, SyntheticLoader(2, rank, world), 2)
    engine.engine.save_checkpoint(os.path.join(save_dir, "run"), tag="2", client_state={"iteration": 2})
    torch.save({k: v.detach().clone() for k, v in engine.module.state_dict().items()},
               os.path.join(save_dir, "expected.pt"))


@pytest.mark.slow
def test_zero2_checkpoint_consolidates_to_fp32_module(tmp_path):
    pytest.importorskip("deepspeed")
    run_distributed(_write_zero_checkpoint, 1, str(tmp_path))
    save = str(tmp_path / "run")
    assert any(n.endswith("optim_states.pt") for n in os.listdir(os.path.join(save, "2")))
    expected = torch.load(tmp_path / "expected.pt", weights_only=True)

    out = consolidate_zero_checkpoint(save, str(tmp_path / "fp32"))
    state = torch.load(os.path.join(out, "2", "mp_rank_00_model_states.pt"), weights_only=True)
    assert state["iteration"] == 2 and state["mp_world_size"] == 1
    assert set(state["module"]) == set(expected)
    for key, value in expected.items():
        assert state["module"][key].dtype == torch.float32
        assert torch.equal(state["module"][key], value.float()), key
    with open(os.path.join(out, "latest_checkpointed_iteration.txt")) as f:
        assert f.read() == "2\n"

    # Loadable by the ordinary loader.
    cfg = tiny_config()
    from glm.training.model_setup import build_model
    model = build_model(cfg)
    load_model_state(model, out)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())

    # Refusals, and the change_mp.py flag (consolidate, then re-cut to 2).
    with pytest.raises(CheckpointError, match="already exists"):
        consolidate_zero_checkpoint(save, out)
    assert change_mp_main([save, "2", "--consolidate-zero", "--output", str(tmp_path / "mp2")]) == 0
    shards = [torch.load(tmp_path / "mp2" / "2" / f"mp_rank_0{r}_model_states.pt", weights_only=True)
              for r in range(2)]
    assert shards[0]["module"]["word_embeddings.weight"].shape[0] * 2 == expected["word_embeddings.weight"].shape[0]
    with pytest.raises(CheckpointError, match="no ZeRO optimizer shards"):
        consolidate_zero_checkpoint(out, str(tmp_path / "again"))
