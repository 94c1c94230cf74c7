"""The training losses project only the positions they read (issue 18): the loss and every gradient
equal those of the full projection, on one process and with the vocabulary split over two ranks."""

import pytest
import torch

from glm import mpu
from glm.training.losses import language_model_loss, projected_positions
from tests.distributed.launcher import run_distributed
from tests.helpers import glm_batch, tiny_glm

TOLERANCE = 1e-6


def full_projection_loss(model, batch, label_smoothing=0.0):
    """The loss as it was computed before: logits at every position, masked afterwards."""
    logits = model(batch["text"], batch["position_id"], batch["attention_mask"])[0]
    losses = mpu.vocab_parallel_cross_entropy(logits, batch["target"], label_smoothing=label_smoothing)
    mask = batch["loss_mask"].float()
    return (losses * mask).sum() / mask.sum().clamp(min=1.0)


def make_batch(loss_mask):
    ids, pos, sep = glm_batch(batch=2, length=12, vocab=64, max_seq=32, seed=3)
    return {"text": ids, "position_id": pos, "attention_mask": sep, "target": torch.roll(ids, 1, dims=1),
            "loss_mask": loss_mask}


def part_b_mask():
    mask = torch.zeros(2, 12, dtype=torch.long)
    mask[0, 8:] = 1
    mask[1, 5:11] = 1
    return mask


def loss_and_grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def compare(model, batch, smoothing):
    sparse = loss_and_grads(model, language_model_loss(model, batch, smoothing)[0])
    full = loss_and_grads(model, full_projection_loss(model, batch, smoothing))
    assert abs(sparse[0].item() - full[0].item()) < TOLERANCE
    assert sparse[1].keys() == full[1].keys()
    for name, grad in sparse[1].items():
        err = (grad - full[1][name]).abs().max().item()
        assert err < TOLERANCE, f"gradient of {name} differs by {err}"
    return sparse[0].item()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_sparse_projection_equals_full_projection(smoothing):
    torch.manual_seed(7)
    model = tiny_glm(dropout=0.0)
    assert compare(model, make_batch(part_b_mask()), smoothing) > 0


@pytest.mark.parametrize("variant", ["plain", "checkpointed", "exact mask"])
def test_last_layer_computes_only_from_the_first_loss_position(variant):
    """Its earlier positions enter as keys and values only; loss and gradients stay the full projection's."""
    torch.manual_seed(7)
    model = tiny_glm(dropout=0.0, checkpoint=variant == "checkpointed")
    batch = make_batch(part_b_mask())           # the first loss position is column 5
    if variant == "exact mask":                 # a 0/1 matrix with one fully hidden row: the reference kernel
        sep = batch["attention_mask"]
        rows, columns = torch.arange(12).view(-1, 1), torch.arange(12).view(1, -1)
        matrix = ((columns <= rows) | (columns < sep.view(-1, 1, 1))).float()
        matrix[:, 3] = 0.0
        batch["attention_mask"] = matrix.unsqueeze(1)
    lengths = []
    model.transformer.layers[-1].register_forward_pre_hook(lambda _, args: lengths.append(args[0].size(1)))
    compare(model, batch, 0.0)
    assert lengths[0] == 12 - 5 and lengths[-1] == 12    # language_model_loss, then the full projection


def test_empty_loss_mask_gives_zero_loss_like_the_original():
    torch.manual_seed(7)
    model = tiny_glm()
    loss = compare(model, make_batch(torch.zeros(2, 12, dtype=torch.long)), 0.0)
    assert loss == 0.0


def test_logit_positions_project_the_selected_rows_only():
    torch.manual_seed(7)
    model = tiny_glm().eval()
    batch = make_batch(part_b_mask())
    selected = batch["loss_mask"] != 0
    with torch.no_grad():
        full = model(batch["text"], batch["position_id"], batch["attention_mask"])[0]
        sparse = model(batch["text"], batch["position_id"], batch["attention_mask"], logit_positions=selected)[0]
    assert sparse.shape == (int(selected.sum()), 64)
    assert (sparse - full[selected]).abs().max().item() < TOLERANCE


def test_projected_positions_counts_loss_positions_and_skips_other_batches():
    batch = make_batch(part_b_mask())
    assert projected_positions([batch, batch]) == 2 * (4 + 6)
    cloze = {"text": torch.zeros(2, 3, 12, dtype=torch.long), "loss_mask": torch.ones(2, 3)}
    assert projected_positions([cloze]) is None


def _tensor_parallel_worker(rank, world):
    mpu.initialize_model_parallel(world)
    torch.manual_seed(7)
    model = tiny_glm(dropout=0.0)
    assert model.word_embeddings.weight.size(0) == 64 // world   # the vocabulary really is split
    for smoothing in (0.0, 0.1):
        compare(model, make_batch(part_b_mask()), smoothing)


def test_sparse_projection_equals_full_projection_tensor_parallel_2():
    run_distributed(_tensor_parallel_worker, 2)


def test_log_keeps_dense_mfu_and_states_executed_flops_apart(capsys):
    from glm.model import executed_flops, flops_per_token
    from glm.training.engines import StepResult
    from glm.training.metrics import TrainingLogger
    from tests.training.synthetic import tiny_config

    config = {"num_layers": 2, "hidden_size": 32, "vocab_size": 128}
    log = TrainingLogger(config, 1, 1e12, "test", train_iters=tiny_config().training.train_iters)
    log.record(StepResult(loss=1.0, skipped=False, nonfinite=False), tokens=96, seq_length=24, projected=10)
    assert log.flops == 96 * flops_per_token(2, 32, 128, 24)           # MFU: every position projected
    assert log.executed == executed_flops(2, 32, 128, 24, 96, 10)       # what ran: 10 positions projected
    assert executed_flops(2, 32, 128, 24, 96, 96) == pytest.approx(log.flops)
    assert log.executed < log.flops
    log.report(1, 1e-3)
    line = capsys.readouterr().out.splitlines()[0]
    assert "MFU" in line and "(dense model FLOPs) | executed TFLOP/s/device" in line
    unknown = TrainingLogger(config, 1, 1e12, "test", train_iters=tiny_config().training.train_iters)
    unknown.record(StepResult(loss=1.0, skipped=False, nonfinite=False), tokens=96, seq_length=24)
    unknown.report(1, 1e-3)
    assert "executed" not in capsys.readouterr().out
