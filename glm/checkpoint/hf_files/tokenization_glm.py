"""GLM tokenizers for a Hugging Face folder written by the GLM project's exporter.

Standalone: this file is copied into the exported folder and loaded by ``transformers``
(``trust_remote_code=True``); it needs only ``transformers`` and ``torch`` (plus ``regex`` for the
GPT-2/RoBERTa families, which ``transformers`` itself requires, and ``sentencepiece`` for the Chinese
family).  The GLM project checks in its tests that it gives the same ids as its own tokenizers
(``data_utils.tokenizers``), which reproduce the original THUDM/GLM ones.

How text becomes ids (the original's rules):

* the text is first cut at the literal strings of the command tokens (``[MASK]``, ``[gMASK]``,
  ``<|startofpiece|>``, ...), in the order of the table that ``tokenizer_config.json`` carries; a
  command with ``lstrip`` swallows the white space on its left; white-space-only text gives no ids;
* every other piece goes through the family's text tokenizer: BERT (basic tokenizer + WordPiece,
  lower-cased), GPT-2 / RoBERTa (byte-level BPE), or the Chinese SentencePiece model;
* ``tokenizer(text)`` adds ``[CLS]`` in front and the family's eos after, except after a final
  ``[gMASK]`` (as the original ``generate_samples.py`` did).

``build_inputs_for_generation`` and ``build_inputs_for_multiple_choice`` lay out GLM's blank-filling
inputs (part A bidirectional, part B autoregressive at the position of the mask it fills).
"""

import json
import os
import shutil
import unicodedata
from functools import lru_cache

import torch
from transformers import BatchEncoding, PreTrainedTokenizer

MASK_NAMES = ("MASK", "sMASK", "gMASK")
IGNORE_INDEX = -100


def split_on_commands(text, commands):
    """``text`` cut at the command strings: a list of ``str`` pieces and command dicts."""
    if not text.strip():
        return []
    pieces = [text]
    seen = set()
    for command in commands:
        token = command["token"]
        if token in seen or token not in text:
            continue
        seen.add(token)
        cut = []
        for piece in pieces:
            if not isinstance(piece, str) or token not in piece:
                cut.append(piece)
                continue
            parts = piece.split(token)
            for i, part in enumerate(parts):
                if command.get("rstrip") and i > 0:
                    part = part.lstrip()
                if command.get("lstrip") and i < len(parts) - 1:
                    part = part.rstrip()
                if part:
                    cut.append(part)
                if i < len(parts) - 1:
                    cut.append(command)
        pieces = cut
    return pieces


class GLMTokenizerBase(PreTrainedTokenizer):
    """Command tokens, special-token handling and GLM's input builders; a family supplies the
    text tokenizer (``_text_tokens``), its vocabulary and decoding."""

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, command_tokens=None, num_tokens=None, **kwargs):
        if not command_tokens:
            raise ValueError("tokenizer_config.json has no 'command_tokens': this folder was not written by the "
                             "GLM exporter (scripts/convert_glm_checkpoint_to_transformers.py)")
        self.command_tokens = [dict(c) for c in command_tokens]
        # Where two commands share a string or an id the later one wins, as in the original.
        self.command_by_token = {c["token"]: c for c in self.command_tokens}
        self.command_by_id = {c["id"]: c for c in self.command_tokens}
        self.command_by_name = {c["name"]: c for c in self.command_tokens}
        self.num_tokens = num_tokens
        for attribute, name in (("eos_token", "eos"), ("pad_token", "pad"), ("cls_token", "ENC"),
                                ("mask_token", "MASK"), ("unk_token", "unk"), ("sep_token", "sep")):
            if name in self.command_by_name:
                kwargs.setdefault(attribute, self.command_by_name[name]["token"])
        kwargs.setdefault("clean_up_tokenization_spaces", False)
        super().__init__(command_tokens=command_tokens, num_tokens=num_tokens, **kwargs)

    # -- vocabulary -------------------------------------------------------------------------------
    @property
    def vocab_size(self):
        return len(self.text_vocab())

    def get_vocab(self):
        vocab = dict(self.text_vocab())
        vocab.update({c["token"]: c["id"] for c in self.command_tokens})
        return vocab

    def _convert_token_to_id(self, token):
        command = self.command_by_token.get(token)
        if command is not None:
            return command["id"]
        return self.text_vocab().get(token, self.command_by_name["unk"]["id"])

    def _convert_id_to_token(self, index):
        command = self.command_by_id.get(index)
        if command is not None:
            return command["token"]
        token = self.text_id_to_token(index)
        return f"<|unassigned_id_{index}|>" if token is None else token

    def _convert_token_to_id_with_added_voc(self, token):
        return self._convert_token_to_id(token)

    # -- encoding ---------------------------------------------------------------------------------
    def tokenize(self, text, **kwargs):
        """Token strings: command strings split out first (the original's rules), then the text tokenizer."""
        # The original adds no eos after a context that ends with "[gMASK]" (a test on the text: an id
        # test could not tell [gMASK] from <|endofpiece|> where they share an id); remembered for
        # build_inputs_with_special_tokens, which encoding calls next.
        self._text_ends_with_gmask = text.endswith("[gMASK]")
        tokens = []
        for piece in split_on_commands(text, self.command_tokens):
            if isinstance(piece, dict):
                tokens.append(piece["token"])
            else:
                tokens.extend(self._tokenize(piece))
        return tokens

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None):
        if token_ids_1 is not None:
            raise ValueError("GLM tokenizers encode one text at a time (no pairs)")
        ids = [self.cls_token_id] + list(token_ids_0)
        ends_with_gmask = getattr(self, "_text_ends_with_gmask", None)
        self._text_ends_with_gmask = None
        if ends_with_gmask is None:  # ids given directly
            ends_with_gmask = bool(token_ids_0) and token_ids_0[-1] == self.gmask_token_id
        if not ends_with_gmask:
            ids.append(self.eos_token_id)
        return ids

    def num_special_tokens_to_add(self, pair=False):
        return 2

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False):
        if already_has_special_tokens:
            return [int(i in self.command_by_id) for i in token_ids_0]
        full = self.build_inputs_with_special_tokens(token_ids_0)
        return [1] + [0] * len(token_ids_0) + [1] * (len(full) - len(token_ids_0) - 1)

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None):
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0))

    # -- decoding ---------------------------------------------------------------------------------
    def _decode(self, token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=None, **kwargs):
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        ids = [int(i) for i in token_ids]
        if skip_special_tokens:
            ids = [i for i in ids if i not in self.command_by_id]
        return self._decode_ids(ids)

    # -- command tokens the GLM interface names -----------------------------------------------------
    def _command_id(self, name):
        command = self.command_by_name.get(name)
        return None if command is None else command["id"]

    @property
    def sop_token(self):
        return self.command_by_name["sop"]["token"]

    @property
    def sop_token_id(self):
        return self._command_id("sop")

    @property
    def eop_token(self):
        return self.command_by_name["eop"]["token"]

    @property
    def eop_token_id(self):
        return self._command_id("eop")

    @property
    def gmask_token_id(self):
        return self._command_id("gMASK")

    @property
    def smask_token_id(self):
        return self._command_id("sMASK")

    @property
    def mask_token_ids(self):
        """Ids that mark a blank: ``[MASK]``, and ``[sMASK]``/``[gMASK]`` where the model has them."""
        return [self.command_by_name[n]["id"] for n in MASK_NAMES if n in self.command_by_name]

    # -- GLM inputs -------------------------------------------------------------------------------
    def build_inputs_for_generation(self, model_input, max_gen_length=512, targets=None, padding=False):
        """Inputs that fill the first blank of each row (``generate`` goes on to the later blanks).

        ``model_input``: the output of ``tokenizer(texts, return_tensors="pt")`` (rows right-padded).
        Part B is appended after the context: ``[sop]`` (generation) or ``[sop] + target`` (training,
        ``targets`` a string or a list of strings; the target ends with ``[eop]``), every B token at
        position ``(mask position, 1, 2, ...)``.  Returns ``input_ids``, ``position_ids [B, 2, L]`` and
        ``generation_attention_mask`` ``[B, 1, L + max_gen_length, L + max_gen_length]`` (generation), or
        ``attention_mask [B, 1, L', L']`` and ``labels`` (-100 where nothing is predicted) for training.
        With ``padding=False`` the targets are padded to the longest one, else to ``max_gen_length``.
        """
        input_ids = torch.as_tensor(model_input["input_ids"])
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        context_mask = model_input.get("attention_mask")
        context_mask = torch.ones_like(input_ids) if context_mask is None else torch.as_tensor(context_mask)
        context_mask = context_mask.view_as(input_ids)
        batch, length = input_ids.shape
        labels = None
        if targets is not None:
            targets = [targets] if isinstance(targets, str) else list(targets)
            if len(targets) != batch:
                raise ValueError(f"{len(targets)} targets for {batch} inputs")
            encoded = [self(t, add_special_tokens=False)["input_ids"] for t in targets]
            encoded = [(ids + [self.eop_token_id])[:max_gen_length] for ids in encoded]
            if not padding:
                max_gen_length = max(map(len, encoded))
            labels = [ids + [IGNORE_INDEX] * (max_gen_length - len(ids)) for ids in encoded]
            fed = [[self.sop_token_id] + ids[:-1] for ids in encoded]
            fed = [ids + [self.pad_token_id] * (max_gen_length - len(ids)) for ids in fed]
            block = torch.tensor(fed, dtype=input_ids.dtype)
            labels = torch.cat([torch.full((batch, length), IGNORE_INDEX, dtype=torch.long),
                                torch.tensor(labels, dtype=torch.long)], dim=1)
        else:
            block = torch.full((batch, 1), self.sop_token_id, dtype=input_ids.dtype)
        mask_ids = torch.tensor(self.mask_token_ids)
        positions, block_positions = [], []
        for row in range(batch):
            found = torch.isin(input_ids[row], mask_ids).nonzero().view(-1).tolist()
            if not found:
                raise ValueError(f"row {row} has no blank to fill: put [MASK], [sMASK] or [gMASK] in the text")
            positions.append(list(range(length)) + [found[0]] * max_gen_length)
            block_positions.append([0] * length + list(range(1, max_gen_length + 1)))
        position_ids = torch.stack([torch.tensor(positions), torch.tensor(block_positions)], dim=1)
        total = length + max_gen_length
        attention = torch.zeros(batch, total, total, dtype=torch.long)
        attention[:, :, :length] = context_mask.unsqueeze(1)
        attention[:, length:, length:] = torch.tril(torch.ones(max_gen_length, max_gen_length, dtype=torch.long))
        attention = attention.unsqueeze(1)
        ids = torch.cat([input_ids, block], dim=1)
        if labels is None:
            return BatchEncoding({"input_ids": ids, "position_ids": position_ids,
                                  "generation_attention_mask": attention})
        return BatchEncoding({"input_ids": ids, "position_ids": position_ids, "attention_mask": attention,
                              "labels": labels})

    def _build_input_for_multiple_choice(self, context_ids, context_mask, choices):
        """One packed sequence: the context (part A, ending with ``[eos]``), then ``[sop] + choice[:-1]``
        for every choice at the position of the context's last ``[MASK]`` (appended before the final
        ``[eos]`` when absent); each choice sees the context and itself only."""
        context_ids = [int(i) for i in context_ids]
        context_mask = [int(m) for m in context_mask]
        while context_ids and context_mask[-1] == 0:  # drop right padding
            context_ids.pop()
            context_mask.pop()
        mask_id = self.mask_token_id
        if mask_id not in context_ids:
            at = len(context_ids) - 1 if context_ids[-1] == self.eos_token_id else len(context_ids)
            context_ids.insert(at, mask_id)
            context_mask.insert(at, 1)
        mask_position = len(context_ids) - 1 - context_ids[::-1].index(mask_id)
        length = len(context_ids)
        tokens, positions, blocks = list(context_ids), list(range(length)), [0] * length
        choice_ids, choice_indices, spans = [], [], []
        for choice in choices:
            ids = self(choice, add_special_tokens=False)["input_ids"]
            if not ids:
                raise ValueError(f"the choice {choice!r} encodes to no tokens")
            start = len(tokens)
            tokens += [self.sop_token_id] + ids[:-1]
            positions += [mask_position] * len(ids)
            blocks += list(range(1, len(ids) + 1))
            choice_ids.append(torch.tensor(ids))
            choice_indices.append(torch.arange(start, start + len(ids)))
            spans.append((start, len(ids)))
        total = len(tokens)
        attention = torch.zeros(total, total, dtype=torch.long)
        attention[:, :length] = torch.tensor(context_mask)
        for start, size in spans:
            attention[start:start + size, start:start + size] = torch.tril(torch.ones(size, size, dtype=torch.long))
        return {"input_ids": torch.tensor(tokens), "position_ids": torch.tensor([positions, blocks]),
                "attention_mask": attention, "choice_ids": choice_ids, "choice_indices": choice_indices}

    def build_inputs_for_multiple_choice(self, model_input, choices, max_length=None):
        """``model_input`` from ``tokenizer(contexts, return_tensors="pt", padding=True)``, ``choices`` a list
        (one per row) of lists of strings.  Returns the packed rows right-padded to the longest (or to
        ``max_length``): ``input_ids``, ``position_ids``, ``attention_mask [B, 1, L, L]``, ``choice_ids``,
        ``choice_indices`` -- what ``AutoModelForMultipleChoice`` takes."""
        input_ids = torch.as_tensor(model_input["input_ids"])
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        masks = model_input.get("attention_mask")
        masks = torch.ones_like(input_ids) if masks is None else torch.as_tensor(masks).view_as(input_ids)
        if len(choices) != input_ids.size(0) or (choices and isinstance(choices[0], str)):
            raise ValueError("choices must be a list with one list of strings per input row")
        rows = [self._build_input_for_multiple_choice(ids, mask, row_choices)
                for ids, mask, row_choices in zip(input_ids.tolist(), masks.tolist(), choices)]
        longest = max(len(r["input_ids"]) for r in rows)
        target = max(longest, max_length or 0)
        out = {"input_ids": [], "position_ids": [], "attention_mask": [], "choice_ids": [], "choice_indices": []}
        for row in rows:
            pad = target - len(row["input_ids"])
            out["input_ids"].append(torch.nn.functional.pad(row["input_ids"], (0, pad), value=self.pad_token_id))
            out["position_ids"].append(torch.nn.functional.pad(row["position_ids"], (0, pad)))
            out["attention_mask"].append(torch.nn.functional.pad(row["attention_mask"], (0, pad, 0, pad)))
            out["choice_ids"].append(row["choice_ids"])
            out["choice_indices"].append(row["choice_indices"])
        for key in ("input_ids", "position_ids", "attention_mask"):
            out[key] = torch.stack(out[key])
        out["attention_mask"] = out["attention_mask"].unsqueeze(1)
        return BatchEncoding(out)

    # -- files ------------------------------------------------------------------------------------
    def save_vocabulary(self, save_directory, filename_prefix=None):
        written = []
        for name in self.vocab_files_names.values():
            source = getattr(self, "_file_" + name.replace(".", "_").replace("-", "_"), None)
            target = os.path.join(save_directory, (filename_prefix + "-" if filename_prefix else "") + name)
            if source and os.path.abspath(source) != os.path.abspath(target):
                shutil.copyfile(source, target)
            written.append(target)
        return tuple(written)

    def _remember_file(self, name, path):
        setattr(self, "_file_" + name.replace(".", "_").replace("-", "_"), path)


# ---------------------------------------------------------------------------------------------------
# BERT: basic tokenizer + WordPiece

_CJK_BLOCKS = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
               (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_BERT_LITERALS = ("[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]")


@lru_cache(maxsize=None)
def _bert_char(ch):
    """How BERT treats one character: 'drop', 'space', 'cjk', 'punct' or 'keep'."""
    category = unicodedata.category(ch)
    if ch in " \t\n\r" or category == "Zs":
        return "space"
    if ch in "\x00\ufffd" or category.startswith("C"):  # control, format, unassigned
        return "drop"
    if any(low <= ord(ch) <= high for low, high in _CJK_BLOCKS):
        return "cjk"
    # every printable ASCII character that is not a letter or digit counts as punctuation ('$', '^', '`')
    if (33 <= ord(ch) <= 126 and not ch.isalnum()) or category.startswith("P"):
        return "punct"
    return "keep"


class GLMBertTokenizer(GLMTokenizerBase):
    vocab_files_names = {"vocab_file": "vocab.txt"}

    def __init__(self, vocab_file, do_lower_case=True, **kwargs):
        with open(vocab_file, encoding="utf-8", newline="\n") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.do_lower_case = do_lower_case
        self._remember_file("vocab.txt", vocab_file)
        super().__init__(do_lower_case=do_lower_case, **kwargs)

    def text_vocab(self):
        return self.vocab

    def text_id_to_token(self, index):
        return self.ids_to_tokens.get(index)

    def _words(self, text):
        spaced = []
        for ch in text:
            kind = _bert_char(ch)
            if kind == "space":
                spaced.append(" ")
            elif kind == "cjk":
                spaced.append(f" {ch} ")
            elif kind != "drop":
                spaced.append(ch)
        for word in "".join(spaced).split():
            if word in _BERT_LITERALS:
                yield word
                continue
            if self.do_lower_case:
                word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
            run = ""
            for ch in word:
                if _bert_char(ch) == "punct":
                    if run:
                        yield run
                    yield ch
                    run = ""
                else:
                    run += ch
            if run:
                yield run

    def _wordpiece(self, word):
        if len(word) > 100:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    pieces.append(piece)
                    start = end
                    break
            else:
                return ["[UNK]"]
        return pieces

    def _tokenize(self, text, **kwargs):
        return [piece for word in self._words(text) for piece in self._wordpiece(word)]

    def _decode_ids(self, ids):
        return " ".join(self.convert_ids_to_tokens(ids)).replace(" ##", "")


# ---------------------------------------------------------------------------------------------------
# GPT-2 and RoBERTa: byte-level BPE

_GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _byte_spelling():
    """GPT-2's byte -> printable stand-in character table."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


class GLMGPT2Tokenizer(GLMTokenizerBase):
    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}

    def __init__(self, vocab_file, merges_file, **kwargs):
        import regex

        with open(vocab_file, encoding="utf-8") as f:
            self.encoder = json.load(f)
        self.decoder = {i: t for t, i in self.encoder.items()}
        with open(merges_file, encoding="utf-8") as f:
            merges = [tuple(line.split(" ")) for line in f.read().split("\n") if line and not line.startswith("#version")]
        self.merge_rank = {pair: rank for rank, pair in enumerate(merges)}
        self.spell = _byte_spelling()
        self.unspell = {c: b for b, c in self.spell.items()}
        self.pretokenizer = regex.compile(_GPT2_PATTERN)
        self._merged = {}
        self._remember_file("vocab.json", vocab_file)
        self._remember_file("merges.txt", merges_file)
        super().__init__(**kwargs)

    def text_vocab(self):
        return self.encoder

    def text_id_to_token(self, index):
        return self.decoder.get(index)

    def _merge(self, word):
        """BPE: repeatedly merge the adjacent pair with the lowest rank, every occurrence at once."""
        if word in self._merged:
            return self._merged[word]
        parts = list(word)
        while len(parts) > 1:
            pairs = [(self.merge_rank.get(pair, float("inf")), pair) for pair in zip(parts, parts[1:])]
            rank, best = min(pairs, key=lambda item: item[0])
            if rank == float("inf"):
                break
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self._merged[word] = parts
        return parts

    def _tokenize(self, text, **kwargs):
        tokens = []
        for piece in self.pretokenizer.findall(text):
            tokens.extend(self._merge("".join(self.spell[b] for b in piece.encode("utf-8", "surrogatepass"))))
        return tokens

    def _decode_ids(self, ids):
        out, run = [], bytearray()
        for index in ids:
            if index in self.command_by_id or index not in self.decoder:
                if run:
                    out.append(run.decode("utf-8", errors="replace"))
                    run = bytearray()
                out.append(self._convert_id_to_token(index))
            else:
                run.extend(self.unspell[c] for c in self.decoder[index])
        if run:
            out.append(run.decode("utf-8", errors="replace"))
        return "".join(out)


class GLMRobertaTokenizer(GLMGPT2Tokenizer):
    """RoBERTa's vocabulary over GPT-2's merges; GLM maps its command strings onto RoBERTa's specials."""


# ---------------------------------------------------------------------------------------------------
# Chinese: the cog-pretrain SentencePiece model

class GLMChineseTokenizer(GLMTokenizerBase):
    vocab_files_names = {"vocab_file": "cog-pretrain.model"}

    def __init__(self, vocab_file, **kwargs):
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor(model_file=vocab_file)
        self._pieces = {self.sp.id_to_piece(i): i for i in range(self.sp.get_piece_size())}
        self._remember_file("cog-pretrain.model", vocab_file)
        super().__init__(**kwargs)

    def text_vocab(self):
        return self._pieces

    def text_id_to_token(self, index):
        return self.sp.id_to_piece(index) if index < self.sp.get_piece_size() else None

    def _tokenize(self, text, **kwargs):
        return self.sp.encode(text, out_type=str)

    def _convert_token_to_id(self, token):
        command = self.command_by_token.get(token)
        if command is not None:
            return command["id"]
        return self.sp.piece_to_id(token)

    def _decode_ids(self, ids):
        out, run = [], []
        size = self.sp.get_piece_size()
        for index in ids:
            if index < size and index not in self.command_by_id:
                run.append(index)
                continue
            if run:
                out.append(self.sp.decode(run))
                run = []
            out.append(self._convert_id_to_token(index))
        if run:
            out.append(self.sp.decode(run))
        return "".join(out)
