"""Small arithmetic helpers shared by the parallel layers."""

import torch


def ensure_divisibility(numerator, denominator, what="value"):
    """Raise a readable error unless ``numerator`` is a multiple of ``denominator``."""
    if numerator % denominator != 0:
        raise ValueError(f"{what} ({numerator}) must be divisible by {denominator}")


def divide(numerator, denominator, what="value"):
    """Exact integer division that refuses to round."""
    ensure_divisibility(numerator, denominator, what)
    return numerator // denominator


def split_tensor_along_last_dim(tensor, num_partitions, contiguous_split_chunks=False):
    """Split ``tensor`` into ``num_partitions`` equal chunks along its last dimension."""
    last_dim = tensor.dim() - 1
    chunk = divide(tensor.size(last_dim), num_partitions, "last dimension")
    chunks = torch.split(tensor, chunk, dim=last_dim)
    if contiguous_split_chunks:
        return tuple(c.contiguous() for c in chunks)
    return chunks
