"""GLM tokenizers (spec §5): one module per family, a shared command-token table, the Rust fast path beside
the pure-Python reference path. See README.md in this directory.

Importing this package loads no optional library: `tokenizers` (Rust) and `sentencepiece` are imported when
a tokenizer that needs them is built.
"""

from .base import Tokenization, Tokenizer, split_on_command_tokens, unassigned_token
from .byte_bpe import GPT2BPETokenizer
from .character import CharacterLevelTokenizer
from .chinese_sp import ChineseSPTokenizer
from .command_tokens import CommandToken, TypeToken, pad_vocab_size
from .factory import TOKENIZER_TYPES, configure_tokenizer, make_tokenizer, prepare_tokenizer, tokenizer_values
from .sentencepiece_tokenizer import SentencePieceTokenizer, train_sentencepiece
from .wordpiece import BertWordPieceTokenizer

__all__ = [
    'prepare_tokenizer', 'configure_tokenizer', 'tokenizer_values', 'make_tokenizer', 'TOKENIZER_TYPES', 'Tokenizer',
    'Tokenization', 'CommandToken', 'TypeToken',
    'BertWordPieceTokenizer', 'GPT2BPETokenizer', 'ChineseSPTokenizer', 'SentencePieceTokenizer',
    'CharacterLevelTokenizer', 'train_sentencepiece', 'split_on_command_tokens', 'unassigned_token', 'pad_vocab_size',
]
