"""The syntax of a train/valid/test split value (``--split 949,50,1``), shared by the flag parser, which
refuses a bad value at parse time, and :func:`data_utils.datasets.parse_split`, which turns it into
proportions.  Pure Python: the parser imports it without torch.  Owns the syntax only; what the
proportions mean is :mod:`data_utils.datasets`."""


def split_parts(text: str) -> list:
    """The numbers of a ``--split`` value (``949,50,1``, ``949/50/1`` or one number), as floats; a
    :class:`ValueError` that shows the expected format for anything else."""
    sep = "," if "," in text else "/"
    try:
        parts = [float(part) for part in text.split(sep) if part.strip()]
    except ValueError:
        parts = []
    if not parts or len(parts) > 3 or any(p < 0 for p in parts):
        raise ValueError(f"{text!r} is not a split: expected one to three non-negative train,valid,test "
                         "proportions separated by commas (or /), e.g. 949,50,1")
    return parts
