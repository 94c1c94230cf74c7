"""Hugging Face export (THUDM/glm-* layout) and import: identical tensors both ways, mp=2 input,
heads, the GLM-10B-Chinese row copy, and refusals."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from glm.checkpoint import CheckpointError, save_model_checkpoint
from glm.checkpoint import hf_export
from glm.checkpoint.hf_export import HubModel, export_to_hf, import_from_hf
from tests.helpers import tiny_glm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIET = dict(log=lambda *a: None)


def _module(directory, tag):
    names = sorted(n for n in os.listdir(os.path.join(directory, tag)) if n.startswith("mp_rank_"))
    return [torch.load(os.path.join(directory, tag, n), weights_only=True)["module"] for n in names]


def _original(reference_dir, name, sub="model"):
    d = reference_dir / sub / "checkpoints" / name
    tag = (d / "latest_checkpointed_iteration.txt").read_text().strip()
    return torch.load(d / tag / "mp_rank_00_model_states.pt", weights_only=True)["module"]


def assert_equal_dicts(a, b):
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def test_export_and_back_is_identical(reference_dir, tmp_path):
    original = _original(reference_dir, "glm_main")
    hf = export_to_hf(str(reference_dir / "model/checkpoints/glm_main"), str(tmp_path / "hf"),
                      num_attention_heads=4, tokenizer="bert", **QUIET)
    files = set(os.listdir(hf))
    assert {"model.safetensors", "pytorch_model.bin", "config.json", "vocab.txt", "tokenizer_config.json"} <= files
    assert_equal_dicts(load_file(os.path.join(hf, "model.safetensors")), original)
    assert_equal_dicts(torch.load(os.path.join(hf, "pytorch_model.bin"), weights_only=True), original)
    config = json.load(open(os.path.join(hf, "config.json")))
    assert config["model_type"] == "glm_blank" and config["num_layers"] == 2 and config["hidden_size"] == 64
    assert config["vocab_size"] == 512 and config["num_attention_heads"] == 4
    assert config["max_sequence_length"] == 64 and config["block_position_encoding"] is True
    assert config["relative_encoding"] is False and config["spell_length"] is None
    back = import_from_hf(hf, str(tmp_path / "back"), **QUIET)
    assert_equal_dicts(_module(back, "release")[0], original)
    assert open(os.path.join(back, "latest_checkpointed_iteration.txt")).read() == "release\n"


def test_export_of_a_model_parallel_checkpoint(reference_dir, tmp_path):
    hf = export_to_hf(str(reference_dir / "model/checkpoints/glm_main_MP2"), str(tmp_path / "hf"),
                      num_attention_heads=4, **QUIET)
    assert_equal_dicts(load_file(os.path.join(hf, "model.safetensors")), _original(reference_dir, "glm_main"))
    # ... and back at model-parallel size 2 gives the original MP2 shards.
    back = import_from_hf(hf, str(tmp_path / "back"), mp_size=2, **QUIET)
    ours = _module(back, "release")
    for rank, shard in enumerate(ours):
        theirs = torch.load(reference_dir / "model/checkpoints/glm_main_MP2/1000" /
                            f"mp_rank_0{rank}_model_states.pt", weights_only=True)["module"]
        assert_equal_dicts(shard, theirs)


def test_xl_and_head_round_trip(reference_dir, tmp_path):
    xl = export_to_hf(str(reference_dir / "model/checkpoints/glm_xl"), str(tmp_path / "xl"), **QUIET)
    assert json.load(open(os.path.join(xl, "config.json")))["num_attention_heads"] == 4  # from r_w_bias
    assert_equal_dicts(_module(import_from_hf(xl, str(tmp_path / "xl_back"), **QUIET), "release")[0],
                       _original(reference_dir, "glm_xl"))

    name = "glm_main_rte_classification"
    hf = export_to_hf(str(reference_dir / "downstream/checkpoints" / name), str(tmp_path / "head"),
                      num_attention_heads=4, **QUIET)
    tensors = load_file(os.path.join(hf, "model.safetensors"))
    assert "glm.word_embeddings.weight" in tensors and "pool_layer.weight" in tensors
    config = json.load(open(os.path.join(hf, "config.json")))
    assert config["architectures"] == ["GLMForSequenceClassification"] and config["output_predict"] is False
    back = import_from_hf(hf, str(tmp_path / "head_back"), **QUIET)
    assert_equal_dicts(_module(back, "release")[0], _original(reference_dir, name, "downstream"))


def test_glm10b_chinese_row_copy(tmp_path, monkeypatch):
    monkeypatch.setitem(hf_export.HUB_MODELS, "glm-10b-chinese", HubModel(1, 8, 2, 32, 50048, "chinese_sp"))
    torch.manual_seed(0)
    model = tiny_glm(vocab=50048, hidden=8, heads=2, layers=1)
    src = str(tmp_path / "ckpt")
    save_model_checkpoint(src, "release", {"module": model.state_dict(), "iteration": 0})
    hf = export_to_hf(src, str(tmp_path / "hf"), model_name="glm-10b-chinese", **QUIET)
    weight = load_file(os.path.join(hf, "model.safetensors"))["word_embeddings.weight"]
    original = model.state_dict()["word_embeddings.weight"]
    assert torch.equal(weight[50009], original[50007])
    keep = torch.ones(50048, dtype=torch.bool)
    keep[50009] = False
    assert torch.equal(weight[keep], original[keep])
    config = json.load(open(os.path.join(hf, "config.json")))
    assert config["_name_or_path"] == "THUDM/glm-10b-chinese"
    assert json.load(open(os.path.join(hf, "tokenizer_config.json")))["tokenizer_class"] == "GLMChineseTokenizer"


def test_refusals(reference_dir, tmp_path):
    with pytest.raises(CheckpointError, match="attention heads"):
        export_to_hf(str(reference_dir / "model/checkpoints/glm_main"), str(tmp_path / "a"), **QUIET)
    with pytest.raises(CheckpointError, match="glm-large is"):
        export_to_hf(str(reference_dir / "model/checkpoints/glm_main"), str(tmp_path / "b"),
                     model_name="glm-large", **QUIET)
    (tmp_path / "not_hf").mkdir()
    with pytest.raises(CheckpointError, match="neither"):
        import_from_hf(str(tmp_path / "not_hf"), str(tmp_path / "c"), **QUIET)


def test_cli(reference_dir, tmp_path):
    script = os.path.join(ROOT, "scripts", "convert_glm_checkpoint_to_transformers.py")
    env = dict(os.environ, PYTHONPATH=ROOT)
    src = str(reference_dir / "model/checkpoints/glm_main_MP2/1000/mp_rank_00_model_states.pt")
    subprocess.run([sys.executable, script, src, "--num-attention-heads", "4", "--tokenizer", "gpt2",
                    "--output", str(tmp_path / "hf")], check=True, env=env, capture_output=True)
    assert {"vocab.json", "merges.txt"} <= set(os.listdir(tmp_path / "hf"))
    subprocess.run([sys.executable, script, "--to-glm", str(tmp_path / "hf"), str(tmp_path / "back")],
                   check=True, env=env, capture_output=True)
    assert_equal_dicts(_module(str(tmp_path / "back"), "release")[0], _original(reference_dir, "glm_main"))


# The hub's GLMConfig fields (spec 1.1: the GLMModel constructor arguments) as THUDM/glm-* config.json has them.
HUB_CONFIG = {"architectures": ["GLMModel"], "model_type": "glm", "num_layers": 2, "vocab_size": 512,
              "hidden_size": 64, "num_attention_heads": 4, "embedding_dropout_prob": 0.1,
              "attention_dropout_prob": 0.1, "output_dropout_prob": 0.1, "max_sequence_length": 64,
              "checkpoint_activations": False, "checkpoint_num_layers": 1, "parallel_output": True,
              "relative_encoding": False, "block_position_encoding": True, "output_predict": True,
              "spell_length": None, "spell_func": "lstm", "attention_scale": 1.0, "torch_dtype": "float32",
              "auto_map": {"AutoConfig": "configuration_glm.GLMConfig"}}


@pytest.mark.parametrize("layout", ["bin", "safetensors-sharded"])
def test_hub_layout_folder_to_model_parallel_2(reference_dir, tmp_path, layout):
    """A folder written from the spec's names alone (``glm.`` + the tensor names of spec 1.3, hub
    config fields) comes in at model-parallel size 2 as the original's own MP2 shards."""
    from safetensors.torch import save_file

    original = _original(reference_dir, "glm_main")
    hub = tmp_path / "THUDM-glm-tiny"
    hub.mkdir()
    (hub / "config.json").write_text(json.dumps(HUB_CONFIG))
    tensors = {"glm." + name: tensor for name, tensor in original.items()}
    if layout == "bin":
        torch.save(tensors, hub / "pytorch_model.bin")
    else:
        names = sorted(tensors)
        shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
        for shard, keys in shards.items():
            save_file({k: tensors[k].contiguous() for k in keys}, str(hub / shard))
        weight_map = {k: shard for shard, keys in shards.items() for k in keys}
        (hub / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    back = import_from_hf(str(hub), str(tmp_path / "ours"), mp_size=2, **QUIET)
    for rank, shard in enumerate(_module(back, "release")):
        theirs = torch.load(reference_dir / "model/checkpoints/glm_main_MP2/1000" /
                            f"mp_rank_0{rank}_model_states.pt", weights_only=True)["module"]
        assert_equal_dicts(shard, theirs)
