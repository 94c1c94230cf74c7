"""Tokenise a corpus once into the lazy cache (spec sections 6.1-6.2), in parallel, deterministically, atomically.

The command line is ``scripts/preprocess_corpus.py``; this module owns building and checking caches
(:func:`build_cache`, :func:`ensure_cache`) from explicit values, and must not read the flag parser.

Corpora are registry names or direct paths (see :mod:`data_utils.corpora`); the tokenizer flags are GLM's own
(``--tokenizer-type``, ``--tokenizer-model-type``, ``--block-lm``, ``--task-mask``, ...), so the cache matches
the training run that uses the same flags.  Pass ``--block-lm`` when training uses it: the cache stores the
tokenizer's fingerprint and a different tokenizer refuses it.

What it guarantees (deviations from the original, which appended results in completion order):

* **Deterministic order**: the main process cuts the input into chunks; worker processes tokenise them; results
  are written in input order whatever the completion order, so 1 and N workers give byte-identical caches.
* **Atomic output**: the cache is written to ``X.lazy.tmp-<pid>-<random>`` beside its final place and renamed
  to ``X.lazy`` only when complete; an error or interrupt removes the temporary directory, and a hard kill
  leaves at most a ``*.tmp-*`` directory, never a half-written cache under the real name.
* **Bad input is counted, not fatal**: malformed JSON, a missing ``text`` key, empty or whitespace-only
  documents and invalid UTF-8 are skipped and listed by reason with ``file:line`` in the summary.  Problems of
  configuration (unknown corpus, missing path, missing language model) stop the run with a one-line message.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import sys
import time
import uuid
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .corpora import CorpusError, CorpusSpec, Filtered, Skip, file_format
from .lazy import INT32, LazyCorpus, LazyFormatError, LazyWriter, is_lazy_dir, read_meta

__all__ = ['PreprocessError', 'PreprocessSummary', 'build_cache', 'ensure_cache', 'cache_path_for',
           'tokenizer_fingerprint', 'tokenizer_tag', 'MAX_LOCATIONS']

#: How many skipped-item locations a summary keeps (counts are always complete).
MAX_LOCATIONS = 1000
#: A chunk sent to a worker holds at most this many items or bytes.
CHUNK_ITEMS = 512
CHUNK_BYTES = 256 << 10

_PROBE = 'Hello, World! The quick brown fox (1234) "jumps" -- over: the lazy dog? 你好，世界。 naïve café\n'


class PreprocessError(Exception):
    """The preprocessing run failed (a worker died, the output could not be written...)."""


# --------------------------------------------------------------------------------------------- fingerprints
def tokenizer_fingerprint(tokenizer) -> Dict[str, Any]:
    """What identifies a tokenizer for cache reuse: class, size, command-token ids and the ids of a probe
    text.  A cache built with a different fingerprint is refused."""
    commands = {}
    for name, token in sorted(getattr(tokenizer, 'command_name_map', {}).items()):
        commands[name] = int(getattr(token, 'Id', -1))
    probe = list(map(int, tokenizer.EncodeAsIds(_PROBE).tokenization))
    return {'class': getattr(tokenizer, 'tokenizer_class', type(tokenizer).__name__),
            'num_tokens': int(getattr(tokenizer, 'num_tokens', 0)), 'commands': commands,
            'probe_sha1': hashlib.sha1(json.dumps(probe).encode()).hexdigest()}


def tokenizer_tag(tokenizer, pre_tokenize: bool = True) -> str:
    """Short tag used in cache names under a cache directory: ``<class>-<hash8>`` (or ``text``)."""
    if not pre_tokenize:
        return 'text'
    fp = tokenizer_fingerprint(tokenizer)
    digest = hashlib.sha1(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:8]
    return f'{fp["class"]}-{digest}'


def cache_path_for(spec: CorpusSpec, tokenizer, pre_tokenize: bool = True) -> str:
    """Where ``spec``'s cache lives for this tokenizer (see :meth:`CorpusSpec.default_cache_path`)."""
    return spec.default_cache_path(tokenizer_tag(tokenizer, pre_tokenize) if spec.cache_root else None)


# --------------------------------------------------------------------------------------------- summary
@dataclasses.dataclass
class PreprocessSummary:
    """What a run did.  ``skipped_at`` lists ``(file, line, reason)`` for the first :data:`MAX_LOCATIONS`
    skipped items (``line`` is the record number for whole-file JSON); ``skipped`` counts all by reason;
    ``filtered`` counts items dropped on purpose by the corpus filter."""
    corpus: str
    cache: str
    files: int = 0
    items: int = 0
    documents: int = 0
    tokens: Dict[str, int] = dataclasses.field(default_factory=dict)
    skipped: Dict[str, int] = dataclasses.field(default_factory=dict)
    skipped_at: List[Tuple[str, int, str]] = dataclasses.field(default_factory=list)
    filtered: Dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 1
    reused: bool = False

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def num_tokens(self) -> int:
        """Tokens of the documents (prompt + text; the mask field holds run lengths, not tokens)."""
        return sum(v for k, v in self.tokens.items() if k != 'mask')

    def to_json(self) -> Dict[str, Any]:
        """The deterministic part (no timing) as stored in ``meta.json``."""
        return {'corpus': self.corpus, 'files': self.files, 'items': self.items, 'documents': self.documents,
                'tokens': dict(self.tokens), 'skipped': dict(sorted(self.skipped.items())),
                'skipped_at': [list(x) for x in self.skipped_at], 'filtered': dict(sorted(self.filtered.items()))}

    def format(self, max_lines: int = 20) -> str:
        unit = 'tokens'
        lines = [f'corpus {self.corpus} -> {self.cache}' + (' (existing cache reused)' if self.reused else '')]
        if self.reused:
            lines.append(f'  documents: {self.documents:,}, {unit}: {self.num_tokens:,}')
            return '\n'.join(lines)
        lines.append(f'  files: {self.files}, items read: {self.items:,}, documents: {self.documents:,}, '
                     f'{unit}: {self.num_tokens:,} ({", ".join(f"{k} {v:,}" for k, v in self.tokens.items())})')
        if self.seconds > 0:
            lines.append(f'  time: {self.seconds:.1f} s, {self.num_tokens / self.seconds:,.0f} {unit}/s with '
                         f'{self.workers} worker{"s" if self.workers != 1 else ""}')
        if self.filtered:
            lines.append('  filtered: ' + ', '.join(f'{r}: {n:,}' for r, n in sorted(self.filtered.items())))
        if self.skipped:
            lines.append(f'  skipped {self.num_skipped:,} item(s):')
            for reason, count in sorted(self.skipped.items()):
                lines.append(f'    {reason}: {count:,}')
            for path, line, reason in self.skipped_at[:max_lines]:
                lines.append(f'    {path}:{line}: {reason}')
            if self.num_skipped > max_lines:
                lines.append(f'    ... {self.num_skipped - max_lines:,} more (see {os.path.basename(self.cache)}'
                             f'/meta.json for the first {MAX_LOCATIONS})')
        return '\n'.join(lines)


# --------------------------------------------------------------------------------------------- worker side
@dataclasses.dataclass
class _ChunkResult:
    payload: Dict[str, bytes]
    lens: Dict[str, List[int]]
    documents: int
    skipped: List[Tuple[int, str]]
    filtered: Dict[str, int]
    fatal: Optional[str] = None


_STATE: Dict[str, Any] = {}


def _exit_with_parent(interval: float = 1.0) -> None:
    """A worker whose main process was killed (SIGKILL, OOM) exits instead of lingering as an orphan."""
    import threading
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)
    threading.Thread(target=watch, name='exit-with-parent', daemon=True).start()


def _init_worker(reader, tokenizer, pre_tokenize: bool, in_worker: bool = True) -> None:
    """Worker initializer: the reader and tokenizer live in the worker for its whole life.  In a worker
    process Ctrl-C is left to the main process, which cleans up."""
    if in_worker:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the CLI's handler inherited through fork
        except (ValueError, OSError):
            pass
        os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
        _exit_with_parent()
    _STATE.update(reader=reader, tokenizer=tokenizer, pre_tokenize=pre_tokenize)


def _process_chunk(task: Tuple[str, List[Tuple[int, Any]]]) -> _ChunkResult:
    """Tokenise one chunk.  Every exception is caught: bad items become skip reasons, configuration errors a
    ``fatal`` message for the main process; nothing escapes as a traceback from a worker."""
    fmt, items = task
    reader, tokenizer, pre_tokenize = _STATE['reader'], _STATE['tokenizer'], _STATE['pre_tokenize']
    fields = reader.fields
    text_fields = set() if not pre_tokenize else set(fields)
    parts: Dict[str, List[bytes]] = {f: [] for f in fields}
    lens: Dict[str, List[int]] = {f: [] for f in fields}
    skipped: List[Tuple[int, str]] = []
    filtered: Dict[str, int] = collections.Counter()
    documents = 0
    try:
        for lineno, raw in items:
            if isinstance(raw, Skip):
                skipped.append((lineno, raw.reason))
                continue
            try:
                records = []
                for doc in reader.documents(reader.parse(raw, fmt)):
                    records.extend(reader.encode(doc, tokenizer, pre_tokenize))
            except Skip as skip:
                skipped.append((lineno, skip.reason))
                continue
            except Filtered as dropped:
                filtered[dropped.reason] += 1
                continue
            except CorpusError:
                raise
            except Exception as exc:  # noqa: BLE001 - a reader/tokenizer failure on one item is a skip reason
                skipped.append((lineno, f'error: {type(exc).__name__}: {exc}'[:200]))
                continue
            for record in records:
                for field in fields:
                    value = record[field]
                    if field in text_fields or field == 'mask':
                        data = np.asarray(value, dtype=np.int64).astype(INT32).tobytes()
                        lens[field].append(len(data) // 4)
                    else:
                        data = value.encode('utf-8')
                        lens[field].append(len(data))
                    parts[field].append(data)
                documents += 1
    except CorpusError as exc:
        return _ChunkResult({}, {}, 0, [], {}, fatal=str(exc))
    except BaseException as exc:  # noqa: BLE001 - report, never die with a bare traceback
        return _ChunkResult({}, {}, 0, [], {}, fatal=f'{type(exc).__name__}: {exc}')
    return _ChunkResult({f: b''.join(p) for f, p in parts.items()}, lens, documents, skipped, dict(filtered))


# --------------------------------------------------------------------------------------------- main side
def _item_size(raw: Any) -> int:
    """Bytes of a raw line, or an estimate for an already parsed item (its string values)."""
    if isinstance(raw, (bytes, bytearray)):
        return len(raw) + 1
    if isinstance(raw, dict):
        return sum(len(v) for v in raw.values() if isinstance(v, str)) + 16
    return 16


def _chunks(reader, files: Sequence[str], summary: PreprocessSummary) -> Iterator[Tuple[int, int, Optional[Tuple]]]:
    """``(file index, progress bytes, (fmt, items))`` chunks in input order; a ``None`` task only advances the
    progress bar to the end of a file (parsed items have no exact byte count)."""
    for index, path in enumerate(files):
        items, size, progress, done = [], 0, 0, 0
        try:
            fmt = file_format(path, reader)
            stream = reader.iter_items(path, fmt)
            while True:
                try:
                    lineno, raw = next(stream)
                except StopIteration:
                    break
                summary.items += 1
                items.append((lineno, raw))
                size += _item_size(raw)
                progress += len(raw) + 1 if isinstance(raw, (bytes, bytearray)) else 0
                if len(items) >= CHUNK_ITEMS or size >= CHUNK_BYTES:
                    yield index, progress, (fmt, items)
                    done += progress
                    items, size, progress = [], 0, 0
        except (OSError, EOFError) as exc:  # unreadable, truncated or corrupt (gzip) input
            raise PreprocessError(f'cannot read {path}: {exc}') from None
        if items:
            yield index, progress, (fmt, items)
            done += progress
        try:
            rest = os.path.getsize(path) - done
        except OSError:
            rest = 0
        if rest > 0:
            yield index, rest, None


def _write_chunk(writer: LazyWriter, result: _ChunkResult) -> None:
    for field in writer.fields:
        writer.add_encoded(field, result.payload[field], result.lens[field])


def _mp_context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context('fork' if 'fork' in methods else 'spawn')


def _check_existing(path: str, tokenizer, pre_tokenize: bool) -> None:
    """Refuse a token cache built with another tokenizer."""
    meta = read_meta(path)
    if meta is None or meta.get('dtype') != 'int32' or not pre_tokenize:
        return
    want = tokenizer_fingerprint(tokenizer)
    have = meta.get('tokenizer')
    if have is not None and have != want:
        raise CorpusError(f'cache {path} was built with another tokenizer ({have.get("class")}, '
                          f'{have.get("num_tokens")} tokens) than this run uses ({want["class"]}, '
                          f'{want["num_tokens"]} tokens): delete it, or give this run its own --cache-dir')


def _sources(files: Sequence[str]) -> List[Dict[str, Any]]:
    out = []
    for path in files:
        st = os.stat(path)
        out.append({'path': os.path.abspath(path), 'size': st.st_size, 'mtime_ns': st.st_mtime_ns})
    return out


def build_cache(spec: CorpusSpec, tokenizer, *, cache_path: Optional[str] = None, workers: int = 1,
                pre_tokenize: bool = True, progress: bool = True, force: bool = False) -> PreprocessSummary:
    """Tokenise ``spec`` into its cache (``cache_path``, default :func:`cache_path_for`) and return the summary.

    ``workers`` <= 1 tokenises in this process; more starts that many worker processes.  An existing cache is
    kept unless ``force``.  Raises :class:`CorpusError` for configuration problems and
    :class:`PreprocessError` when the run fails; either way no cache appears under the real name."""
    path = cache_path or cache_path_for(spec, tokenizer, pre_tokenize)
    if is_lazy_dir(path) and not force:  # reused even when the raw inputs are gone
        # A cache whose inputs changed since it was built is never used: it is rebuilt (also the way
        # out of an empty corpus once its file is fixed).
        reason = stale_reason(path, spec)
        if reason is None:
            _check_existing(path, tokenizer, pre_tokenize)
            return _summary_of_existing(spec.name, path)
        print(f'corpus {spec.name!r}: its inputs changed since the cache {path} was built ({reason}); '
              'rebuilding the cache', file=sys.stderr, flush=True)
        force = True
    reader = spec.make_reader()
    reader.check(tokenizer, pre_tokenize)
    files = spec.files()
    summary = PreprocessSummary(spec.name, path, files=len(files), workers=max(1, int(workers)))

    parent = os.path.dirname(os.path.abspath(path)) or '.'
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise PreprocessError(f'cannot create the cache directory {parent}: {exc}') from None
    tmp = f'{os.path.abspath(path)}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}'
    writer = None
    executor = None
    started = time.perf_counter()
    skipped = collections.Counter()
    filtered = collections.Counter()
    tokens = {f: 0 for f in reader.fields}
    total_bytes = sum(os.path.getsize(f) for f in files)
    bar = None
    try:
        try:
            writer = LazyWriter(tmp, reader.fields, dtype='int32' if pre_tokenize else 'utf8')
        except OSError as exc:
            raise PreprocessError(f'cannot write the cache {tmp}: {exc}') from None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=total_bytes, unit='B', unit_scale=True, desc=f'preprocess {spec.name}',
                       file=sys.stderr, dynamic_ncols=True)

        def consume(index: int, nbytes: int, result: Optional[_ChunkResult]) -> None:
            if result is None:  # progress only
                if bar is not None:
                    bar.update(nbytes)
                return
            if result.fatal is not None:
                raise CorpusError(result.fatal)
            _write_chunk(writer, result)
            summary.documents += result.documents
            for field, values in result.lens.items():
                tokens[field] += sum(values)
            for lineno, reason in result.skipped:
                skipped[reason] += 1
                if len(summary.skipped_at) < MAX_LOCATIONS:
                    summary.skipped_at.append((files[index], lineno, reason))
            filtered.update(result.filtered)
            if bar is not None:
                bar.update(nbytes)

        if summary.workers <= 1:
            _init_worker(reader, tokenizer, pre_tokenize, in_worker=False)
            try:
                for index, nbytes, task in _chunks(reader, files, summary):
                    consume(index, nbytes, None if task is None else _process_chunk(task))
            finally:
                _STATE.clear()
        else:
            executor = cf.ProcessPoolExecutor(summary.workers, mp_context=_mp_context(), initializer=_init_worker,
                                              initargs=(reader, tokenizer, pre_tokenize))
            pending: collections.deque = collections.deque()
            limit = 2 * summary.workers + 2  # bounded look-ahead: memory stays flat on huge corpora
            for index, nbytes, task in _chunks(reader, files, summary):
                pending.append((index, nbytes, None if task is None else executor.submit(_process_chunk, task)))
                while len(pending) >= limit:
                    i, n, fut = pending.popleft()
                    consume(i, n, None if fut is None else fut.result())
            while pending:
                i, n, fut = pending.popleft()
                consume(i, n, None if fut is None else fut.result())
        summary.skipped = dict(skipped)
        summary.filtered = dict(filtered)
        summary.tokens = tokens
        meta = {'corpus': spec.name, 'reader': spec.reader, 'pre_tokenize': bool(pre_tokenize),
                'tokenizer': tokenizer_fingerprint(tokenizer) if pre_tokenize else None,
                'sources': _sources(files), 'summary': summary.to_json()}
        writer.close(meta)
        writer = None
        _publish(tmp, path, force)
    except BrokenProcessPool:
        raise PreprocessError(f'a preprocessing worker process died (out of memory?) while building {path}; '
                              'nothing was written under that name') from None
    finally:
        if bar is not None:
            bar.close()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if writer is not None:
            writer.abort()
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    summary.seconds = time.perf_counter() - started
    return summary


def _publish(tmp: str, path: str, force: bool) -> None:
    """Rename the finished temporary cache into place (atomic on one filesystem)."""
    if os.path.exists(path):
        if not force and is_lazy_dir(path):  # someone else finished first: keep theirs
            return
        old = f'{path}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}'
        os.rename(path, old)
        try:
            os.rename(tmp, path)
        finally:
            shutil.rmtree(old, ignore_errors=True)
        return
    try:
        os.rename(tmp, path)
    except OSError:
        if not is_lazy_dir(path):  # a concurrent builder's finished cache is fine; anything else is an error
            raise


def _summary_of_existing(name: str, path: str) -> PreprocessSummary:
    summary = PreprocessSummary(name, path, reused=True)
    try:
        corpus = LazyCorpus(path)
    except LazyFormatError as exc:
        raise CorpusError(f'cache {path} is unreadable ({exc}): delete it to rebuild') from None
    summary.documents = len(corpus)
    summary.tokens = {f: int(a.lens.sum()) for f, a in corpus.fields.items()}
    return summary


def stale_reason(path: str, spec: CorpusSpec) -> Optional[str]:
    """Why the cache at ``path`` no longer matches the inputs of ``spec`` (a file edited, added or
    removed since it was built), or None when it matches or cannot be compared (built-in corpora, an
    original-format cache without sources, inputs no longer present: the cache is then all there is)."""
    meta = read_meta(path)
    if spec.builtin or not meta or 'sources' not in meta or not all(os.path.exists(p) for p in spec.paths):
        return None
    try:
        now = {s['path']: (s['size'], s['mtime_ns']) for s in _sources(spec.files())}
    except (OSError, CorpusError):
        return None
    before = {s['path']: (s['size'], s['mtime_ns']) for s in meta['sources']}
    if now == before:
        return None
    changed = sorted(p for p in now.keys() & before.keys() if now[p] != before[p])
    added, removed = sorted(now.keys() - before.keys()), sorted(before.keys() - now.keys())
    parts = [f'{label} {", ".join(files[:3])}' for label, files in
             (('changed:', changed), ('added:', added), ('removed:', removed)) if files]
    return '; '.join(parts)


def ensure_cache(spec: CorpusSpec, tokenizer, *, workers: Optional[int] = None, pre_tokenize: bool = True,
                 progress: bool = False, echo=None) -> str:
    """The path of ``spec``'s cache, building it first when missing; checks the tokenizer of an existing one."""
    path = cache_path_for(spec, tokenizer, pre_tokenize)
    if is_lazy_dir(path) and stale_reason(path, spec) is None:
        _check_existing(path, tokenizer, pre_tokenize)
        return path
    if workers is None:
        workers = int(os.environ.get('GLM_PREPROCESS_WORKERS', min(8, os.cpu_count() or 1)))
    summary = build_cache(spec, tokenizer, cache_path=path, workers=workers, pre_tokenize=pre_tokenize,
                          progress=progress)
    if echo is not None:
        echo(summary.format())
    return path
