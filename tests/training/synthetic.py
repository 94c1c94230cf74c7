"""Deterministic GLM-style batches without a corpus, for engine and loop tests."""

import torch

from tests.helpers import parse_config

VOCAB = 128


def tiny_config(*extra):
    """Flags for a tiny GLM (2 layers, hidden 32) on the toy vocabulary."""
    argv = ["--block-lm", "--num-layers", "2", "--hidden-size", "32", "--num-attention-heads", "4",
            "--max-position-embeddings", "32", "--seq-length", "24", "--batch-size", "4", "--train-iters", "8",
            "--lr", "1e-3", "--warmup", "0.0", "--log-interval", "1000", "--eval-interval", "0",
            "--hidden-dropout", "0.1", "--attention-dropout", "0.1", "--seed", "3", *extra]
    return parse_config(argv, vocab_size=VOCAB)


def global_batch(index, size, seq=24, fixed_sep=None):
    """Global micro-batch ``index`` (same on every rank): ids, targets, loss mask, 2D positions, sep.
    ``fixed_sep`` gives every sample the same Part A length, so per-rank loss means average to the
    global mean (needed to compare data-parallel layouts)."""
    g = torch.Generator().manual_seed(1000 + index)
    text = torch.randint(10, VOCAB, (size, seq), generator=g)
    sep = torch.randint(4, seq - 4, (size,), generator=g)
    if fixed_sep is not None:
        sep.fill_(fixed_sep)
    positions = torch.arange(seq).expand(size, -1).clone()
    block = torch.zeros(size, seq, dtype=torch.long)
    loss_mask = torch.zeros(size, seq, dtype=torch.long)
    for i in range(size):
        s = int(sep[i])
        positions[i, s:] = s - 1
        block[i, s:] = torch.arange(1, seq - s + 1)
        loss_mask[i, s:] = 1
    target = (text * 7 + 3) % VOCAB  # a learnable function of the visible token
    return {"text": text, "target": target, "loss_mask": loss_mask,
            "position_id": torch.stack([positions, block], dim=1), "attention_mask": sep, "mode": "bert"}


class SyntheticLoader:
    """Yields this data-parallel rank's slice of global micro-batches ``start, start+1, ...``."""

    def __init__(self, per_rank, dp_rank=0, dp_world=1, start=0, seq=24, fixed_sep=None):
        self.per_rank, self.dp_rank, self.dp_world, self.start, self.seq = per_rank, dp_rank, dp_world, start, seq
        self.fixed_sep = fixed_sep

    def __iter__(self):
        index = self.start
        while True:
            batch = global_batch(index, self.per_rank * self.dp_world, self.seq, self.fixed_sep)
            lo, hi = self.dp_rank * self.per_rank, (self.dp_rank + 1) * self.per_rank
            yield {k: (v[lo:hi] if torch.is_tensor(v) else v) for k, v in batch.items()}
            index += 1
