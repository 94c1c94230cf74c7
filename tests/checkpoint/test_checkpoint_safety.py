"""Checkpoint files never run code by default, and no output folder can swallow its input.

Issue cases: a crafted checkpoint that runs code when unpickled is refused on every reading path
(the code never runs); the original-layout reference checkpoints and files with numpy RNG states
still load; ``--unsafe-unpickle`` is the only way to full unpickling.  ``change_mp.py``,
ZeRO consolidation and the Hugging Face export/import refuse an output that is, contains or lies
inside their input whatever ``--output``/``--overwrite`` say, and the input stays byte for byte.
"""

import argparse
import glob
import hashlib
import os
import random
import shutil

import numpy as np
import pytest
import torch

from glm.checkpoint import CheckpointError, load_checkpoint_file, load_model_state, save_model_checkpoint
from change_mp import main as change_mp_main
from glm.checkpoint.change_mp import change_model_parallel
from glm.checkpoint.hf_export import export_to_hf, import_from_hf
from glm.checkpoint.io import check_checkpoint_globals
from glm.checkpoint.zero import consolidate_zero_checkpoint
from tests.helpers import tiny_glm

QUIET = {"log": lambda *a: None}


class _RunsCode:
    """Unpickling this calls ``open(marker, 'w')``: stands for any code an attacker could run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_checkpoint(directory, marker):
    torch.manual_seed(0)
    state = {"module": tiny_glm().state_dict(), "iteration": 5, "payload": _RunsCode(str(marker))}
    save_model_checkpoint(str(directory), "5", state)
    return directory


def test_crafted_file_is_refused_on_every_path_and_its_code_never_runs(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    ckpt = _evil_checkpoint(tmp_path / "evil", marker)
    shard = glob.glob(str(ckpt / "5" / "mp_rank_00_model_states.pt"))[0]
    with pytest.raises(CheckpointError, match="--unsafe-unpickle") as err:
        load_checkpoint_file(shard)
    assert "it imports io.open" in str(err.value) and shard in str(err.value)
    with pytest.raises(CheckpointError, match="weights-only load refuses"):
        load_model_state(tiny_glm(), str(ckpt))  # --load / --load-pretrained / generation
    assert change_mp_main([str(ckpt), "2", "--output", str(tmp_path / "out")]) == 2
    assert "--unsafe-unpickle" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="refuses"):
        export_to_hf(str(ckpt), str(tmp_path / "hf"), num_attention_heads=2, **QUIET)
    with pytest.raises(CheckpointError, match="refuses"):  # what runs before DeepSpeed reads ZeRO shards
        check_checkpoint_globals([shard])
    assert not marker.exists()
    assert not (tmp_path / "out").exists() and not (tmp_path / "hf").exists()


def test_unsafe_unpickle_is_the_explicit_way_to_full_unpickling(tmp_path):
    # A harmless object outside the allow-list (the original's Megatron-era scripts saved argparse args).
    state = {"module": tiny_glm().state_dict(), "iteration": 3, "args": argparse.Namespace(lr=1e-4)}
    save_model_checkpoint(str(tmp_path / "c"), "3", state)
    path = str(tmp_path / "c" / "3" / "mp_rank_00_model_states.pt")
    with pytest.raises(CheckpointError, match="argparse.Namespace"):
        load_checkpoint_file(path)
    assert load_checkpoint_file(path, unsafe_unpickle=True)["args"].lr == 1e-4
    meta = load_model_state(tiny_glm(), str(tmp_path / "c"), unsafe_unpickle=True)
    assert meta["iteration"] == 3
    assert change_mp_main([str(tmp_path / "c"), "2", "--output", str(tmp_path / "mp2"), "--unsafe-unpickle"]) == 0
    assert len(os.listdir(tmp_path / "mp2" / "3")) == 2


def test_rng_states_and_original_checkpoints_load_weights_only(reference_dir, tmp_path):
    """What the original's checkpoints hold beyond tensors: Python and numpy RNG states."""
    random.seed(1)
    np.random.seed(1)
    state = {"module": tiny_glm().state_dict(), "random_rng_state": random.getstate(),
             "np_rng_state": np.random.get_state(), "torch_rng_state": torch.get_rng_state(),
             "step": np.int64(7), "ratio": np.float64(0.5)}
    save_model_checkpoint(str(tmp_path), "7", state)
    loaded = load_checkpoint_file(str(tmp_path / "7" / "mp_rank_00_model_states.pt"))
    assert loaded["random_rng_state"] == random.getstate()
    assert np.array_equal(loaded["np_rng_state"][1], np.random.get_state()[1])
    assert loaded["step"] == 7 and loaded["ratio"] == 0.5
    files = glob.glob(str(reference_dir / "**" / "mp_rank_*_model_states.pt"), recursive=True)
    assert len(files) >= 10
    for path in files:
        assert "module" in load_checkpoint_file(path)


# -- no output can swallow its input ----------------------------------------------------------------


def _digest(directory):
    """Every file under ``directory`` with the hash of its bytes."""
    out = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


@pytest.fixture
def run_folder(reference_dir, tmp_path):
    """A training run's folder: a checkpoint plus the other files a run keeps beside it."""
    run = tmp_path / "runs" / "exp"
    shutil.copytree(reference_dir / "model" / "checkpoints" / "glm_main", run)
    shutil.copytree(run / "1000", run / "500")
    (run / "config.json").write_text("{}")
    (run / "train_log.jsonl").write_text('{"iteration": 1, "loss": 10.0}\n')
    return run


def _outputs_over(run):
    """Every way an output can overlap ``run``: the folder itself (also spelt differently), an
    ancestor, a descendant (new or existing)."""
    return {"same": str(run), "same, trailing slash": str(run) + os.sep,
            "same, via ..": str(run / ".." / run.name), "parent": str(run.parent),
            "grandparent": str(run.parent.parent), "new child": str(run / "mp2"),
            "existing tag folder": str(run / "1000")}


@pytest.mark.parametrize("overwrite", [False, True])
def test_change_mp_never_writes_over_its_input(run_folder, overwrite, capsys):
    before = _digest(run_folder)
    for label, output in _outputs_over(run_folder).items():
        argv = [str(run_folder), "2", "--output", output] + (["--overwrite"] if overwrite else [])
        assert change_mp_main(argv) == 2, label
        message = capsys.readouterr().err
        assert "outside the input" in message, (label, message)
        with pytest.raises(CheckpointError):
            change_model_parallel(str(run_folder), 2, output, overwrite=overwrite, **QUIET)
    assert _digest(run_folder) == before
    assert not glob.glob(str(run_folder.parent / ".*tmp-*"))


def test_conversions_never_write_over_their_input(run_folder, tmp_path):
    before = _digest(run_folder)
    for label, output in _outputs_over(run_folder).items():
        with pytest.raises(CheckpointError, match="outside the input"):
            export_to_hf(str(run_folder), output, num_attention_heads=4, overwrite=True, **QUIET)
        with pytest.raises(CheckpointError, match="outside the input"):
            import_from_hf(str(run_folder), output, overwrite=True, **QUIET)
        with pytest.raises(CheckpointError, match="outside the input"):
            consolidate_zero_checkpoint(str(run_folder), output, overwrite=True)
    assert _digest(run_folder) == before
    # The ordinary case still works: an output beside the input.
    change_model_parallel(str(run_folder), 2, str(tmp_path / "beside"), **QUIET)
    assert sorted(os.listdir(tmp_path / "beside" / "1000")) == ["mp_rank_00_model_states.pt",
                                                                 "mp_rank_01_model_states.pt"]


def test_output_that_is_a_file_is_refused(run_folder, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    with pytest.raises(CheckpointError, match="is a file"):
        change_model_parallel(str(run_folder), 2, str(target), overwrite=True, **QUIET)
    assert target.read_text() == "keep me"
