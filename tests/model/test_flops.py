"""The model owns its parameter count and FLOPs per token."""

from glm.model import flops_per_token, hardware_flops_per_token
from tests.helpers import tiny_glm


def test_flops_per_token_hand_computed():
    # l=2, h=4, V=8, s=6: 72*2*16*(1 + 6/24 + 8/96) = 2304 * (1 + 0.25 + 1/12) = 3072
    assert abs(flops_per_token(2, 4, 8, 6) - 3072.0) < 1e-9
    # 96*2*16*(1 + 0.25 + 8/128) = 3072 * 1.3125 = 4032
    assert abs(hardware_flops_per_token(2, 4, 8, 6) - 4032.0) < 1e-9


def test_flops_equal_six_n_plus_attention():
    l, h, v, s = 12, 768, 30592, 512
    non_embedding = 12 * l * h * h
    assert abs(flops_per_token(l, h, v, s) - (6 * (non_embedding + v * h) + 12 * l * h * s)) < 1e-6


def test_parameter_count_matches_the_module():
    for kw in ({}, {"relative": True, "block": False}, {"block": False}):
        model = tiny_glm(**kw)
        assert model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_glm_base_shape_parameter_count():
    from glm.model.flops import count_parameters
    config = dict(num_layers=12, hidden_size=768, vocab_size=30592, max_sequence_length=512,
                  block_position_encoding=True)
    # 12 layers * 7,087,872 + final LN 1,536 + embeddings 30592*768 + two 513-row tables.
    assert count_parameters(config) == 12 * 7087872 + 1536 + 30592 * 768 + 2 * 513 * 768
