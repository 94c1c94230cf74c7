"""The one GLM input layout (``glm/inputs.py``): several spans with their own loss masks, part-A
positions and targets as the pretraining collator passes them, cutting, and the decoding positions."""

import numpy as np
import pytest
import torch

from glm.inputs import block_position_ids, context_position_ids, lay_out


def test_spans_follow_part_a_in_order_with_their_own_positions_and_loss():
    laid = lay_out([9, 3, 4, 3], [(1, [5, 20], [20, 6]), (3, [5, 21, 22], [21, 22, 6], [1, 0, 1])],
                   a_positions=[7, 8, 9, 10], a_targets=[9, 3, 4, 3], max_len=11, pad_id=2, target_pad_id=-1)
    assert laid.sep == 4
    assert laid.text.tolist() == [9, 3, 4, 3, 5, 20, 5, 21, 22, 2, 2]
    assert laid.position_id.tolist() == [[7, 8, 9, 10, 1, 1, 3, 3, 3, 0, 0], [0, 0, 0, 0, 1, 2, 1, 2, 3, 0, 0]]
    assert laid.target.tolist() == [9, 3, 4, 3, 20, 6, 21, 22, 6, -1, -1]
    assert laid.loss_mask.tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0]
    assert laid.paddings.tolist() == [1] * 9 + [0, 0]
    assert all(array.dtype == np.int64 for array in (laid.text, laid.position_id, laid.target, laid.loss_mask))


def test_flat_block_positions_and_cutting():
    flat = lay_out([1], [(0, [5, 6], [6, 7]), (0, [5], [7])], block_position=False)
    assert flat.position_id[1].tolist() == [0, 1, 1, 1]
    cut = lay_out([1, 2], [(1, [5, 6, 7], [6, 7, 8])], max_len=4, cut=True)
    assert cut.text.tolist() == [1, 2, 5, 6] and cut.loss_mask.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="does not fit"):
        lay_out([1, 2], [(1, [5, 6, 7], [6, 7, 8])], max_len=4)
    with pytest.raises(ValueError, match="part A"):
        lay_out([1, 2, 3], [], max_len=2, cut=True)
    with pytest.raises(ValueError, match="targets"):
        lay_out([1], [(0, [5, 6], [6])])


def test_decoding_positions_continue_the_layout():
    """A context as part A, then part B one token (or one run) at a time: the positions a whole
    laid-out sample would have."""
    whole = lay_out([1, 4, 3], [(1, [5, 8, 9], [8, 9, 6])])
    context = context_position_ids(3)
    steps = [block_position_ids(torch.tensor([1]), 1 + t, 1) for t in range(3)]
    assert torch.cat([context] + steps, dim=-1)[0].tolist() == whole.position_id.tolist()
    run = block_position_ids(torch.tensor([1, 2]), 2, 3)
    assert run.tolist() == [[[1, 1, 1], [2, 3, 4]], [[2, 2, 2], [2, 3, 4]]]
