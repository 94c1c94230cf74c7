"""Batching of finetuning samples (the original's ``my_collate`` + ``process_batch``).

A sample is a dict of numpy arrays / ints (plus a string ``uid``).  Multiple-choice samples hold one
row per choice (``text`` ``[C, L]``); examples of one batch may have different numbers of choices
(WSC with negatives, ReCoRD entities).  They are padded to the batch's largest count by repeating
choice 0, and ``loss_mask`` ``[B, C]`` marks the real choices so that losses and predictions can
ignore the copies.
"""

import numpy as np
import torch

# Sample fields that are not tensors and travel beside the batch.
META_KEYS = ("uid",)


def _pad_choices(value, count):
    value = np.asarray(value)
    if len(value) >= count:
        return value
    return np.concatenate([value] + [value[:1]] * (count - len(value)))


def collate_choices(samples, choice_mask=False):
    """Stack ``samples`` into a batch of tensors.

    ``choice_mask``: the dataset has a variable number of choices; pad them and add ``loss_mask``
    (``[B, C]``, int64).  Choice-less samples (``text`` ``[L]``) are stacked as they are.  ``uid``
    becomes a list.
    """
    samples = [dict(s) for s in samples]
    meta = {key: [s.pop(key) for s in samples] for key in META_KEYS if key in samples[0]}
    if choice_mask:
        if np.asarray(samples[0]["text"]).ndim != 2:
            raise ValueError("a variable number of choices needs multiple-choice samples (text [C, L])")
        counts = [len(s["text"]) for s in samples]
        largest = max(counts)
        for sample, count in zip(samples, counts):
            for key, value in sample.items():
                if key != "label" and np.ndim(value) > 0:
                    sample[key] = _pad_choices(value, largest)
            sample["loss_mask"] = np.array([1] * count + [0] * (largest - count), dtype=np.int64)
    batch = {key: torch.as_tensor(np.stack([np.asarray(s[key]) for s in samples])) for key in samples[0]}
    batch.update(meta)
    return batch


def batch_to_device(batch, device):
    """Tensors to ``device``; the meta fields stay as they are."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
