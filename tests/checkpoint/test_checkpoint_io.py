"""Checkpoint files: atomic writes, layout resolution and clear errors."""

import os

import pytest
import torch

from glm.checkpoint import (CheckpointError, load_model_state, resolve_checkpoint, save_model_checkpoint)
from glm.checkpoint.layout import TRACKER_FILENAME
from tests.helpers import glm_batch, tiny_glm


def saved_model(tmp_path, tag="100", **kw):
    torch.manual_seed(0)
    model = tiny_glm(**kw)
    save_model_checkpoint(str(tmp_path), tag, {"module": model.state_dict(), "iteration": 100})
    return model


def test_round_trip_and_tracker(tmp_path):
    model = saved_model(tmp_path)
    assert (tmp_path / TRACKER_FILENAME).read_text() == "100"
    assert (tmp_path / "latest").read_text() == "100"
    other = tiny_glm()
    meta = load_model_state(other, str(tmp_path))
    assert meta["iteration"] == 100
    ids, pos, sep = glm_batch()
    assert torch.equal(model(ids, pos, sep)[0], other(ids, pos, sep)[0])
    assert not [p for p in os.listdir(tmp_path / "100") if p.startswith(".tmp")]


def test_release_tag(tmp_path):
    saved_model(tmp_path, tag="release")
    resolved = resolve_checkpoint(str(tmp_path))
    assert resolved.release and resolved.iteration == 0


def test_half_precision_checkpoint_loads_into_float_and_bfloat_models(tmp_path):
    model = tiny_glm()
    state = {k: v.half() for k, v in model.state_dict().items()}
    save_model_checkpoint(str(tmp_path), 1, {"module": state})
    for dtype in (torch.float32, torch.bfloat16):
        other = tiny_glm().to(dtype)
        load_model_state(other, str(tmp_path))
        assert other.word_embeddings.weight.dtype == dtype


def test_position_tables_extend_when_the_maximum_grows(tmp_path):
    small = saved_model(tmp_path, max_seq=16)
    big = tiny_glm(max_seq=40)
    before = big.transformer.block_position_embeddings.weight.detach().clone()
    load_model_state(big, str(tmp_path))
    for name in ("position_embeddings", "block_position_embeddings"):
        grown = getattr(big.transformer, name).weight
        assert grown.shape[0] == 41
        assert torch.equal(grown[:17], getattr(small.transformer, name).weight)
    assert torch.equal(big.transformer.block_position_embeddings.weight[17:], before[17:])


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    saved_model(tmp_path, hidden=32)
    with pytest.raises(CheckpointError, match=r"'word_embeddings.weight' has shape \[64, 32\] but the model expects \[64, 16\]"):
        load_model_state(tiny_glm(hidden=16), str(tmp_path))


def test_truncated_file_is_reported_as_damaged(tmp_path):
    saved_model(tmp_path)
    path = tmp_path / "100" / "mp_rank_00_model_states.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="looks damaged or truncated.*Re-download"):
        load_model_state(tiny_glm(), str(tmp_path))


def test_garbage_file_is_reported_as_damaged(tmp_path):
    saved_model(tmp_path)
    (tmp_path / "100" / "mp_rank_00_model_states.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="mp_rank_00_model_states.pt .* looks damaged"):
        load_model_state(tiny_glm(), str(tmp_path))


def test_missing_model_parallel_shard(tmp_path):
    model = tiny_glm()
    save_model_checkpoint(str(tmp_path), 5, {"module": model.state_dict()}, mp_rank=0)
    save_model_checkpoint(str(tmp_path), 5, {"module": model.state_dict()}, mp_rank=2)
    with pytest.raises(CheckpointError, match="missing model-parallel shard.*mp_rank_01_model_states.pt"):
        resolve_checkpoint(str(tmp_path))


def test_missing_paths(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint(str(tmp_path / "nope"))
    with pytest.raises(CheckpointError, match="holds neither"):
        resolve_checkpoint(str(tmp_path))
    (tmp_path / TRACKER_FILENAME).write_text("42")
    with pytest.raises(CheckpointError, match="names tag '42'"):
        resolve_checkpoint(str(tmp_path))


def test_crash_during_save_leaves_no_file(tmp_path, monkeypatch):
    model = tiny_glm()

    def exploding_save(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", exploding_save)
    with pytest.raises(KeyboardInterrupt):
        save_model_checkpoint(str(tmp_path), 7, {"module": model.state_dict()})
    assert not (tmp_path / "7" / "mp_rank_00_model_states.pt").exists()
    assert not (tmp_path / TRACKER_FILENAME).exists()
    assert os.listdir(tmp_path / "7") == []


def test_pretrained_weights_of_a_finetuning_run_are_its_best_and_the_log_says_so(tmp_path):
    """``--load-pretrained runs/ft/rte``: the folder's tracker names the last epoch, ``best/`` the best
    dev score; the best weights are loaded and the message names the folder read and the alternative."""
    from glm.checkpoint import load_pretrained_weights
    torch.manual_seed(0)
    last, best = tiny_glm(), tiny_glm()
    save_model_checkpoint(str(tmp_path), "30", {"module": last.state_dict(), "iteration": 30})
    save_model_checkpoint(str(tmp_path), "best", {"module": best.state_dict(), "iteration": 20}, update_tracker=False)
    messages = []
    model = tiny_glm()
    load_pretrained_weights(model, str(tmp_path), log=messages.append)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), best.state_dict().values()))
    assert messages == [f"loaded weights from {tmp_path}/best (the best dev checkpoint of that finetuning run; for "
                        f"its last checkpoint, pass {tmp_path}/30)"]
    load_pretrained_weights(model, str(tmp_path / "30"), log=messages.append)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), last.state_dict().values()))
    assert messages[-1] == f"loaded weights from {tmp_path}/30"
