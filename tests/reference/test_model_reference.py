"""GLMModel on the original's checkpoints reproduces the recorded logits, memories and losses.

Tolerance: 1e-4 absolute on float32 logits (the observed maximum is about 3e-7).
"""

import pytest
import torch

from glm import mpu
from glm.checkpoint import load_model_state
from glm.model import GLMModel

TOL = 1e-4


def build(config, **overrides):
    kwargs = dict(num_layers=config["num_layers"], vocab_size=config["vocab_size"],
                  hidden_size=config["hidden_size"], num_attention_heads=config["num_attention_heads"],
                  embedding_dropout_prob=0.1, attention_dropout_prob=0.1, output_dropout_prob=0.1,
                  max_sequence_length=config["max_sequence_length"],
                  max_memory_length=config["max_memory_length"], checkpoint_activations=False,
                  relative_encoding=config["relative_encoding"],
                  block_position_encoding=config.get("block_position_encoding", False))
    kwargs.update(overrides)
    return GLMModel(**kwargs).eval()


@pytest.fixture(scope="module")
def main_vectors(reference_dir):
    return torch.load(reference_dir / "model" / "forward_main.pt", weights_only=True)


@pytest.fixture(scope="module", params=["sdpa", "reference", "explicit"])
def main_model(request, reference_dir, main_vectors):
    model = build(main_vectors["model_config"], attention_backend=request.param)
    load_model_state(model, str(reference_dir / "model" / "checkpoints" / "glm_main"))
    return model


CASES = ["pretrain_large_bert", "pretrain_10b_bert", "pretrain_10b_gpt", "pretrain_10b_sentence",
         "generation_context_0", "generation_context_1", "scalar_sep_batch2", "vector_sep_random_ids_positions",
         "customization_sep", "customization_mask_pad_token"]


def test_all_cases_listed(main_vectors):
    assert sorted(main_vectors["cases"]) == sorted(CASES)


@pytest.mark.parametrize("name", CASES)
def test_forward_main(name, main_model, main_vectors):
    case = main_vectors["cases"][name]
    with torch.no_grad():
        logits, *mems = main_model(case["input_ids"], case["position_ids"], case["attention_mask"])
    assert logits.shape == case["logits"].shape
    assert (logits - case["logits"]).abs().max().item() < TOL
    # max_memory_length > 0 in this configuration: num_layers + 1 memories come back.
    assert len(mems) == main_vectors["model_config"]["num_layers"] + 1
    if "loss" in case:
        losses = mpu.vocab_parallel_cross_entropy(logits, case["labels"])
        mask = case["loss_mask"]
        loss = (losses * mask).sum() / mask.sum()
        assert abs(loss.item() - case["loss"]) < TOL


@pytest.mark.parametrize("name", ["incremental_b1", "incremental_b2"])
def test_incremental_decoding_with_memory(name, reference_dir, main_vectors):
    vectors = torch.load(reference_dir / "model" / "forward_mems.pt", weights_only=True)
    model = build(vectors["model_config"])
    load_model_state(model, str(reference_dir / "model" / "checkpoints" / "glm_main"))
    case = vectors[name]
    with torch.no_grad():
        logits, *mems = model(case["context_input_ids"], case["context_position_ids"], case["context_attention_mask"])
        assert (logits - case["context_logits"]).abs().max().item() < TOL
        for got, want in zip(mems, case["context_mems"], strict=True):
            assert (got - want).abs().max().item() < TOL
        for t in range(case["step_input_ids"].size(1)):
            logits, *mems = model(case["step_input_ids"][:, t:t + 1], case["step_position_ids"][t],
                                  case["step_attention_mask"][t], *mems)
            assert (logits[:, -1] - case["step_logits"][t]).abs().max().item() < TOL
            assert mems[0].size(1) == case["step_mem_lengths"][t]


def test_transformer_xl_segments(reference_dir):
    vectors = torch.load(reference_dir / "model" / "forward_xl.pt", weights_only=True)
    model = build(vectors["model_config"])
    load_model_state(model, str(reference_dir / "model" / "checkpoints" / "glm_xl"))
    mems = []
    with torch.no_grad():
        for segment in vectors["segments"]:
            assert (mems[0].size(1) if mems else 0) == segment["mem_length_in"]
            logits, *mems = model(segment["input_ids"], segment["position_ids"], segment["attention_mask"], *mems)
            assert (logits - segment["logits"]).abs().max().item() < TOL
            for got, want in zip(mems, segment["mems_out"], strict=True):
                assert (got - want).abs().max().item() < TOL


def test_deepspeed_fp16_checkpoint(reference_dir):
    vectors = torch.load(reference_dir / "model" / "forward_ds_fp16_checkpoint.pt", weights_only=True)
    model = build(vectors["model_config"])
    meta = load_model_state(model, str(reference_dir / "model" / "checkpoints" / "glm_main_ds_fp16"))
    assert meta["iteration"] == vectors["model_config"]["checkpoint_iteration"]
    assert model.word_embeddings.weight.dtype == torch.float32
    with torch.no_grad():
        for case in vectors["cases"].values():
            logits = model(case["input_ids"], case["position_ids"], case["attention_mask"])[0]
            assert (logits - case["logits"]).abs().max().item() < TOL


@pytest.mark.parametrize("checkpoint", ["glm_main_MP2", "glm_main_ds_fp16_MP2"])
def test_mp2_shards_merge_on_the_fly(checkpoint, reference_dir, main_vectors):
    """Loading a model-parallel-2 checkpoint into a single-process model reshards it."""
    model = build(main_vectors["model_config"])
    load_model_state(model, str(reference_dir / "model" / "checkpoints" / checkpoint))
    case = main_vectors["cases"]["pretrain_large_bert"]
    with torch.no_grad():
        logits = model(case["input_ids"], case["position_ids"], case["attention_mask"])[0]
    tol = TOL if "fp16" not in checkpoint else 1e-2  # fp16-rounded weights vs the fp32 logits
    assert (logits - case["logits"]).abs().max().item() < tol


def test_bert_checkpoint_loads_release_style_folder(reference_dir):
    """A folder that directly holds mp_rank files (how released archives look) loads too."""
    model = GLMModel(2, 30592, 32, 4, 0.1, 0.1, 0.1, 512, 0, False, block_position_encoding=True)
    meta = load_model_state(model, str(reference_dir / "bert_model" / "checkpoints" / "glm_bert" / "1500"))
    assert meta["iteration"] == 1500
