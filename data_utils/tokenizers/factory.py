"""Building a tokenizer from the original command-line flags: `make_tokenizer` (explicit values) and
`prepare_tokenizer` / `configure_tokenizer` (from a run's typed configuration)."""

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

__all__ = ['TOKENIZER_TYPES', 'make_tokenizer', 'prepare_tokenizer', 'tokenizer_values', 'configure_tokenizer']

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


def prepare_tokenizer(config, fast: Optional[bool] = None) -> Tokenizer:
    """Build the tokenizer a run's configuration (a :class:`glm.config.RunConfig`) describes.

    The vocabulary is padded to a multiple of --make-vocab-size-divisible-by only, as in the original; a
    model-parallel size that does not divide the result is rejected here rather than in the embedding.
    The configuration is not changed: :func:`tokenizer_values` gives what the entry point folds back into it."""
    data, objective, model = config.data, config.objective, config.model
    tokenizer = make_tokenizer(
        data.tokenizer_type,
        data.tokenizer_model_type,
        tokenizer_path=data.tokenizer_path,
        add_block_symbols=objective.block_lm,
        add_task_mask=objective.task_mask,
        add_decoder_mask=objective.block_mask_prob > 0 or objective.context_mask_ratio > 0,
        add_sentinel_token=model.max_position_embeddings if objective.sentinel_token else 0,
        fix_command_token=data.fix_command_token,
        cache_dir=data.cache_dir,
        fast=fast,
        make_vocab_size_divisible_by=model.make_vocab_size_divisible_by)
    eod = tokenizer.get_command('eos').Id
    if eod != tokenizer.get_command('pad').Id:  # GLM delimits documents with the padding id
        raise ValueError(f'{tokenizer.tokenizer_class}: eos ({eod}) must equal pad ({tokenizer.get_command("pad").Id})')
    padded = tokenizer.padded_vocab_size
    mp = config.parallel.model_parallel_size
    if padded % mp:
        raise ValueError(f'padded vocabulary {padded} is not divisible by --model-parallel-size {mp}; choose a '
                         f'--make-vocab-size-divisible-by that is a multiple of {mp}')
    logger.info('> padded vocab (size: %d) with %d dummy tokens (new size: %d)', tokenizer.num_tokens,
                padded - tokenizer.num_tokens, padded)
    return tokenizer


def tokenizer_values(tokenizer: Tokenizer) -> dict:
    """The configuration values a tokenizer decides: the padded vocabulary size and the end-of-document id
    (for :meth:`glm.config.RunConfig.updated`)."""
    return {'vocab_size': tokenizer.padded_vocab_size, 'eod_token': tokenizer.get_command('eos').Id}


def configure_tokenizer(config, fast: Optional[bool] = None):
    """For entry points: build the tokenizer and return ``(tokenizer, config with its values)``."""
    tokenizer = prepare_tokenizer(config, fast=fast)
    return tokenizer, config.updated(**tokenizer_values(tokenizer))
