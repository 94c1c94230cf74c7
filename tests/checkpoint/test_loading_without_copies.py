"""Loading into a model built on the meta device: no random initialisation, the checkpoint
memory-mapped and put in tensor by tensor, the same weights as loading into a materialised model
(resharding and position-table growth included), and a bounded peak memory."""

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers import parse_config
from glm.checkpoint import load_model_state, load_pretrained_weights, save_model_checkpoint
from glm.checkpoint.change_mp import change_model_parallel
from glm.checkpoint.io import load_checkpoint_file, release_pages
from glm.training.model_setup import build_model
from tests.helpers import glm_batch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGS = ["--block-lm", "--num-layers", "2", "--hidden-size", "32", "--num-attention-heads", "4",
         "--max-position-embeddings", "32", "--seq-length", "16", "--vocab-size", "64"]


def _args(*extra):
    return parse_config(FLAGS + list(extra))


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model(_args())
    state = {k: v.half() for k, v in model.state_dict().items()}  # fp16 files, as released
    save_model_checkpoint(str(tmp_path / "ckpt"), "1", {"module": state, "iteration": 1})
    return tmp_path / "ckpt"


def _logits(model):
    ids, pos, sep = glm_batch(batch=2, length=12, vocab=64, max_seq=32, seed=3)
    with torch.no_grad():
        return model.eval()(ids, pos, sep)[0]


def test_meta_construction_draws_no_random_numbers_and_loads_the_same_weights(checkpoint, monkeypatch):
    torch.manual_seed(1)
    old = build_model(_args())  # the previous path: random weights, then the checkpoint copied in
    load_pretrained_weights(old, str(checkpoint), log=lambda *a: None)
    calls = []

    def spy(name, original):
        def init(*args, **kwargs):
            tensor = args[0] if args else kwargs["tensor"]
            calls.append((name, tensor.device.type))
            return original(*args, **kwargs)
        return init

    for name in ("normal_", "kaiming_uniform_", "uniform_"):
        monkeypatch.setattr(torch.nn.init, name, spy(name, getattr(torch.nn.init, name)))
    state = torch.random.get_rng_state()
    new = build_model(_args(), on_meta=True)
    assert all(p.is_meta for p in new.parameters())
    assert torch.equal(torch.random.get_rng_state(), state)  # no random numbers drawn
    assert all(device == "meta" for _, device in calls)  # and no real tensor initialised
    load_pretrained_weights(new, str(checkpoint), log=lambda *a: None)
    assert not any(t.is_meta for t in [*new.parameters(), *new.buffers()])
    for (name, a), (_, b) in zip(old.state_dict().items(), new.state_dict().items()):
        assert torch.equal(a, b), name
    assert torch.equal(_logits(old), _logits(new))
    # The layout attributes survive the swap of the meta parameters (resharding reads them).
    qkv = new.transformer.layers[0].attention.query_key_value.weight
    assert (qkv.partition_dim, qkv.partition_stride) == (0, 3)


def test_meta_model_loads_straight_into_its_dtype(checkpoint):
    model = build_model(_args(), on_meta=True, dtype=torch.bfloat16)
    load_pretrained_weights(model, str(checkpoint), log=lambda *a: None)
    file = load_checkpoint_file(str(checkpoint / "1" / "mp_rank_00_model_states.pt"))["module"]
    for key, value in model.state_dict().items():
        assert value.dtype == torch.bfloat16 and torch.equal(value, file[key].to(torch.bfloat16)), key


def test_position_tables_grow_and_other_model_parallel_sizes_reshard_on_a_meta_model(checkpoint, tmp_path):
    file = load_checkpoint_file(str(checkpoint / "1" / "mp_rank_00_model_states.pt"))["module"]
    longer = build_model(_args("--max-position-embeddings", "48"), on_meta=True)
    load_pretrained_weights(longer, str(checkpoint), log=lambda *a: None)
    for table in ("position_embeddings", "block_position_embeddings"):
        grown = getattr(longer.transformer, table).weight
        stored = file[f"transformer.{table}.weight"]
        assert grown.shape[0] == 49 and torch.equal(grown[:33], stored.float())
        assert torch.isfinite(grown).all() and 0.01 < grown[33:].std().item() < 0.04  # N(0, 0.02) rows
    # An MP2 checkpoint read by a single-process meta model: merged tensor by tensor.
    mp2 = change_model_parallel(str(checkpoint), 2, output_dir=str(tmp_path / "mp2"), log=lambda *a: None)
    model = build_model(_args(), on_meta=True)
    load_model_state(model, mp2)
    for key, value in model.state_dict().items():
        assert torch.equal(value, file[key].float()), key


def test_released_pages_read_back_from_the_file(checkpoint):
    module = load_checkpoint_file(str(checkpoint / "1" / "mp_rank_00_model_states.pt"), mmap=True)["module"]
    copy = {k: v.clone() for k, v in module.items()}
    for value in module.values():
        release_pages(value)
    assert all(torch.equal(module[k], copy[k]) for k in copy)


def _status_kib(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def _peak_worker(path, on_meta):
    # VmHWM, not ru_maxrss: the latter survives exec, so a child of a large pytest worker would report
    # the worker's peak.
    cfg = parse_config(["--block-lm", "--num-layers", "4", "--hidden-size", "512", "--num-attention-heads", "8",
                     "--max-position-embeddings", "512", "--seq-length", "64", "--vocab-size", "8192"])
    before = _status_kib("VmRSS")  # resident now, below the import-time peak
    model = build_model(cfg, on_meta=on_meta)
    load_pretrained_weights(model, path, log=lambda *a: None)
    grown = _status_kib("VmHWM") - before
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    print(json.dumps({"grown_bytes": grown * 1024, "model_bytes": size}))


@pytest.mark.slow
def test_loading_holds_the_model_once(tmp_path):
    """Peak resident memory while loading a 17M-parameter fp16 checkpoint into an fp32 meta model
    stays near the model itself (the old path held the random model, the file and a cast copy)."""
    cfg = parse_config(["--block-lm", "--num-layers", "4", "--hidden-size", "512", "--num-attention-heads", "8",
                     "--max-position-embeddings", "512", "--seq-length", "64", "--vocab-size", "8192"])
    model = build_model(cfg, on_meta=True)
    state = {k: torch.randn(v.shape).half() for k, v in model.state_dict().items()}
    save_model_checkpoint(str(tmp_path / "big"), "1", {"module": state})
    code = ("import sys; sys.path.insert(0, %r); from tests.checkpoint.test_loading_without_copies import _peak_worker; "
            "_peak_worker(%r, %s)")
    measured = {}
    for on_meta in (True, False):
        out = subprocess.run([sys.executable, "-c", code % (ROOT, str(tmp_path / "big"), on_meta)], cwd=ROOT,
                             capture_output=True, text=True, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        measured[on_meta] = json.loads(out.stdout.strip().splitlines()[-1])
    new, old = measured[True], measured[False]
    print(f"growth while loading: meta {new['grown_bytes'] / 2**20:.0f} MiB, random-init path "
          f"{old['grown_bytes'] / 2**20:.0f} MiB, model {new['model_bytes'] / 2**20:.0f} MiB")
    assert new["grown_bytes"] < 1.3 * new["model_bytes"]
    assert new["grown_bytes"] < old["grown_bytes"]
