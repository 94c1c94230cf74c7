"""change_mp.py: the original's MP2 shards bit for bit, merges, round trips of heads and prompt
encoders, logits of re-cut shards on two gloo ranks, and clear refusals of bad input."""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from glm import mpu
from glm.checkpoint import CheckpointError, save_model_checkpoint
from change_mp import main
from glm.checkpoint.change_mp import change_model_parallel
from glm.checkpoint.shape_inference import checkpoint_partitions
from tests.distributed.launcher import run_distributed
from tests.helpers import glm_batch, tiny_glm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = dict(log=lambda *a: None)


def _copy(src, dst):
    shutil.copytree(src, dst)
    for dirpath, dirnames, filenames in os.walk(dst):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return str(dst)


def _files(directory):
    with open(os.path.join(directory, "latest_checkpointed_iteration.txt")) as f:
        tag = f.read().strip()
    tag_dir = os.path.join(directory, tag)
    names = sorted(n for n in os.listdir(tag_dir) if n.startswith("mp_rank_"))
    return tag, [torch.load(os.path.join(tag_dir, n), weights_only=False) for n in names]


def assert_same_checkpoint(ours, theirs, check_order=True):
    tag_a, a = _files(ours)
    tag_b, b = _files(theirs)
    assert tag_a == tag_b and len(a) == len(b)
    for x, y in zip(a, b):
        if check_order:
            assert list(x) == list(y)
        assert set(x) == set(y)
        for key in x:
            if key != "module":
                assert x[key] == y[key], key
                continue
            assert list(x[key]) == list(y[key])
            for name, tensor in x[key].items():
                other = y[key][name]
                assert tensor.dtype == other.dtype and torch.equal(tensor, other), name


@pytest.mark.parametrize("name", ["glm_main", "glm_xl", "glm_main_ds_fp16"])
def test_split_to_two_matches_the_original(reference_dir, tmp_path, name):
    src = _copy(reference_dir / "model" / "checkpoints" / name, tmp_path / name)
    out = change_model_parallel(src, 2, **QUIET)
    assert out == src + "_MP2"
    assert_same_checkpoint(out, str(reference_dir / "model" / "checkpoints" / f"{name}_MP2"))
    for tracker in ("latest", "latest_checkpointed_iteration.txt"):
        with open(os.path.join(out, tracker)) as f:
            assert f.read() == _files(src)[0] + "\n"


def test_ds_client_keys(reference_dir, tmp_path):
    src = _copy(reference_dir / "model" / "checkpoints" / "glm_main_ds_fp16", tmp_path / "ds")
    out = change_model_parallel(src, 2, **QUIET)
    _, shards = _files(out)
    for shard in shards:
        assert shard["optimizer"] is None and shard["lr_scheduler"] is None
        assert shard["csr_tensor_module_names"] is None
        assert shard["mp_world_size"] == 2 and shard["iteration"] == 1000
        assert isinstance(shard["client_lr_scheduler"], dict)


@pytest.mark.parametrize("name", ["glm_main", "glm_xl", "glm_main_ds_fp16"])
def test_merge_back_gives_the_original(reference_dir, tmp_path, name):
    src = _copy(reference_dir / "model" / "checkpoints" / f"{name}_MP2", tmp_path / f"{name}_MP2")
    out = change_model_parallel(src, 1, output_dir=str(tmp_path / "merged"), **QUIET)
    original = str(reference_dir / "model" / "checkpoints" / name)
    if name == "glm_main_ds_fp16":
        # Keys that change_mp None-s (optimizer, csr...) stay None; the tensors are the original's.
        _, (ours,) = _files(out)
        _, (theirs,) = _files(original)
        for key, tensor in theirs["module"].items():
            assert torch.equal(ours["module"][key], tensor) and ours["module"][key].dtype == tensor.dtype
        assert ours["mp_world_size"] == 1
    else:
        assert_same_checkpoint(out, original, check_order=False)


def _round_trip(src, tmp_path, sizes=(4, 2, 1), **kw):
    current = src
    outputs = []
    for size in sizes:
        current = change_model_parallel(current, size, output_dir=str(tmp_path / f"mp{size}_{len(outputs)}"),
                                        **QUIET, **kw)
        outputs.append(current)
    return outputs


def _module(directory):
    return [c["module"] for c in _files(directory)[1]]


@pytest.mark.parametrize("name", ["glm_main_copa_multiple_choice_head", "glm_main_rte_classification"])
def test_heads_round_trip_and_stay_whole(reference_dir, tmp_path, name):
    src = _copy(reference_dir / "downstream" / "checkpoints" / name, tmp_path / name)
    mp4, mp2, mp1 = _round_trip(src, tmp_path)
    original = _module(src)[0]
    for shard in _module(mp4):
        for key in ("pool_layer.weight", "pool_layer.bias", "multichoice_head.weight", "multichoice_head.bias"):
            if key in original:
                assert torch.equal(shard[key], original[key]), key
        assert shard["model.word_embeddings.weight"].shape[0] == original["model.word_embeddings.weight"].shape[0] // 4
    assert_same_checkpoint(mp1, src, check_order=False)


@pytest.mark.parametrize("spell_func", ["lstm", "mlp"])
def test_prompt_spell_round_trip(tmp_path, spell_func):
    torch.manual_seed(0)
    model = tiny_glm(vocab=64, hidden=32, heads=4, spell_length=3, spell_func=spell_func)
    src = str(tmp_path / "ptuning")
    save_model_checkpoint(src, "best", {"module": model.state_dict(), "iteration": 5})
    layout, info = checkpoint_partitions(model.state_dict())
    assert info.spell_length == 3 and info.spell_func == spell_func
    assert all(layout[k] == (None, 1) for k in layout if k.startswith("prompt_spell."))
    mp4, mp2, mp1 = _round_trip(src, tmp_path)
    for shard in _module(mp4):
        for key, value in model.state_dict().items():
            if key.startswith("prompt_spell."):
                assert torch.equal(shard[key], value)
    assert_same_checkpoint(mp1, src, check_order=False)


def test_xl_and_main_round_trip(reference_dir, tmp_path):
    for name, sizes in (("glm_main", (4, 2, 8, 1)), ("glm_xl", (4, 2, 1))):  # glm_xl has 4 heads
        src = _copy(reference_dir / "model" / "checkpoints" / name, tmp_path / name)
        *_, mp1 = _round_trip(src, tmp_path / f"{name}_outputs", sizes=sizes)  # beside the input, not inside
        assert_same_checkpoint(mp1, src, check_order=False)


# -- spawned ranks run the re-cut shards ------------------------------------------------------

def _logits_worker(rank, world, directory, ref_logits, batch):
    mpu.initialize_model_parallel(world)
    model = tiny_glm(vocab=512, hidden=64, heads=4, max_seq=64).eval()
    shard = _files(directory)[1][rank]["module"]
    model.load_state_dict(shard)
    with torch.no_grad():
        logits = model(*batch)[0]
    parts = [torch.empty_like(logits) for _ in range(world)]
    torch.distributed.all_gather(parts, logits, group=mpu.get_model_parallel_group())
    full = torch.cat(parts, dim=-1)
    assert (full - ref_logits).abs().max().item() < 1e-5


def test_recut_shards_give_unsplit_logits_on_two_ranks(reference_dir, tmp_path):
    src = _copy(reference_dir / "model" / "checkpoints" / "glm_main", tmp_path / "glm_main")
    mp4, mp2 = _round_trip(src, tmp_path, sizes=(4, 2))
    model = tiny_glm(vocab=512, hidden=64, heads=4, max_seq=64).eval()
    model.load_state_dict(_module(src)[0])
    batch = glm_batch(batch=2, length=10, vocab=512, max_seq=64, seed=5)
    with torch.no_grad():
        ref = model(*batch)[0]
    run_distributed(_logits_worker, 2, mp2, ref, batch)


# -- bad input ----------------------------------------------------------------------------------

def test_refuses_sizes_that_do_not_divide(reference_dir, tmp_path):
    src = _copy(reference_dir / "model" / "checkpoints" / "glm_main", tmp_path / "glm_main")
    with pytest.raises(CheckpointError, match="vocabulary size 512"):
        change_model_parallel(src, 3, **QUIET)
    with pytest.raises(CheckpointError, match="number of attention heads 4"):
        change_model_parallel(src, 8, num_attention_heads=4, **QUIET)
    xl = _copy(reference_dir / "model" / "checkpoints" / "glm_xl", tmp_path / "glm_xl")
    with pytest.raises(CheckpointError, match="attention heads 4"):  # known from r_w_bias
        change_model_parallel(xl, 8, **QUIET)
    assert not os.path.exists(src + "_MP3") and not os.path.exists(src + "_MP8")


def test_refuses_mixed_iterations_and_missing_ranks(reference_dir, tmp_path):
    src = _copy(reference_dir / "model" / "checkpoints" / "glm_main_MP2", tmp_path / "mixed")
    path = os.path.join(src, "1000", "mp_rank_01_model_states.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["iteration"] = 900
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="different iterations"):
        change_model_parallel(src, 1, **QUIET)

    missing = _copy(reference_dir / "model" / "checkpoints" / "glm_main_MP2", tmp_path / "missing")
    os.remove(os.path.join(missing, "1000", "mp_rank_00_model_states.pt"))
    with pytest.raises(CheckpointError, match="missing model-parallel shard"):
        change_model_parallel(missing, 1, **QUIET)

    ds = _copy(reference_dir / "model" / "checkpoints" / "glm_main_ds_fp16_MP2", tmp_path / "ds_missing")
    os.remove(os.path.join(ds, "1000", "mp_rank_01_model_states.pt"))
    with pytest.raises(CheckpointError, match="mp_world_size=2"):
        change_model_parallel(ds, 1, **QUIET)


def test_refuses_non_checkpoints_and_existing_output(reference_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="neither"):
        change_model_parallel(str(empty), 2, **QUIET)
    with pytest.raises(CheckpointError, match="not a directory"):
        change_model_parallel(str(empty / "notes.txt"), 2, **QUIET)
    assert main([str(empty), "2"]) == 2
    assert "error" in capsys.readouterr().err

    src = _copy(reference_dir / "model" / "checkpoints" / "glm_main", tmp_path / "glm_main")
    os.makedirs(src + "_MP2")
    with pytest.raises(CheckpointError, match="already exists"):
        change_model_parallel(src, 2, **QUIET)
    change_model_parallel(src, 2, overwrite=True, **QUIET)
    assert len(_files(src + "_MP2")[1]) == 2


def test_cli_reports_dropped_optimizer(tmp_path):
    model = tiny_glm(vocab=64, hidden=32, heads=4)
    src = str(tmp_path / "run")
    # The original's FP16_Optimizer layout: not a torch.optim state, so it cannot be re-cut.
    fp16_optimizer = {"loss_scaler": 1024.0, "dynamic_loss_scale": True, "optimizer_state_dict": {}}
    save_model_checkpoint(src, "release", {"module": model.state_dict(), "iteration": 3,
                                            "optimizer": fp16_optimizer})
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "change_mp.py"), src, "2"], capture_output=True,
                            text=True, env=env, cwd=ROOT, check=True)
    assert "optimizer" in result.stdout and "--no-load-optim" in result.stdout
    tag, shards = _files(src + "_MP2")
    assert tag == "release" and all(s["optimizer"] is None and s["iteration"] == 3 for s in shards)


def test_folder_of_bare_shard_files(reference_dir, tmp_path):
    """A released-archive style folder (mp_rank files, no tracker) gives a folder of the same kind."""
    src = _copy(reference_dir / "model" / "checkpoints" / "glm_main" / "1000", tmp_path / "bare")
    out = change_model_parallel(src, 2, **QUIET)
    assert sorted(os.listdir(out)) == ["mp_rank_00_model_states.pt", "mp_rank_01_model_states.pt"]
    for rank in range(2):
        ours = torch.load(os.path.join(out, f"mp_rank_0{rank}_model_states.pt"), weights_only=True)["module"]
        theirs = torch.load(reference_dir / "model" / "checkpoints" / "glm_main_MP2" / "1000" /
                            f"mp_rank_0{rank}_model_states.pt", weights_only=True)["module"]
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_partial_prompt_only_checkpoint(tmp_path):
    """Finetuning with a frozen transformer saves only the trainable prompt encoder."""
    model = tiny_glm(vocab=64, hidden=32, heads=4, spell_length=2, spell_func="lstm")
    partial = {k: v for k, v in model.state_dict().items() if k.startswith("prompt_spell.")}
    src = str(tmp_path / "prompt_only")
    save_model_checkpoint(src, "best", {"module": partial, "iteration": 7})
    mp2, mp1 = _round_trip(src, tmp_path, sizes=(2, 1))
    for shard in _module(mp2):
        assert all(torch.equal(shard[k], v) for k, v in partial.items())
    assert_same_checkpoint(mp1, src, check_order=False)
