"""GLM data utilities: tokenizers (spec section 5) and the blank-infilling objective (section 6.4).

``prepare_tokenizer(args)`` builds the tokenizer the original flags describe;
``ConstructBlockStrategy`` turns token samples into GLM training batches.  Corpora, the lazy
on-disk format, datasets and samplers live in their own modules (``data_utils.corpora``,
``data_utils.lazy``, ``data_utils.datasets``, ``data_utils.samplers``, ``data_utils.configure_data``).
"""

from .tokenizers import make_tokenizer, prepare_tokenizer
from .blocklm import ConstructBlockStrategy, build_block_strategy

__all__ = ["prepare_tokenizer", "make_tokenizer", "ConstructBlockStrategy", "build_block_strategy"]
