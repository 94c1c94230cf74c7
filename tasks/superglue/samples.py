"""The sample dicts the datasets yield (what the collate function and the model heads read).

Every array is int64 numpy, the label a Python int, ``uid`` the example's guid.  The key order is
the original's (``text, label, [types, padding_mask], position, mask, target, logit_mask,
segment_id, prompt_pos, uid``), so a sample prints and serialises exactly like the reference.
Multiple-choice samples hold one row per choice: ``text`` ``[C, L]``, ``position`` ``[C, 2, L]``,
``mask`` ``[C]`` (one attention boundary per choice).
"""

import numpy as np


def int64_array(value):
    """``value`` as an int64 numpy array (the dtype every sample field has)."""
    return np.array(value, dtype=np.int64)


def make_sample(text, label, uid, *, position=None, mask=None, target=None, logit_mask=None,
                segment_id=None, prompt_pos=None, types=None, paddings=None):
    """Assemble one sample; fields left ``None`` are omitted (each task has its own set)."""
    sample = {"text": int64_array(text), "label": int(label)}
    optional = (("types", types), ("padding_mask", paddings), ("position", position), ("mask", mask),
                ("target", target), ("logit_mask", logit_mask), ("segment_id", segment_id),
                ("prompt_pos", prompt_pos))
    for key, value in optional:
        if value is not None:
            sample[key] = int64_array(value)
    sample["uid"] = uid
    return sample


def add_decoder_fields(sample, dec_text, dec_position, dec_mask, dec_target, dec_logit_mask):
    """The fast-decode fields: one decoder row per choice, attending to the shared encoder part."""
    fields = {"dec_text": dec_text, "dec_position": dec_position, "dec_mask": dec_mask, "dec_target": dec_target,
              "dec_logit_mask": dec_logit_mask}
    sample.update((key, int64_array(value)) for key, value in fields.items())
    return sample


def classification_sample(encoded, label, uid, config):
    """A sample for the sequence-classification head from the builder's 7-tuple (or a list of them,
    one per choice): positions and the attention boundary, or BERT-style types and padding mask with
    ``--pretrained-bert``."""
    if isinstance(encoded, list):  # one row per choice: regroup the tuples field by field
        encoded = [list(column) for column in zip(*encoded)]
    ids, types, paddings, position, sep = encoded[:5]
    if config.model.pretrained_bert:
        return make_sample(ids, label, uid, types=types, paddings=paddings)
    return make_sample(ids, label, uid, position=position, mask=sep)
