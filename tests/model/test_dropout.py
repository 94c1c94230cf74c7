"""The cheap CPU dropout mask (``glm.model.dropout``, issue 18): right drop rate and scale, unbiased,
reproducible from the default generator, the right gradient, and torch's dropout where it does not apply."""

import pytest
import torch
import torch.nn.functional as F

from glm.model import dropout as drop


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_rate_and_scale(p):
    torch.manual_seed(0)
    x = torch.ones(2_000_000)
    y = drop.dropout(x, p)
    threshold = drop.keep_threshold(p)
    kept = y != 0
    rate = 1.0 - kept.float().mean().item()
    # 2M Bernoulli draws: the standard error of the rate is below 3.6e-4.
    assert abs(rate - (1.0 - threshold / drop.LANES)) < 2e-3
    assert abs(threshold / drop.LANES - (1.0 - p)) <= 0.5 / drop.LANES
    assert torch.equal(y[kept], torch.full_like(y[kept], drop.LANES / threshold))
    assert abs(y.mean().item() - 1.0) < 5e-3   # unbiased


def test_every_lane_of_a_word_is_an_independent_draw():
    """Each int64 word gives four elements; a lane that did not vary, or lanes that moved together, would
    show in the per-lane rates and in how often neighbours are both dropped."""
    torch.manual_seed(1)
    keep = drop.keep_mask((1_000_000, 4), drop.keep_threshold(0.5)).float()
    for lane in range(4):
        assert abs(keep[:, lane].mean().item() - 0.5) < 3e-3, lane
    both = (keep[:, :3] * keep[:, 1:]).mean().item()
    assert abs(both - 0.25) < 3e-3


def test_the_mask_comes_from_the_default_generator():
    x = torch.randn(64, 33)
    torch.manual_seed(3)
    first = drop.dropout(x, 0.3)
    torch.manual_seed(3)
    assert torch.equal(drop.dropout(x, 0.3), first)
    state = torch.get_rng_state()
    second = drop.dropout(x, 0.3)
    torch.set_rng_state(state)
    assert torch.equal(drop.dropout(x, 0.3), second) and not torch.equal(first, second)


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(4)
    x = torch.randn(7, 9, requires_grad=True)
    y = drop.dropout(x, 0.25)
    upstream = torch.randn(7, 9)
    y.backward(upstream)
    scale = drop.LANES / drop.keep_threshold(0.25)
    kept = y.detach() != 0
    assert torch.allclose(x.grad, upstream * kept * scale)
    assert torch.allclose(y.detach(), x.detach() * kept * scale)


def test_module_off_in_eval_and_edge_probabilities():
    x = torch.randn(5, 6, requires_grad=True)
    module = drop.Dropout(0.4).eval()
    assert module(x) is x and "p=0.4" in repr(module)
    assert drop.dropout(x, 0.0) is x
    zeros = drop.dropout(x, 1.0)
    assert torch.equal(zeros, torch.zeros_like(x)) and zeros.requires_grad
    assert drop.dropout(x, 1e-6) is x          # keeps every lane: nothing to drop or scale
    with pytest.raises(ValueError, match="between 0 and 1"):
        drop.Dropout(1.5)


def test_torch_dropout_where_the_cheap_mask_does_not_apply(monkeypatch):
    """Non-CPU tensors and code being compiled get ``F.dropout`` (same draws as torch's)."""
    monkeypatch.setattr(drop, "uses_cheap_mask", lambda x: False)
    x = torch.randn(100, 10)
    torch.manual_seed(9)
    ours = drop.dropout(x, 0.2)
    torch.manual_seed(9)
    assert torch.equal(ours, F.dropout(x, 0.2, training=True))
    assert drop.dropout_with_scale_deferred(x, 0.2)[1] == 1.0
