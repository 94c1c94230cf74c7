"""Shared checks for the blocklm tests: read a collated batch back into per-sample records, and assert the
structural invariants of spec §6.4 (Part A / Part B layout, positions, targets, loss mask)."""

import numpy as np


def command_ids(tokenizer):
    """name -> id for the command tokens the tokenizer has."""
    ids = {}
    for name in ('pad', 'eos', 'ENC', 'MASK', 'sep', 'unk', 'sop', 'eop', 'gMASK', 'sMASK', 'dBLOCK'):
        try:
            ids[name] = tokenizer.get_command(name).Id
        except KeyError:
            pass
    return ids


def sample_length(batch, i):
    """Unpadded length of sample i: Part A plus every Part-B position (block id > 0)."""
    sep = int(batch['attention_mask'][i])
    blocks = batch['position_id'][i, 1].numpy()
    return sep + int((blocks[sep:] > 0).sum())


def describe_batch(batch, tokenizer):
    """Per-sample records with the fields of the reference `per_sample` statistics."""
    ids = command_ids(tokenizer)
    records = []
    for i in range(batch['text'].shape[0]):
        sep = int(batch['attention_mask'][i])
        total = sample_length(batch, i)
        targets = batch['target'][i, sep:total].numpy()
        inputs = batch['text'][i, sep:total].numpy()
        if batch['mode'] == 'gpt' and ids['eop'] not in targets:
            path, spans, original = 'gpt_suffix', [total - sep], total - 1
        else:
            starts = list(np.flatnonzero(inputs == ids['sop'])) + [total - sep]
            path = 'blank'
            spans = [int(b - a - 1) for a, b in zip(starts[:-1], starts[1:])]
            original = sep - len(spans) + sum(spans)
        source = batch['text'][i, :sep].numpy()
        command_counts = sorted([int(t), int((source == t).sum())] for t in set(source.tolist()) & set(ids.values()))
        records.append({
            'mode': batch['mode'], 'path': path, 'sep': sep, 'total_len': total, 'n_spans': len(spans),
            'span_lengths': spans, 'masked_tokens': sum(spans), 'original_length': original,
            'mask_fraction': sum(spans) / original,
            'n_dblock_in_targets': int((inputs == ids['dBLOCK']).sum()) if 'dBLOCK' in ids else 0,
            'mask_token_ids_in_source': command_counts})
    return records


def check_batch_structure(batch, tokenizer, *, block_position_encoding=True, max_shift=0):
    """Assert the layout of every sample of a collated batch and return the reconstructed original texts
    (Part A with every mask token replaced by its span, taken from the targets so that [dBLOCK] inputs do
    not matter). `max_shift`: largest offset --random-position may add to the positions (0 without it)."""
    ids = command_ids(tokenizer)
    text, target = batch['text'].numpy(), batch['target'].numpy()
    loss, pos = batch['loss_mask'].numpy(), batch['position_id'].numpy()
    batch_size, length = text.shape
    assert target.shape == loss.shape == (batch_size, length)
    assert pos.shape == (batch_size, 2, length)
    assert batch['attention_mask'].shape == (batch_size,)
    assert batch['mode'] in ('bert', 'sentence', 'gpt')
    originals = []
    for i in range(batch_size):
        sep, total = int(batch['attention_mask'][i]), sample_length(batch, i)
        assert 0 < sep <= total <= length
        for array in (text[i], target[i], loss[i], pos[i, 0], pos[i, 1]):
            assert not array[total:].any(), 'padding is zeros'
        # Part A: positions 0..sep-1 (plus one shared random offset), block ids 0.
        shift = pos[i, 0, 0]
        assert 0 <= shift <= max_shift
        np.testing.assert_array_equal(pos[i, 0, :sep], np.arange(sep) + shift)
        assert not pos[i, 1, :sep].any()
        # Part A targets are a copy of the uncorrupted context; inputs may differ only by [dBLOCK].
        differs = text[i, :sep] != target[i, :sep]
        assert (text[i, :sep][differs] == ids.get('dBLOCK', -1)).all()
        if batch['mode'] == 'gpt' and total > sep and ids['eop'] not in target[i, sep:total]:
            originals.append(_check_suffix(text[i], target[i], pos[i], sep, total, ids, block_position_encoding))
            continue
        if batch['mode'] in ('bert', 'sentence'):
            assert not loss[i, :sep].any() and (loss[i, sep:total] == 1).all(), 'loss only on Part B'
        originals.append(_check_blocks(text[i], target[i], pos[i], sep, total, ids, block_position_encoding))
    return originals


def _check_blocks(text, target, pos, sep, total, ids, block_position_encoding):
    """Part B of a blank-infilling sample: blocks `[sop] span` -> `span [eop]`, one per mask token of A."""
    starts = list(np.flatnonzero(text[sep:total] == ids['sop']) + sep)
    assert not starts or starts[0] == sep
    bounds = list(zip(starts, starts[1:] + [total]))
    source = target[:sep]
    mask_ids = [ids[n] for n in ('MASK', 'gMASK', 'sMASK') if n in ids]
    mask_slots = set(np.flatnonzero(np.isin(source, mask_ids)).tolist())
    assert len(mask_slots) == len(bounds), 'one mask token in Part A per block in Part B'
    spans = {}
    for a, b in bounds:
        width = b - a
        expected = np.arange(1, width + 1) if block_position_encoding else np.ones(width)
        np.testing.assert_array_equal(pos[1, a:b], expected)
        assert target[b - 1] == ids['eop']
        # Teacher forcing: each target but the last is the next input (unless that input became [dBLOCK]).
        following, wanted = text[a + 1:b], target[a:b - 1]
        assert ((following == wanted) | (following == ids.get('dBLOCK', -1))).all()
        assert ids['eos'] not in wanted, 'no eos inside a target'
        assert (pos[0, a:b] == pos[0, a]).all(), 'a block shares the position of its mask token'
        spans[int(pos[0, a])] = wanted
    # Rebuild the original: each mask token of Part A gets the span of the block carrying its position.
    pieces = []
    for j in range(sep):
        if j in mask_slots:
            pieces.append(spans.pop(int(pos[0, j])))
        else:
            pieces.append(source[j:j + 1])
    assert not spans, 'every block belongs to a mask token'
    return np.concatenate(pieces)


def _check_suffix(text, target, pos, sep, total, ids, block_position_encoding):
    """[gMASK] suffix generation: `source [gMASK] [sop] suffix[:-1]` -> `source [gMASK] suffix`."""
    division = sep - 1
    assert target[division] == text[division]
    assert text[division] in [ids[n] for n in ('MASK', 'gMASK') if n in ids]
    assert text[sep] == ids['sop']
    np.testing.assert_array_equal(text[sep + 1:total], target[sep:total - 1])
    assert (pos[0, sep:total] == division + pos[0, 0]).all()
    expected = np.arange(1, total - sep + 1) if block_position_encoding else np.ones(total - sep)
    np.testing.assert_array_equal(pos[1, sep:total], expected)
    return np.concatenate((target[:division], target[sep:total]))
