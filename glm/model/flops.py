"""Parameter and FLOP accounting (``../shared/spec/performance.md`` conventions).

Model FLOPs per token, without recomputation, attention counted dense:
``72 l h^2 (1 + s/(6h) + V/(12 l h))`` = ``72 l h^2 + 12 l h s + 6 V h``, i.e. about
``6 N + 12 l h s`` (PaLM, nanoGPT, torchtitan).  With full activation recomputation the hardware
does one more forward of the layers: ``96 l h^2 (1 + s/(6h) + V/(16 l h))`` (HFU).

MFU always uses the dense figure, as if every position were projected onto the vocabulary.  The
training losses project only the positions they read (``logit_positions``), so the FLOPs a step
really executes are fewer: :func:`executed_flops` counts them, for a separate, labelled log figure.
"""


def flops_per_token(num_layers, hidden_size, vocab_size, seq_length):
    """Model FLOPs per trained token (the basis of MFU)."""
    l, h, v, s = num_layers, hidden_size, vocab_size, seq_length
    return 72 * l * h * h * (1 + s / (6 * h) + v / (12 * l * h))


def hardware_flops_per_token(num_layers, hidden_size, vocab_size, seq_length):
    """FLOPs per token actually executed with full activation recomputation (HFU)."""
    l, h, v, s = num_layers, hidden_size, vocab_size, seq_length
    return 96 * l * h * h * (1 + s / (6 * h) + v / (16 * l * h))


def count_parameters(config, exclude_embeddings=False):
    """Parameter count of the full model described by a ``GLMModel.config`` dict."""
    l, h, v = config["num_layers"], config["hidden_size"], config["vocab_size"]
    per_layer = (3 * h * h + 3 * h) + (h * h + h) + (4 * h * h + 4 * h) + (4 * h * h + h) + 4 * h
    total = l * per_layer + 2 * h  # layers + final LayerNorm
    if config.get("relative_encoding"):
        total += l * (h * h + h) + 2 * h  # relative projections, r_w_bias and r_r_bias
    if exclude_embeddings:
        return total
    total += v * h
    if not config.get("relative_encoding"):
        rows = config["max_sequence_length"] + (1 if config.get("block_position_encoding") else 0)
        total += rows * h * (2 if config.get("block_position_encoding") else 1)
    return total


def executed_flops(num_layers, hidden_size, vocab_size, seq_length, tokens, projected_tokens,
                   recompute=False):
    """FLOPs a training step really executes for ``tokens`` tokens of which ``projected_tokens`` are
    projected onto the vocabulary (forward + backward, ``6 V h`` each); ``recompute`` adds the extra
    forward of the layers that activation checkpointing does."""
    # The layers' share is the per-token figure without the vocabulary projection (vocab 0).
    per_token = hardware_flops_per_token if recompute else flops_per_token
    layers = per_token(num_layers, hidden_size, 0, seq_length)
    return tokens * layers + projected_tokens * 6 * vocab_size * hidden_size
