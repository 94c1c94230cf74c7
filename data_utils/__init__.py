"""GLM data utilities. `prepare_tokenizer(args)` builds the tokenizer the original flags describe (spec §5)."""

from .tokenizers import make_tokenizer, prepare_tokenizer

__all__ = ['prepare_tokenizer', 'make_tokenizer']
