"""``auto`` picks the attention kernel per device, dtype and dropout from a measured table (issue 18);
every kernel it may pick agrees with the original's explicit computation within the dtype's rounding,
and the choice is logged."""

import logging

import pytest
import torch

from glm.model import attention as attn
from tests.helpers import glm_batch, tiny_glm

# Forward logits and parameter gradients of a tiny model, kernel against kernel, same dtype: float32 to
# rounding, bfloat16 (8-bit mantissa, logits of order 1) to a few of its ulps.
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 3e-2}
KERNELS = sorted(set(attn.AUTO_KERNELS.values()) | {"sdpa"})


def run(backend, dtype):
    torch.manual_seed(0)
    model = tiny_glm(backend=backend, dropout=0.0)
    ids, pos, sep = glm_batch(batch=2, length=16, seed=1)
    with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        logits = model(ids, pos, sep)[0]
    logits.float().square().mean().backward()
    return logits.float().detach(), {n: p.grad.float() for n, p in model.named_parameters()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_every_kernel_auto_may_pick_agrees_with_the_reference(dtype):
    reference = run("reference", dtype)
    for kernel in KERNELS:
        logits, grads = run(kernel, dtype)
        assert (logits - reference[0]).abs().max().item() < TOLERANCE[dtype], kernel
        for name, grad in grads.items():
            assert (grad - reference[1][name]).abs().max().item() < TOLERANCE[dtype], (kernel, name)


def test_with_dropout_the_explicit_kernel_is_the_reference_computation_with_the_same_masks():
    """Both draw their probability masks from the same cheap-mask stream in the same order, so with
    attention and hidden dropout on, the same seed gives the same logits and gradients."""
    results = []
    for kernel in ("reference", "explicit"):
        torch.manual_seed(0)
        model = tiny_glm(backend=kernel, dropout=0.1).train()
        ids, pos, sep = glm_batch(batch=2, length=16, seed=1)
        torch.manual_seed(5)
        logits = model(ids, pos, sep)[0]
        logits.square().mean().backward()
        results.append((logits.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (explicit, explicit_grads), (reference, reference_grads) = results[1], results[0]
    assert (explicit - reference).abs().max().item() < TOLERANCE[torch.float32]
    for name, grad in explicit_grads.items():
        assert (grad - reference_grads[name]).abs().max().item() < TOLERANCE[torch.float32], name
    torch.manual_seed(6)   # a different stream drops different probabilities
    other = tiny_glm(backend="explicit", dropout=0.1).train()
    other.load_state_dict(model.state_dict())
    assert (other(ids, pos, sep)[0].detach() - reference).abs().max().item() > 1e-3


@pytest.mark.parametrize("dtype,dropout,expected", [
    (torch.float32, 0.1, "explicit"), (torch.float32, 0.0, "sdpa"),
    (torch.bfloat16, 0.1, "explicit"), (torch.bfloat16, 0.0, "explicit")])
def test_auto_runs_the_measured_kernel_and_logs_it(monkeypatch, caplog, dtype, dropout, expected):
    calls = []
    for name in ("sdpa_attention", "reference_attention", "explicit_attention"):
        original = getattr(attn, name)
        monkeypatch.setattr(attn, name, lambda *a, _f=original, _n=name, **k: (calls.append(_n), _f(*a, **k))[1])
    monkeypatch.setattr(attn, "_logged_choices", set())
    torch.manual_seed(0)
    model = tiny_glm(backend="auto", dropout=dropout).train()
    ids, pos, sep = glm_batch(batch=2, length=16, seed=1)
    with caplog.at_level(logging.INFO, logger="glm.model.attention"):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            model(ids, pos, sep)
    assert set(calls) == {f"{expected}_attention"} and len(calls) == 4   # both layers, in two parts each
    messages = [r.getMessage() for r in caplog.records if "attention backend auto" in r.getMessage()]
    assert len(messages) == 1 and expected in messages[0] and str(dtype).replace("torch.", "") in messages[0]


def test_forced_backends_ignore_the_table(monkeypatch):
    monkeypatch.setitem(attn.AUTO_KERNELS, ("cpu", torch.float32, False), "reference")
    assert tiny_glm(backend="sdpa").transformer.attention_spec.kernel("cpu", torch.float32, False) == "sdpa"
    assert tiny_glm(backend="auto").eval().transformer.attention_spec.kernel("cpu", torch.float32, False) == "reference"


def test_the_spec_is_built_once_with_the_model_and_names_every_kernel(caplog):
    """The model's AttentionSpec decides the kernel from the backend, device, dtype, dropout and the
    mask's needs -- not from the mask's dtype -- and is logged when the model is built."""
    with caplog.at_level(logging.INFO, logger="glm.model.transformer"):
        model = tiny_glm(backend="flex")
    assert isinstance(model.transformer.attention_spec, attn.AttentionSpec)
    assert any("attention: flex" in r.getMessage() for r in caplog.records)
    flex = model.transformer.attention_spec
    assert flex.kernel("cpu", torch.float32, False) == "flex"
    assert flex.kernel("cpu", torch.float32, True) == "sdpa"                     # FlexAttention has no dropout
    assert flex.kernel("cpu", torch.float32, False, incremental=True) == "sdpa"  # no recompiles per decoding step
    assert flex.kernel("cpu", torch.float32, False, exact_mask=True) == "reference"
    assert attn.AttentionSpec("sdpa", relative=True).kernel("cpu", torch.float32, False) == "relative"
    assert attn.AttentionSpec.of(flex) is flex
    with pytest.raises(ValueError, match="attention_backend"):
        tiny_glm(backend="fastest")


def test_a_float_or_boolean_0_1_matrix_runs_the_same_kernel(monkeypatch):
    """The mask's dtype does not choose the kernel: only a matrix the fast kernels cannot express
    exactly (a row that sees nothing) needs the reference kernel."""
    calls = []
    for name in ("sdpa_attention", "reference_attention", "explicit_attention"):
        original = getattr(attn, name)
        monkeypatch.setattr(attn, name, lambda *a, _f=original, _n=name, **k: (calls.append(_n), _f(*a, **k))[1])
    model = tiny_glm(backend="sdpa").eval()
    ids, pos, _ = glm_batch(batch=1, length=6)
    matrix = torch.ones(1, 1, 6, 6).tril()
    with torch.no_grad():
        model(ids, pos, matrix)
        model(ids, pos, matrix.bool())
        assert calls == ["sdpa_attention"] * 4
        matrix[0, 0, 5] = 0
        calls.clear()
        model(ids, pos, matrix)
    assert calls == ["reference_attention"] * 2


@pytest.mark.parametrize("kernel", KERNELS)
def test_separator_attention_in_two_parts_equals_one_call_over_the_whole_mask(kernel):
    """Separators run ``attend_in_two_parts`` (part A's rows skip the keys past every separator); the same
    mask given as a 0/1 matrix runs in one call: logits and gradients agree to float32 rounding."""
    ids, pos, sep = glm_batch(batch=2, length=16, seed=1)
    assert 0 < int(sep.min()) and int(sep.max()) < 16                  # the split applies to this batch
    rows, columns = torch.arange(16).view(-1, 1), torch.arange(16).view(1, -1)
    matrix = ((columns <= rows) | (columns < sep.view(-1, 1, 1))).float().unsqueeze(1)
    results = []
    for mask in (sep, matrix):
        torch.manual_seed(0)
        model = tiny_glm(backend=kernel, dropout=0.0)
        logits = model(ids, pos, mask)[0]
        logits.square().mean().backward()
        results.append((logits.detach(), {n: p.grad for n, p in model.named_parameters()}))
    (split, split_grads), (whole, whole_grads) = results
    assert (split - whole).abs().max().item() < TOLERANCE[torch.float32]
    for name, grad in split_grads.items():
        assert (grad - whole_grads[name]).abs().max().item() < TOLERANCE[torch.float32], name
