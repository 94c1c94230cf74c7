"""The lazy cache format (data_utils/lazy.py): writer, memory-mapped reader, the original's .len.pkl caches."""

import pickle

import numpy as np
import pytest

from data_utils.lazy import LazyArray, LazyCorpus, LazyFormatError, LazyWriter, is_lazy_dir, read_meta


def test_round_trip_int32(tmp_path):
    d = str(tmp_path / 'c.lazy')
    w = LazyWriter(d, ['prompt', 'text'])
    records = [([], [5, 6, 7]), ([1, 2], [2 ** 31 - 1]), ([], [])]
    for p, t in records:
        w.add({'prompt': p, 'text': t})
    w.close({'extra': 1})
    assert is_lazy_dir(d) and read_meta(d)['extra'] == 1 and read_meta(d)['records'] == 3
    assert open(tmp_path / 'c.lazy' / 'text', 'rb').read() == np.array([5, 6, 7, 2 ** 31 - 1], '<i4').tobytes()
    corpus = LazyCorpus(d)
    assert corpus.kind == 'prompt' and corpus.is_array and len(corpus) == 3
    for i, (p, t) in enumerate(records):
        assert corpus['prompt'][i].tolist() == p and corpus['text'][i].tolist() == t
        assert corpus['text'].get_text_len(i) == len(t)
    assert isinstance(corpus['text'].data, np.memmap)
    assert corpus['text'][-3].tolist() == [5, 6, 7]
    with pytest.raises(IndexError):
        corpus['text'][3]
    # in memory, and pickled (the memory map is reopened on the other side)
    mem = LazyCorpus(d, in_memory=True)
    assert not isinstance(mem['text'].data, np.memmap) and mem['text'][0].tolist() == [5, 6, 7]
    clone = pickle.loads(pickle.dumps(corpus['text']))
    assert clone._data is None and clone[1].tolist() == [2 ** 31 - 1]


def test_text_payload_and_key_fields(tmp_path):
    d = str(tmp_path / 't.lazy')
    w = LazyWriter(d, ['prompt', 'text'], dtype='utf8')
    w.add({'prompt': '问', 'text': 'héllo'})
    w.close()
    corpus = LazyCorpus(d)
    assert not corpus.is_array and corpus['text'][0] == 'héllo' and corpus['text'].lens[0] == 6
    k = str(tmp_path / 'k.lazy')
    w = LazyWriter(k, ['text', 'mask'])
    w.add({'text': [1, 2, 3], 'mask': [1, 2]})
    w.close()
    key = LazyCorpus(k)
    assert key.kind == 'key' and key['mask'][0].tolist() == [1, 2]


def test_reads_original_pickle_lengths_without_meta(tmp_path):
    d = tmp_path / 'orig.lazy'
    d.mkdir()
    for field, values in (('prompt', [[], [9]]), ('text', [[1, 2], [3, 4, 5]])):
        flat = [v for rec in values for v in rec]
        (d / field).write_bytes(np.array(flat, '<i4').tobytes())
        (d / f'{field}.len.pkl').write_bytes(pickle.dumps([len(r) for r in values]))
    corpus = LazyCorpus(str(d))
    assert corpus.meta is None and corpus.is_array
    assert corpus['text'][1].tolist() == [3, 4, 5] and corpus['prompt'][1].tolist() == [9]
    # a raw-text original cache (no pre-tokenisation): lengths in bytes
    t = tmp_path / 'text.lazy'
    t.mkdir()
    (t / 'prompt').write_bytes(b'')
    (t / 'prompt.len.pkl').write_bytes(pickle.dumps([0, 0]))
    (t / 'text').write_bytes('abcdé'.encode())
    (t / 'text.len.pkl').write_bytes(pickle.dumps([3, 3]))
    raw = LazyCorpus(str(t))
    assert not raw.is_array and raw['text'][1] == 'dé'


def test_limit_and_errors(tmp_path):
    d = str(tmp_path / 'c.lazy')
    w = LazyWriter(d, ['prompt', 'text'])
    for i in range(9):
        w.add({'prompt': [], 'text': [i] * (i + 1)})
    w.close()
    assert len(LazyCorpus(d, limit_fraction=2 / 3)) == 6
    with pytest.raises(FileExistsError):
        LazyWriter(d, ['text'])
    (tmp_path / 'c.lazy' / 'text').write_bytes(b'\0' * 8)
    with pytest.raises(LazyFormatError, match='payload has 8 bytes'):
        LazyArray(d, 'text', dtype='int32')
    with pytest.raises(LazyFormatError, match='missing'):
        LazyArray(d, 'nosuchfield')
