"""Errors raised while reading or writing checkpoints."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged or does not fit the model; the message says which file
    or key and what to do."""
