"""The lazy on-disk corpus cache (spec section 6.2): write once, memory-map, read any record by index.

Layout of a cache directory ``X.lazy/`` (one payload/lengths pair per field)::

    X.lazy/
        prompt            payload: records of the field concatenated
        prompt.len.npy    per-record lengths, int64 numpy array (np.save)
        text
        text.len.npy
        meta.json         format version, fields, payload type, tokenizer fingerprint, build summary

Pre-tokenised payloads are raw little-endian **int32** token ids (lengths in tokens); raw-text payloads
(``--no-pre-tokenize``) are UTF-8 (lengths in bytes).  Fields are ``prompt``/``text`` (prompt readers) or
``text``/``mask`` (``wikipedia-key``; ``mask`` holds alternating 0/1 run lengths).

Reading also accepts the original GLM's caches: lengths in ``<field>.len.pkl`` (a pickled list) and no
``meta.json`` (the payload type is then inferred from the payload size: 4 bytes per length unit means int32).
Differences from the original: lengths are stored as ``.npy`` rather than pickle (loads without unpickling,
memory-maps); no lock is needed (reads of a read-only memory map are thread- and fork-safe).
"""

from __future__ import annotations

import json
import os
import pickle
from array import array
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Union

import numpy as np

__all__ = ['LazyArray', 'LazyCorpus', 'LazyWriter', 'LazyFormatError', 'META_FILE', 'FORMAT_NAME',
           'FORMAT_VERSION', 'is_lazy_dir', 'read_meta']

META_FILE = 'meta.json'
FORMAT_NAME = 'glm-lazy'
FORMAT_VERSION = 1
INT32 = np.dtype('<i4')


class LazyFormatError(Exception):
    """A cache directory that cannot be read (missing files, inconsistent sizes)."""


def read_meta(directory: str) -> Optional[Dict[str, Any]]:
    """The cache's ``meta.json``, or None for an original-format cache without one."""
    path = os.path.join(directory, META_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _lens_path(directory: str, field: str) -> Optional[str]:
    for suffix in ('.len.npy', '.len.pkl'):
        path = os.path.join(directory, field + suffix)
        if os.path.isfile(path):
            return path
    return None


def is_lazy_dir(directory: str) -> bool:
    """True when ``directory`` holds a complete cache (a ``text`` field with its lengths)."""
    return os.path.isdir(directory) and os.path.isfile(os.path.join(directory, 'text')) and \
        _lens_path(directory, 'text') is not None


def _load_lens(path: str) -> np.ndarray:
    if path.endswith('.npy'):
        return np.load(path, mmap_mode=None).astype(np.int64, copy=False)
    with open(path, 'rb') as f:
        return np.asarray(pickle.load(f), dtype=np.int64)


class LazyArray:
    """One field of a cache: ``len(a)`` records, ``a[i]`` the i-th one (an int32 numpy view for token
    payloads, a ``str`` for text payloads), ``a.lens[i]`` its length.

    ``in_memory`` reads the payload into RAM instead of memory-mapping it (``--no-lazy-loader``); ``limit``
    keeps only the first ``limit`` records.  Pickling (to DataLoader workers) sends only the paths; the
    memory map is reopened on first access in the receiving process."""

    def __init__(self, directory: str, field: str, *, dtype: Optional[str] = None, in_memory: bool = False,
                 limit: Optional[int] = None):
        self.directory = directory
        self.field = field
        self.path = os.path.join(directory, field)
        lens_path = _lens_path(directory, field)
        if lens_path is None or not os.path.isfile(self.path):
            raise LazyFormatError(f'{directory}: field {field!r} is missing (want {field} and {field}.len.npy '
                                  f'or {field}.len.pkl)')
        self.lens = _load_lens(lens_path)
        if limit is not None:
            self.lens = self.lens[:limit]
        self.ends = np.cumsum(self.lens, dtype=np.int64)
        self.starts = self.ends - self.lens
        total = int(self.ends[-1]) if len(self.ends) else 0
        size = os.path.getsize(self.path)
        if dtype is None:  # original caches: infer from the payload size
            full = int(_load_lens(lens_path).sum()) if limit is not None else total
            dtype = 'int32' if size == 4 * full and full > 0 else 'utf8'
        if dtype not in ('int32', 'utf8'):
            raise LazyFormatError(f'{directory}: unknown payload type {dtype!r}')
        self.dtype = dtype
        itemsize = 4 if dtype == 'int32' else 1
        if size < itemsize * total:
            raise LazyFormatError(f'{self.path}: payload has {size} bytes, lengths need {itemsize * total}')
        self.in_memory = in_memory
        self._data = None

    @property
    def is_array(self) -> bool:
        """True for token payloads (the original's ``is_array``/pre-tokenised flag)."""
        return self.dtype == 'int32'

    def _open(self):
        np_dtype = INT32 if self.is_array else np.uint8
        count = int(self.ends[-1]) if len(self.ends) else 0
        if count == 0:
            self._data = np.empty(0, dtype=np_dtype)
        elif self.in_memory:
            self._data = np.fromfile(self.path, dtype=np_dtype, count=count)
        else:
            self._data = np.memmap(self.path, dtype=np_dtype, mode='r', shape=(count,))
        return self._data

    @property
    def data(self) -> np.ndarray:
        """The whole payload (memory-mapped unless ``in_memory``)."""
        return self._data if self._data is not None else self._open()

    def __getstate__(self):
        state = dict(self.__dict__)
        if not self.in_memory:
            state['_data'] = None
        return state

    def __len__(self) -> int:
        return len(self.lens)

    def get_text_len(self, idx: int) -> int:
        return int(self.lens[idx])

    def __getitem__(self, idx: Union[int, slice]):
        if isinstance(idx, slice):
            return [self[i] for i in range(*idx.indices(len(self)))]
        idx = int(idx)
        if idx < 0:
            idx += len(self)
        if not 0 <= idx < len(self):
            raise IndexError(f'record {idx} out of range for {len(self)} records')
        chunk = self.data[int(self.starts[idx]):int(self.ends[idx])]
        if self.is_array:
            return chunk
        return chunk.tobytes().decode('utf-8')


class LazyCorpus:
    """A whole cache directory: ``fields`` maps field names to :class:`LazyArray`; ``kind`` is ``'prompt'``
    (fields prompt/text) or ``'key'`` (text/mask); ``meta`` is ``meta.json`` (None for original caches)."""

    def __init__(self, directory: str, *, in_memory: bool = False, limit_fraction: Optional[float] = None):
        if not os.path.isdir(directory):
            raise LazyFormatError(f'cache {directory} does not exist')
        self.directory = directory
        self.meta = read_meta(directory)
        if self.meta is not None and self.meta.get('format') != FORMAT_NAME:
            raise LazyFormatError(f'{directory}/{META_FILE}: not a {FORMAT_NAME} cache')
        if self.meta is not None and int(self.meta.get('version', 0)) > FORMAT_VERSION:
            raise LazyFormatError(f'{directory}: cache format version {self.meta.get("version")} is newer than '
                                  f'this code reads ({FORMAT_VERSION})')
        if self.meta is not None:
            names = list(self.meta['fields'])
        elif _lens_path(directory, 'mask') is not None:
            names = ['text', 'mask']
        else:
            names = ['prompt', 'text']
        self.kind = 'key' if 'mask' in names else 'prompt'
        dtype = self.meta.get('dtype') if self.meta else None
        limit = None
        if limit_fraction is not None:
            n = len(_load_lens(_lens_path(directory, 'text')))
            limit = int(n * limit_fraction)
        self.fields: Dict[str, LazyArray] = {}
        for name in names:
            # the mask field of key caches always holds int32 run lengths
            self.fields[name] = LazyArray(directory, name, dtype='int32' if name == 'mask' else dtype,
                                          in_memory=in_memory, limit=limit)
        sizes = {len(a) for a in self.fields.values()}
        if len(sizes) != 1:
            raise LazyFormatError(f'{directory}: fields have different record counts {sorted(sizes)}')

    @property
    def is_array(self) -> bool:
        return self.fields['text'].is_array

    def __len__(self) -> int:
        return len(self.fields['text'])

    def __getitem__(self, field: str) -> LazyArray:
        return self.fields[field]


class LazyWriter:
    """Writes a cache directory record by record (or chunk by chunk); :meth:`close` writes the lengths and
    ``meta.json``.  The directory must not exist (the preprocessing command writes into a temporary
    directory and renames it when complete)."""

    def __init__(self, directory: str, fields: Sequence[str], *, dtype: str = 'int32'):
        if dtype not in ('int32', 'utf8'):
            raise ValueError(f'dtype must be int32 or utf8, not {dtype!r}')
        os.makedirs(directory)
        self.directory = directory
        self.fields = list(fields)
        self.dtype = dtype
        self._files = {f: open(os.path.join(directory, f), 'wb') for f in self.fields}
        self._lens = {f: array('q') for f in self.fields}
        self.count = 0

    def _payload(self, field: str, value) -> bytes:
        if self.dtype == 'utf8' and field != 'mask':
            if not isinstance(value, str):
                raise TypeError(f'field {field!r}: text payload expected, got {type(value).__name__}')
            return value.encode('utf-8')
        arr = np.asarray(value, dtype=np.int64)
        if arr.size and (arr.min() < -2 ** 31 or arr.max() >= 2 ** 31):
            raise ValueError(f'field {field!r}: token id out of int32 range')
        return arr.astype(INT32).tobytes()

    def add(self, record: Mapping[str, Any]) -> None:
        """Append one record: ``{field: token ids (or str for text payloads)}``."""
        for field in self.fields:
            payload = self._payload(field, record[field])
            self._files[field].write(payload)
            self._lens[field].append(len(payload) // (1 if self.dtype == 'utf8' and field != 'mask' else 4))
        self.count += 1

    def add_encoded(self, field: str, payload: bytes, lens: Iterable[int]) -> None:
        """Append already-encoded payload bytes and their record lengths for one field (chunked writes; the
        caller keeps the fields' record counts equal)."""
        self._files[field].write(payload)
        self._lens[field].extend(int(n) for n in lens)

    def close(self, meta: Optional[Mapping[str, Any]] = None) -> None:
        counts = {len(v) for v in self._lens.values()}
        if len(counts) != 1:
            raise LazyFormatError(f'fields have different record counts {sorted(counts)}')
        self.count = counts.pop()
        for field in self.fields:
            f = self._files[field]
            f.flush()
            os.fsync(f.fileno())
            f.close()
            np.save(os.path.join(self.directory, field + '.len.npy'), np.frombuffer(self._lens[field], np.int64))
        full_meta = {'format': FORMAT_NAME, 'version': FORMAT_VERSION, 'fields': self.fields, 'dtype': self.dtype,
                     'records': self.count}
        full_meta.update(meta or {})
        with open(os.path.join(self.directory, META_FILE), 'w', encoding='utf-8') as f:
            json.dump(full_meta, f, indent=1, sort_keys=True, ensure_ascii=False)
            f.write('\n')
            f.flush()
            os.fsync(f.fileno())

    def abort(self) -> None:
        for f in self._files.values():
            try:
                f.close()
            except OSError:
                pass
