"""LAMBADA accuracy and perplexity (spec section 9.5)."""

import math

from ..scoring import score_samples
from .dataset import LambadaDataset


def lambada_metrics(results):
    """A passage is correct when every answer token is the model's argmax."""
    correct = sum(ok for _, _, ok in results)
    return {"accuracy": 100.0 * correct / len(results), "correct": correct, "examples": len(results)}


def perplexity_metrics(results, num_tokenized_tokens, num_original_tokens):
    """Average loss over ``tokens - 1`` predictions, its perplexity and the perplexity adjusted to
    the original word count (the number quoted for WikiText-103)."""
    total_nll = -sum(s for s, _, _ in results)
    avg_loss = total_nll / max(num_tokenized_tokens - 1, 1)
    ratio = (num_tokenized_tokens - 1) / max(num_original_tokens - 1, 1)
    return {"avg_loss": avg_loss, "ppl": math.exp(min(20.0, avg_loss)),
            "adjusted_ppl": math.exp(min(20.0, avg_loss * ratio)), "total_nll": total_nll,
            "scored_tokens": sum(c for _, c, _ in results), "num_tokenized_tokens": num_tokenized_tokens,
            "num_original_tokens": num_original_tokens}


def evaluate_lm(model, dataset, batch_size=1, device=None):
    """Metrics for a LAMBADA dataset or an ``LMDataset``."""
    results = score_samples(model, dataset, batch_size=batch_size, device=device)
    if isinstance(dataset, LambadaDataset):
        return lambada_metrics(results)
    return perplexity_metrics(results, dataset.num_tokenized_tokens, dataset.num_original_tokens)
