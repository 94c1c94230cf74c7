"""Where vocabulary files are found. Nothing is ever downloaded.

The BERT uncased and GPT-2 files ship in `vocab/` beside this module. The RoBERTa files and the Chinese
SentencePiece model may not be redistributed, so they come from the user: `--tokenizer-path` (the file
itself or its directory), the directory in the environment variable GLM_VOCAB_DIR, or `--cache-dir`.
File names are those of the GLM release (see vocab/PROVENANCE.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

__all__ = ['SHIPPED_VOCAB_DIR', 'VOCAB_DIR_ENV', 'DEFAULT_TOKENIZER_PATH', 'find_vocab_file', 'ignore_default_path']

SHIPPED_VOCAB_DIR = Path(__file__).resolve().parent / 'vocab'
VOCAB_DIR_ENV = 'GLM_VOCAB_DIR'
DEFAULT_TOKENIZER_PATH = 'tokenizer.model'  # argparse default of --tokenizer-path

# What each non-shipped file is, for the error message.
_DESCRIPTIONS = {
    'roberta-vocab.json': 'the RoBERTa BPE vocabulary of GLM-RoBERTa (fairseq ids, 50265 entries)',
    'roberta-merges.txt': 'the RoBERTa BPE merges (identical to gpt2-merges.txt)',
    'cog-pretrain.model': 'the Chinese SentencePiece model of GLM-Large-Chinese / GLM-10B-Chinese (50000 pieces)',
}


def _path_candidates(tokenizer_path: Optional[str], filename: str, use_file_itself: bool) -> list[Path]:
    if not tokenizer_path:
        return []
    path = Path(tokenizer_path).expanduser()
    if path.is_dir():
        return [path / filename]
    if use_file_itself:
        return [path]
    return [path.parent / filename]  # a sibling file (e.g. roberta-vocab.json next to roberta-merges.txt)


def find_vocab_file(filename: str, *, tokenizer_path: Optional[str] = None, cache_dir: Optional[str] = None,
                    shipped: bool = False, path_is_file: bool = False, needed_by: str = '') -> Path:
    """Return the first existing location of `filename`, or raise FileNotFoundError naming the file and
    every place looked at.

    Order: `tokenizer_path` (a directory holding `filename`, or with `path_is_file` the file itself, else a
    file beside it), $GLM_VOCAB_DIR, `cache_dir`, and for shipped files the package's vocab/ directory."""
    tried: list[str] = []
    candidates: list[Path] = []
    if tokenizer_path:
        for p in _path_candidates(tokenizer_path, filename, path_is_file):
            candidates.append(p)
            tried.append(f'--tokenizer-path: {p}')
    else:
        tried.append('--tokenizer-path: not given')
    env_dir = os.environ.get(VOCAB_DIR_ENV)
    if env_dir:
        p = Path(env_dir).expanduser() / filename
        candidates.append(p)
        tried.append(f'${VOCAB_DIR_ENV}: {p}')
    else:
        tried.append(f'${VOCAB_DIR_ENV}: not set')
    if cache_dir:
        p = Path(cache_dir).expanduser() / filename
        candidates.append(p)
        tried.append(f'--cache-dir: {p}')
    if shipped:
        p = SHIPPED_VOCAB_DIR / filename
        candidates.append(p)
        tried.append(f'shipped with the package: {p}')
    for p in candidates:
        if p.is_file():
            return p
    what = _DESCRIPTIONS.get(filename, 'a vocabulary file')
    who = f'{needed_by} needs' if needed_by else 'Needed:'
    hint = ('' if shipped else f' It is not shipped with this project: pass --tokenizer-path pointing at the file '
            f'or its directory, or set {VOCAB_DIR_ENV} to the directory holding it.')
    raise FileNotFoundError(f'{who} {filename!r} ({what}), which was not found. Looked in:\n  '
                            + '\n  '.join(tried) + f'\n{hint.strip()}')


def ignore_default_path(tokenizer_path: Optional[str]) -> Optional[str]:
    """--tokenizer-path defaults to 'tokenizer.model' (meant for SentencePieceTokenizer); other families
    treat that default as "not given", so a stray ./tokenizer.model is never mistaken for their vocabulary."""
    if tokenizer_path in (None, '', DEFAULT_TOKENIZER_PATH):
        return None
    return str(tokenizer_path)

