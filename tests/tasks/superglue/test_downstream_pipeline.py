"""The recorded finetuning batches of ``downstream.pt``, rebuilt end to end through our pipeline:
``SuperGlueDataset`` (dev split of the handmade data) -> ``collate_choices`` -> the head chosen from
the flags -> the task's loss.  Inputs must be identical, logits and losses within 1e-4."""

import pytest
import torch

from glm.checkpoint import load_model_state
from tasks.superglue.finetune import build_task, choice_scores
from tests.tasks.conftest import recorded_args
from data_utils.tokenizers import configure_tokenizer

TOL = 1e-4
CLOZE = ["copa_multitoken_p0", "copa_multitoken_p1", "copa_multitoken_fast_p0", "wsc_multitoken_mix_negative_p2",
         "record_multitoken_p0", "rte_singletoken_p0", "rte_singletoken_adapet_p0", "cb_singletoken_p3",
         "boolq_singletoken_p4", "wic_singletoken_p1", "multirc_singletoken_p0"]


@pytest.fixture(scope="module")
def cases(reference_dir):
    return torch.load(reference_dir / "downstream" / "downstream.pt", weights_only=True)["cases"]


@pytest.mark.parametrize("name", CLOZE)
def test_recorded_batch_through_dataset_head_and_loss(name, cases, reference_dir, task_data_dir):
    case = cases[name]
    argv = [a.replace("<work>/downstream_public", "<work>/taskdata_public") for a in case["argv"]]
    cfg = recorded_args(argv + ["--finetune", "--epochs", "0", "--hidden-dropout", "0.1"], task_data_dir)
    tokenizer, cfg = configure_tokenizer(cfg)
    task = build_task(cfg, tokenizer)
    dataset = task.evaluate.dataset("dev")
    by_uid = {dataset[i]["uid"]: i for i in range(len(dataset))}
    batch = task.collate_fn([dataset[by_uid[uid]] for uid in case["uids"]])
    assert batch["uid"] == case["uids"]
    for key, expected in case["inputs"].items():
        assert torch.equal(batch[key], expected), key
    assert set(case["inputs"]) <= set(batch)

    model = task.build_model(cfg, torch.device("cpu"))
    assert type(model).__name__ == case["head_class"]
    load_model_state(model if case["state_dict_identical_to_glm_bert"] else model.model,
                     str(reference_dir / "bert_model" / "checkpoints" / "glm_bert"))
    model.eval()
    with torch.no_grad():
        scores, _ = choice_scores(model, batch)
        loss, _ = task.forward_step(model, batch)
    assert (scores - case["logits"]).abs().max().item() < TOL
    assert abs(loss.item() - case["loss"]) < TOL
