"""Document datasets, the split and BlockDataset (data_utils/datasets.py)."""

import random

import numpy as np
import pytest

from data_utils.corpora import CorpusRegistry
from data_utils.datasets import (BlockDataset, ConcatDataset, KeyDataset, PromptDataset, SplitDataset,
                                 load_corpus_dataset, parse_split, should_split, split_ds)
from data_utils.lazy import LazyWriter
from data_utils.preprocess import build_cache
from tests.data.helpers_data import ToyTokenizer, sentences, write_jsonl

TOK = ToyTokenizer()
ENC, EOS = 1, 0


def _docs_dataset(tmp_path, texts, prompts=None):
    d = str(tmp_path / 'docs.lazy')
    w = LazyWriter(d, ['prompt', 'text'])
    for i, t in enumerate(texts):
        w.add({'prompt': TOK.EncodeAsIds(prompts[i]).tokenization if prompts else [],
               'text': TOK.EncodeAsIds(t).tokenization})
    w.close()
    return load_corpus_dataset(d)


def test_prompt_dataset_items_and_lengths(tmp_path):
    ds = _docs_dataset(tmp_path, ['abc', 'de'], prompts=['Q', ''])
    assert isinstance(ds, PromptDataset) and ds.is_lazy and len(ds) == 2
    assert ds[0] == {'tokens': TOK.EncodeAsIds('Qabc').tokenization, 'loss_masks': [0, 1, 1, 1]}
    assert ds.get_text_len(0) == 4 and ds.text_lengths().tolist() == [4, 2]


def test_key_dataset_expands_mask_runs(tmp_path):
    d = str(tmp_path / 'k.lazy')
    w = LazyWriter(d, ['text', 'mask'])
    w.add({'text': [7, 8, 9, 10, 11], 'mask': [2, 3]})
    w.close()
    ds = load_corpus_dataset(d)
    assert isinstance(ds, KeyDataset)
    assert ds[0] == {'tokens': [7, 8, 9, 10, 11], 'loss_masks': [0, 0, 1, 1, 1]}


def test_text_cache_is_tokenised_on_the_fly(tmp_path):
    spec = CorpusRegistry().resolve(write_jsonl(tmp_path / 'c.jsonl', [{'prompt': 'p', 'text': 'xy'}]))
    build_cache(spec, TOK, cache_path=str(tmp_path / 'c.lazy'), pre_tokenize=False, progress=False)
    ds = load_corpus_dataset(str(tmp_path / 'c.lazy'), TOK)
    assert ds[0] == {'tokens': TOK.EncodeAsIds('pxy').tokenization, 'loss_masks': [0, 1, 1]}


def test_parse_split():
    assert parse_split('949,50,1') == [0.949, 0.05, 0.001]
    assert parse_split('8/1/1') == [0.8, 0.1, 0.1]
    assert parse_split('0.9') == pytest.approx([0.9, 0.1, 0.0])
    assert parse_split('949,50,1', zero_valid=True) == pytest.approx([949 / 950, 0, 1 / 950])
    assert not should_split(parse_split('1000,0,0')) and should_split(parse_split('1000,1,1'))
    with pytest.raises(ValueError):
        parse_split('0,0,0')


def test_split_is_deterministic_disjoint_and_covering(tmp_path):
    ds = list(range(1000))
    parts = split_ds(ds, parse_split('949,50,1'))
    again = split_ds(ds, parse_split('949,50,1'))
    assert [len(p) for p in parts] == [949, 50, 1]
    for a, b in zip(parts, again):
        assert a.split_inds.tolist() == b.split_inds.tolist()
    perm = np.arange(1000)
    np.random.RandomState(1234).shuffle(perm)
    assert np.concatenate([p.split_inds for p in parts]).tolist() == perm.tolist()
    assert parts[2][0] == perm[999]
    # fractional remainders carry over; a zero proportion gives None
    sizes = [None if p is None else len(p) for p in split_ds(list(range(10)), [0.55, 0.45, 0.0])]
    assert sizes == [5, 5, None]
    # persisted permutation
    split_ds(ds, [0.5, 0.5, 0], save_splits=str(tmp_path / 's.npy'))
    loaded = split_ds(ds, [0.9, 0.1, 0], shuffle=False, load_splits=str(tmp_path / 's.npy'))
    assert loaded[0].split_inds.tolist() == perm[:900].tolist()


def test_concat_and_split_datasets_delegate_lengths(tmp_path):
    a = _docs_dataset(tmp_path, ['aa', 'b'])
    (tmp_path / 'two').mkdir()
    b = _docs_dataset(tmp_path / 'two', ['cccc'])
    cat = ConcatDataset([a, b])
    assert len(cat) == 3 and cat.text_lengths().tolist() == [2, 1, 4] and cat.get_text_len(2) == 4
    assert TOK.DecodeIds(cat[2]['tokens']) == 'cccc'
    part = SplitDataset(cat, [2, 0])
    assert part.text_lengths().tolist() == [4, 2] and TOK.DecodeIds(part[1]['tokens']) == 'aa'


# ------------------------------------------------------------------------------------------------ BlockDataset
def _corpus_texts(n=30):
    rng = random.Random(5)
    return [' '.join(sentences(rng.randint(1, 25), seed=100 + i)) for i in range(n)]


@pytest.fixture(scope='module')
def block_docs(tmp_path_factory):
    texts = _corpus_texts()
    return texts, _docs_dataset(tmp_path_factory.mktemp('block'), texts)


def _segments(sample):
    """The document pieces of a sample: split before every ENC."""
    text = sample['text'].tolist()
    starts = [i for i, t in enumerate(text) if t == ENC] + [len(text)]
    return [text[a:b] for a, b in zip(starts, starts[1:])]


@pytest.mark.parametrize('seq_length', [16, 64, 200])
def test_block_samples_are_bounded_start_with_enc_and_delimit_documents(block_docs, seq_length):
    texts, docs = block_docs
    ds = BlockDataset(docs, TOK, max_seq_len=seq_length)
    assert len(ds) == 1000 * len(texts)
    joined = '\x00'.join(texts)
    for idx in range(0, 20000, 397):
        sample = ds[idx]
        text, mask = sample['text'], sample['loss_mask']
        assert text.dtype == np.int64 and mask.dtype == np.int64
        assert 1 <= len(text) <= seq_length and len(mask) == len(text)
        assert text[0] == ENC
        segments = _segments(sample)
        for k, seg in enumerate(segments):
            body = seg[1:]
            if k < len(segments) - 1:
                assert body and body[-1] == EOS  # every document piece but the last ends with eos
            if body and body[-1] == EOS:
                body = body[:-1]
            assert EOS not in body
            assert TOK.DecodeIds(body) in joined  # a contiguous piece of one document
        assert mask.tolist() == [0 if t == ENC else 1 for t in text.tolist()]


def test_block_samples_are_deterministic_per_index(block_docs):
    texts, docs = block_docs
    a, b = BlockDataset(docs, TOK, max_seq_len=48), BlockDataset(docs, TOK, max_seq_len=48)
    for idx in (0, 1, 17, 29999):
        assert a[idx]['text'].tolist() == b[idx]['text'].tolist() == a[idx]['text'].tolist()
    assert len({tuple(a[i]['text'].tolist()) for i in range(20)}) > 15


def test_sample_one_document_and_sentence_start(block_docs):
    texts, docs = block_docs
    one = BlockDataset(docs, TOK, max_seq_len=256, sample_across_doc=False)
    for idx in range(50):
        assert one[idx]['text'].tolist().count(ENC) == 1
    # cropped samples start just after a sentence end (sentences are shorter than seq_length // 2)
    crop = BlockDataset(docs, TOK, max_seq_len=120, non_sentence_start=0.0)
    starts = []
    for idx in range(200):
        text = crop[idx]['text'].tolist()
        if ENC in text[1:]:
            continue  # packed, not cropped
        first = TOK.DecodeIds(text[1:21])
        starts.append(first.startswith(' ') or any(t.startswith(first) for t in texts))
    assert starts and all(starts)
    free = BlockDataset(docs, TOK, max_seq_len=120, non_sentence_start=1.0)
    firsts = [TOK.DecodeIds(free[i]['text'][1:3]) for i in range(200) if ENC not in free[i]['text'][1:].tolist()]
    assert sum(not f.startswith(' ') for f in firsts) > len(firsts) // 3  # mid-sentence starts happen


def _reference_item(doc_tokens, total_weights, idx, L, is_end, nss=0.0, across=True):
    """A plain-list transcription of spec section 6.3, to pin the numpy implementation."""
    r = random.Random(idx)
    rng = np.random.RandomState(seed=[r.randint(0, 2 ** 32 - 1) for _ in range(16)])

    def draw():
        pos = rng.randint(total_weights[-1])
        d = next(i for i, w in enumerate(total_weights) if w > pos)
        return list(doc_tokens[d]) + [EOS], [1] * (len(doc_tokens[d]) + 1)

    def strip(t, m, n):
        cut = len(t) - n
        if cut > 0:
            while cut < len(t) - 1 and not is_end(t[-cut - 1]):
                cut += 1
            if len(t) - cut < n // 2:
                cut = len(t) - n
            t, m = t[:-cut], m[:-cut]
        return t, m

    t, m = draw()
    if len(t) - L + 1 > 0:
        s = rng.randint(len(t) - L + 1)
        if rng.random() > nss:
            moved = 0
            if rng.random() < 0.5:
                while moved < L // 2 and s > 0 and not is_end(t[s - 1]):
                    s, moved = s - 1, moved + 1
            else:
                while moved < L // 2 and s < len(t) and not is_end(t[s - 1]):
                    s, moved = s + 1, moved + 1
        t, m = [ENC] + t[s:], [0] + m[s:]
        t, m = strip(t, m, L)
    else:
        t, m = [ENC] + t, [0] + m
        while across and len(t) < L:
            nt, nm = draw()
            nt, nm = [ENC] + nt, [0] + nm
            last = len(nt) >= L - len(t)
            nt, nm = strip(nt, nm, L - len(t))
            t, m = t + nt, m + nm
            if last:
                break
    return t, m


@pytest.mark.parametrize('L,nss,across', [(24, 0.0, True), (100, 0.3, True), (100, 0.0, False)])
def test_block_dataset_matches_a_plain_transcription_of_the_spec(block_docs, L, nss, across):
    texts, docs = block_docs
    ds = BlockDataset(docs, TOK, max_seq_len=L, non_sentence_start=nss, sample_across_doc=across)
    doc_tokens = [TOK.EncodeAsIds(t).tokenization for t in texts]
    weights = np.cumsum([len(d) for d in doc_tokens]).tolist()
    is_end = lambda tok: any(c in TOK.IdToToken(tok) for c in '.?!;:\n')  # noqa: E731
    for idx in range(0, 3000, 61):
        t, m = _reference_item(doc_tokens, weights, idx, L, is_end, nss, across)
        got = ds[idx]
        assert got['text'].tolist() == t and got['loss_mask'].tolist() == m


def test_block_dataset_needs_tokens_and_a_language_filter(tmp_path):
    with pytest.raises(ValueError):
        BlockDataset(_docs_dataset(tmp_path, ['x']), TOK, filter_english=True)
    keep_english = lambda text: 'z' not in text  # noqa: E731 - stand-in for fastText
    (tmp_path / 'f').mkdir()
    ds = BlockDataset(_docs_dataset(tmp_path / 'f', ['zzzz zzz.', 'plain words.']), TOK, max_seq_len=64,
                      sample_across_doc=False, filter_english=True, language_filter=keep_english)
    assert all(TOK.DecodeIds(ds[i]['text']) == 'plain words.' for i in range(20))
