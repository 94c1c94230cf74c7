"""The interface shared by every GLM tokenizer, and the command-token splitting done before any text
tokenizer sees the text (spec §5).

A family module subclasses `Tokenizer` and supplies five hooks: `_encode_text` (text -> ids),
`_text_tokens` (text -> token strings), `_text_id_to_token` / `_text_token_to_id` (the text vocabulary,
None where there is no entry) and `_decode` (validated ids -> text). Everything about command tokens, type tokens, id validation and the padded
vocabulary lives here, once.
"""

from __future__ import annotations

import operator
from typing import Callable, Iterable, Optional, Sequence, Union

from .command_tokens import TYPE_TOKENS, CommandToken, TypeToken

__all__ = ['Tokenization', 'Tokenizer', 'split_on_command_tokens', 'unassigned_token']


def unassigned_token(idx: int) -> str:
    """Placeholder string for an id that belongs to no token: the padding rows of the vocabulary
    (num_tokens <= id < padded size) and holes such as ChineseSP's 50005. Samplers can emit such ids,
    because the logits cover the padded vocabulary."""
    return f'<|unassigned_id_{idx}|>'


class Tokenization:
    """Result of an encode call: `tokenization` holds the ids (or token strings when `asIds` is False),
    `text` the processed text and `original_text` the input."""

    def __init__(self, tokenization: list, text: str, original_text: Optional[str] = None, asIds: bool = True):
        self.tokenization = tokenization
        self.text = text
        self.original_text = text if original_text is None else original_text
        self.asIds = asIds

    def __len__(self) -> int:
        return len(self.tokenization)

    def __getitem__(self, index):
        return self.tokenization[index]

    def __iter__(self):
        return iter(self.tokenization)

    def __repr__(self) -> str:
        return f'Tokenization({self.tokenization!r})'


def split_on_command_tokens(text: str, command_tokens: Sequence[CommandToken]) -> list[Union[str, CommandToken]]:
    """Cut `text` at the literal strings of the command tokens, as the original did.

    Tokens are applied one after another in table order; each one splits the text pieces left by the
    previous ones. Around an occurrence of a token with lstrip (rstrip) the piece on its left (right) is
    stripped of whitespace, and pieces that end up empty are dropped. Text that is empty or only
    whitespace gives no pieces at all (so it encodes to no ids, whatever the text tokenizer would say)."""
    if not text.strip():
        return []
    pieces: list[Union[str, CommandToken]] = [text]
    seen: set[str] = set()
    for cmd in command_tokens:
        if cmd.token in seen or cmd.token not in text:  # a repeated string splits nothing more
            continue
        seen.add(cmd.token)
        split: list[Union[str, CommandToken]] = []
        for piece in pieces:
            if not isinstance(piece, str) or cmd.token not in piece:
                split.append(piece)
                continue
            parts = piece.split(cmd.token)
            last = len(parts) - 1
            for i, part in enumerate(parts):
                if cmd.rstrip and i > 0:
                    part = part.lstrip()
                if cmd.lstrip and i < last:
                    part = part.rstrip()
                if part:
                    split.append(part)
                if i < last:
                    split.append(cmd)
        pieces = split
    return pieces


class Tokenizer:
    """Command tokens + type tokens + a text tokenizer, with the original's method names.

    Ids: text ids come from the family's vocabulary, command ids from its table (some share an id, e.g.
    pad and eos); `num_tokens` is the unpadded count the original reported and `padded_vocab_size` the
    model's vocabulary size. Ids in [0, padded_vocab_size) that belong to nothing decode to
    `unassigned_token(id)`; ids outside that range raise ValueError."""

    backend = 'reference'  # which text tokenizer implementation runs: 'reference', 'fast', 'sentencepiece'

    def __init__(self, command_tokens: Sequence[CommandToken], num_tokens: int, num_text_tokens: int,
                 padded_vocab_size: Optional[int] = None, type_tokens: Sequence[TypeToken] = TYPE_TOKENS):
        self._command_tokens = list(command_tokens)
        self.num_tokens = num_tokens
        self.num_text_tokens = num_text_tokens
        self.padded_vocab_size = num_tokens if padded_vocab_size is None else padded_vocab_size
        if self.padded_vocab_size < num_tokens:
            raise ValueError(f'padded vocabulary ({self.padded_vocab_size}) smaller than num_tokens ({num_tokens})')
        self.command_name_map = {t.name: t for t in self._command_tokens}
        # Where two commands share a string or an id, the later one in the table wins, as in the original
        # (RoBERTa decodes 2 as '[SEP]', ChineseSP without the fix decodes 50007 as '[gMASK]').
        self.command_token_map = {t.token: t for t in self._command_tokens}
        self.command_id_map = {t.Id: t for t in self._command_tokens}
        # Most text holds no command string at all: one look for their first characters settles it.
        self._command_initials = frozenset(t.token[0] for t in self._command_tokens if t.token)
        self._type_tokens = list(type_tokens)
        self.type_name_map = {t.name: t for t in self._type_tokens}
        self.type_token_map = {t.token: t for t in self._type_tokens}
        self.type_id_map = {t.Id: t for t in self._type_tokens}

    # ----------------------------------------------------------------- tables
    @property
    def num_command_tokens(self) -> int:
        """Number of command-token entries (ids may repeat: pad and eos share one)."""
        return len(self._command_tokens)

    @property
    def num_type_tokens(self) -> int:
        return len(self._type_tokens)

    @property
    def command_tokens(self) -> list[CommandToken]:
        """The command tokens in the original's order."""
        return list(self._command_tokens)

    @property
    def type_tokens(self) -> list[TypeToken]:
        return list(self._type_tokens)

    @property
    def tokenizer_class(self) -> str:
        return type(self).__name__

    def get_command(self, name: str) -> CommandToken:
        """The command token called `name` ('pad', 'eos', 'ENC', 'MASK', 'sep', 'unk', 'sop', 'eop', ...)."""
        try:
            return self.command_name_map[name]
        except KeyError:
            raise KeyError(f'{self.tokenizer_class} has no command token {name!r}; it has '
                           f'{sorted(self.command_name_map)}') from None

    def get_type(self, name: str) -> TypeToken:
        """The type token called `name` ('str0' or 'str1')."""
        return self.type_name_map[name]

    # ----------------------------------------------------------------- encoding
    def EncodeAsIds(self, text: str, process_fn: Optional[Callable[[str], str]] = None) -> Tokenization:
        """Encode `text`: command-token strings become their ids, the rest goes through the text tokenizer.
        The ids are in `.tokenization`."""
        processed = process_fn(text) if process_fn is not None else text
        if not any(c in processed for c in self._command_initials):
            pieces = [processed] if processed.strip() else []
        else:
            pieces = split_on_command_tokens(processed, self._command_tokens)
        ids: list[int] = []
        for piece in pieces:
            if isinstance(piece, CommandToken):
                ids.append(self.command_token_map[piece.token].Id)
            else:
                ids.extend(self._encode_text(piece))
        return Tokenization(ids, processed, text)

    def EncodeAsTokens(self, text: str, process_fn: Optional[Callable[[str], str]] = None) -> Tokenization:
        """The text tokenizer's token strings for `text` (no command-token splitting, as in the original)."""
        processed = process_fn(text) if process_fn is not None else text
        return Tokenization(self._text_tokens(processed), processed, text, asIds=False)

    # ----------------------------------------------------------------- decoding
    def _check_id(self, idx) -> int:
        try:
            idx = operator.index(idx)
        except TypeError:
            raise TypeError(f'token ids must be integers, got {idx!r}') from None
        if not 0 <= idx < self.padded_vocab_size:
            raise ValueError(f'token id {idx} is outside the vocabulary of {self.tokenizer_class} '
                             f'(valid ids: 0..{self.padded_vocab_size - 1}, padded vocabulary '
                             f'{self.padded_vocab_size}, {self.num_tokens} real tokens)')
        return idx

    def _check_ids(self, ids) -> list[int]:
        if isinstance(ids, Tokenization):
            ids = ids.tokenization
        if hasattr(ids, 'tolist'):  # numpy arrays and torch tensors
            ids = ids.tolist()
        if isinstance(ids, int):
            ids = [ids]
        return [self._check_id(i) for i in ids]

    def IdToToken(self, Id) -> str:
        """The string of one id: command tokens first, then the text vocabulary, else the placeholder."""
        if isinstance(Id, (CommandToken, TypeToken)):
            return Id.token
        idx = self._check_id(Id)
        if idx in self.command_id_map:
            return self.command_id_map[idx].token
        token = self._text_id_to_token(idx)
        return unassigned_token(idx) if token is None else token

    def TokenToId(self, token) -> int:
        """The id of a token string (a command string or a text-vocabulary entry). KeyError if unknown."""
        if isinstance(token, (CommandToken, TypeToken)):
            return token.Id
        if token in self.command_token_map:
            return self.command_token_map[token].Id
        idx = self._text_token_to_id(token)
        if idx is None:
            raise KeyError(f'{token!r} is neither a command token nor in the {self.tokenizer_class} vocabulary')
        return idx

    def DecodeIds(self, ids) -> str:
        """Text for a sequence of ids (a list, a Tokenization, a numpy array or a tensor)."""
        return self._decode(self._check_ids(ids))

    def DecodeTokens(self, tokens: Iterable[str]) -> str:
        """Text for a sequence of token strings."""
        if isinstance(tokens, Tokenization):
            tokens = tokens.tokenization
        return self._decode([self.TokenToId(t) for t in tokens])

    # ----------------------------------------------------------------- hooks
    def _encode_text(self, text: str) -> list[int]:
        raise NotImplementedError

    def _text_tokens(self, text: str) -> list[str]:
        raise NotImplementedError

    def _text_id_to_token(self, idx: int) -> Optional[str]:
        raise NotImplementedError

    def _text_token_to_id(self, token: str) -> Optional[int]:
        raise NotImplementedError

    def _decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f'{self.tokenizer_class}(num_tokens={self.num_tokens}, padded_vocab_size={self.padded_vocab_size}, '
                f'backend={self.backend!r})')
