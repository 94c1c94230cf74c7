"""Building a tokenizer from the original command-line flags: `make_tokenizer` and `prepare_tokenizer`."""

from __future__ import annotations

import logging
from typing import Optional

from .base import Tokenizer
from .character import CharacterLevelTokenizer
from .chinese_sp import ChineseSPTokenizer
from .sentencepiece_tokenizer import SentencePieceTokenizer
from .byte_bpe import GPT2BPETokenizer
from .vocab_files import DEFAULT_TOKENIZER_PATH
from .wordpiece import BertWordPieceTokenizer

__all__ = ['TOKENIZER_TYPES', 'make_tokenizer', 'prepare_tokenizer']

logger = logging.getLogger(__name__)

# --tokenizer-type choices, in the original's order.
TOKENIZER_TYPES = {
    'CharacterLevelTokenizer': CharacterLevelTokenizer,
    'SentencePieceTokenizer': SentencePieceTokenizer,
    'BertWordPieceTokenizer': BertWordPieceTokenizer,
    'GPT2BPETokenizer': GPT2BPETokenizer,
    'ChineseSPTokenizer': ChineseSPTokenizer,
}


def make_tokenizer(tokenizer_type: str, model_type: Optional[str] = None, *,
                   tokenizer_path: Optional[str] = DEFAULT_TOKENIZER_PATH, add_block_symbols: bool = False,
                   add_task_mask: bool = False, add_decoder_mask: bool = False, add_sentinel_token: int = 0,
                   fix_command_token: bool = False, cache_dir: Optional[str] = None, fast: Optional[bool] = None,
                   make_vocab_size_divisible_by: int = 128) -> Tokenizer:
    """Build a tokenizer of type `tokenizer_type` (a --tokenizer-type choice).

    `add_block_symbols` adds sop/eop (and for GPT-2 also ENC/MASK/sep/unk), `add_task_mask` gMASK/sMASK,
    `add_decoder_mask` dBLOCK; `add_sentinel_token` = n adds MASK{i}/sop{i} for i < n (BERT only);
    `fix_command_token` selects ChineseSP's corrected ids; `fast` picks the Rust or pure-Python text
    tokenizer (None: Rust if available, unless GLM_TOKENIZER_FAST=0)."""
    if tokenizer_type not in TOKENIZER_TYPES:
        raise ValueError(f'unknown --tokenizer-type {tokenizer_type!r}; choices: {", ".join(TOKENIZER_TYPES)}')
    if add_sentinel_token and tokenizer_type != 'BertWordPieceTokenizer':
        raise ValueError(f'--sentinel-token is only supported by BertWordPieceTokenizer (as in the original), '
                         f'not by {tokenizer_type}')
    cls = TOKENIZER_TYPES[tokenizer_type]
    return cls(model_type, tokenizer_path=tokenizer_path, add_block_symbols=add_block_symbols,
               add_task_mask=add_task_mask, add_decoder_mask=add_decoder_mask, add_sentinel_token=add_sentinel_token,
               fix_command_token=fix_command_token, cache_dir=cache_dir, fast=fast,
               make_vocab_size_divisible_by=make_vocab_size_divisible_by)


def _flag(args, name: str, default):
    value = getattr(args, name, default)
    return default if value is None else value


def prepare_tokenizer(args, fast: Optional[bool] = None) -> Tokenizer:
    """Build the tokenizer the parsed flags in `args` describe; set `args.vocab_size` (padded) and
    `args.eod_token` (the eos id) on it; return the tokenizer.

    Flags read (missing ones take the original defaults): tokenizer_type, tokenizer_model_type,
    tokenizer_path, block_lm, task_mask, block_mask_prob, context_mask_ratio, sentinel_token,
    max_position_embeddings, fix_command_token, make_vocab_size_divisible_by, model_parallel_size, cache_dir.
    The vocabulary is padded to a multiple of --make-vocab-size-divisible-by only, as in the original; a
    model-parallel size that does not divide the result is rejected here rather than in the embedding."""
    sentinel = bool(_flag(args, 'sentinel_token', False))
    tokenizer = make_tokenizer(
        _flag(args, 'tokenizer_type', 'BertWordPieceTokenizer'),
        getattr(args, 'tokenizer_model_type', None),
        tokenizer_path=getattr(args, 'tokenizer_path', DEFAULT_TOKENIZER_PATH),
        add_block_symbols=bool(_flag(args, 'block_lm', False)),
        add_task_mask=bool(_flag(args, 'task_mask', False)),
        add_decoder_mask=_flag(args, 'block_mask_prob', 0.0) > 0 or _flag(args, 'context_mask_ratio', 0.0) > 0,
        add_sentinel_token=_flag(args, 'max_position_embeddings', 512) if sentinel else 0,
        fix_command_token=bool(_flag(args, 'fix_command_token', False)),
        cache_dir=getattr(args, 'cache_dir', None),
        fast=fast,
        make_vocab_size_divisible_by=_flag(args, 'make_vocab_size_divisible_by', 128))
    eod = tokenizer.get_command('eos').Id
    if eod != tokenizer.get_command('pad').Id:  # GLM delimits documents with the padding id
        raise ValueError(f'{tokenizer.tokenizer_class}: eos ({eod}) must equal pad ({tokenizer.get_command("pad").Id})')
    padded = tokenizer.padded_vocab_size
    mp = _flag(args, 'model_parallel_size', 1)
    if padded % mp:
        raise ValueError(f'padded vocabulary {padded} is not divisible by --model-parallel-size {mp}; choose a '
                         f'--make-vocab-size-divisible-by that is a multiple of {mp}')
    logger.info('> padded vocab (size: %d) with %d dummy tokens (new size: %d)', tokenizer.num_tokens,
                padded - tokenizer.num_tokens, padded)
    args.vocab_size = padded
    args.eod_token = eod
    return tokenizer
