"""Downstream heads on the original's checkpoints reproduce the recorded logits (spec 1.3-1.4)."""

import pytest
import torch

from glm.checkpoint import load_model_state
from glm.training.losses import choice_loss
from glm.model import (GLMForMultiTokenCloze, GLMForMultiTokenClozeFast, GLMForSequenceClassification,
                       GLMForSingleTokenCloze, GLMModel)

TOL = 1e-4


@pytest.fixture(scope="module")
def cases(reference_dir):
    return torch.load(reference_dir / "downstream" / "downstream.pt", weights_only=True)["cases"]


def bert_model():
    # glm_bert: 2 layers, hidden 32, 4 heads, BERT vocabulary padded to 30592, 512 positions.
    return GLMModel(num_layers=2, vocab_size=30592, hidden_size=32, num_attention_heads=4,
                    embedding_dropout_prob=0.1, attention_dropout_prob=0.1, output_dropout_prob=0.1,
                    max_sequence_length=512, max_memory_length=0, checkpoint_activations=False,
                    parallel_output=False, block_position_encoding=True)


def toy_model(max_positions):
    return GLMModel(num_layers=2, vocab_size=512, hidden_size=64, num_attention_heads=4,
                    embedding_dropout_prob=0.1, attention_dropout_prob=0.1, output_dropout_prob=0.1,
                    max_sequence_length=max_positions, max_memory_length=0, checkpoint_activations=False,
                    parallel_output=False, block_position_encoding=True, output_predict=False)


def build_cloze_head(case, reference_dir):
    head_class = {"GLMForMultiTokenCloze": GLMForMultiTokenCloze, "GLMForSingleTokenCloze": GLMForSingleTokenCloze,
                  "GLMForMultiTokenClozeFast": GLMForMultiTokenClozeFast}[case["head_class"]]
    kwargs = {"take_softmax": case["take_softmax"]}
    if case["length_penalty"] is not None:
        kwargs["length_penalty"] = case["length_penalty"]
    model = bert_model()
    load_model_state(model, str(reference_dir / "bert_model" / "checkpoints" / "glm_bert"))
    return head_class(model, **kwargs).eval()


def run_cloze(head, inputs, case):
    with torch.no_grad():
        if case["head_class"] == "GLMForMultiTokenClozeFast":
            return head(inputs["text"], inputs["position"], inputs["mask"], inputs["dec_text"],
                        inputs["dec_position"], inputs["dec_mask"], inputs["dec_target"], inputs["dec_logit_mask"])
        return head(inputs["text"], inputs["position"], inputs["mask"], inputs["target"], inputs["logit_mask"])


def cloze_names(cases_dict):
    return [n for n, c in cases_dict.items() if c["head_class"] != "GLMForSequenceClassification"]


CLOZE = ["copa_multitoken_p0", "copa_multitoken_p1", "copa_multitoken_fast_p0", "wsc_multitoken_mix_negative_p2",
         "record_multitoken_p0", "rte_singletoken_p0", "rte_singletoken_adapet_p0", "cb_singletoken_p3",
         "boolq_singletoken_p4", "wic_singletoken_p1", "multirc_singletoken_p0"]
CLASSIFICATION = ["rte_classification_pool_cls", "rte_classification_pool_start", "rte_classification_pool_pad",
                  "copa_multiple_choice_head_pool_cls", "copa_multiple_choice_head_pool_start",
                  "copa_multiple_choice_head_pool_pad"]


def test_every_recorded_case_is_covered(cases):
    assert sorted(cases) == sorted(CLOZE + CLASSIFICATION)


@pytest.mark.parametrize("name", CLOZE)
def test_cloze_head_logits(name, cases, reference_dir):
    case = cases[name]
    head = build_cloze_head(case, reference_dir)
    out = run_cloze(head, case["inputs"], case)
    assert out[0].shape == case["logits"].shape
    assert (out[0] - case["logits"]).abs().max().item() < TOL
    if "target_logits" in case:
        assert (out[1] - case["target_logits"]).abs().max().item() < TOL
    # The finetuning loss over the choice / label scores (cross entropy, mix, ADAPET; padded choices).
    loss = choice_loss(out[0], case["inputs"]["label"], case["loss_func"], case["inputs"].get("loss_mask"),
                       case["adapet"])
    assert abs(loss.item() - case["loss"]) < TOL


@pytest.mark.parametrize("name", CLOZE)
def test_cloze_head_state_dict_prefix(name, cases, reference_dir):
    case = cases[name]
    head = build_cloze_head(case, reference_dir)
    keys = list(head.state_dict())
    if case["state_dict_identical_to_glm_bert"]:
        assert keys[0] == "word_embeddings.weight"
    else:
        assert all(k.startswith("model.") for k in keys)


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_head_logits(name, cases, reference_dir):
    case = cases[name]
    head = GLMForSequenceClassification(toy_model(case["max_position_embeddings"]), 64, 0.1, case["pool_token"],
                                        num_class=case["num_class"])
    load_model_state(head, str(reference_dir / "downstream" / "checkpoints" / case["checkpoint"]))
    assert list(head.state_dict()) == case["state_dict_keys"]
    head.eval()
    inputs = case["inputs"]
    with torch.no_grad():
        logits = head(inputs["text"], inputs["position"], inputs["mask"])[0]
    assert (logits - case["logits"]).abs().max().item() < TOL
    loss = choice_loss(logits, inputs["label"], case["loss_func"])
    assert abs(loss.item() - case["loss"]) < TOL
