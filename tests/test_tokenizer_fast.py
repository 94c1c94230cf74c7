"""The fast (chunk cache + Rust) path gives exactly the reference (pure Python) path's ids and tokens: on
samples of the English corpora, cold and warm, on generated text, and on every character of a wide Unicode
sweep; and the tables and character verdicts its shortcuts rest on agree with the reference. Each check
runs twice: with the compiled helper (native.py, `_native.c`) in front, and with the Python fast path alone.

`python bench/bench_tokenizers.py --all-corpora` compares the two paths over the whole of every English
corpus; these tests take a sample so that they stay fast."""

import json
import os
import random
import shutil
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from data_utils.tokenizers import make_tokenizer

pytest.importorskip('tokenizers', reason='the fast path needs the Hugging Face tokenizers library')

SHARED = Path(os.environ.get('GLM_SHARED_DIR') or Path(__file__).resolve().parents[2] / 'shared')
CORPORA = SHARED / 'assets' / 'corpora'
VOCAB_DIR = SHARED / 'assets' / 'vocab'
ENGLISH = ['en_moby_dick.jsonl', 'en_austen_chapters.jsonl', 'en_sotu.jsonl', 'en_kjv_verses.jsonl']

CONFIGS = [('BertWordPieceTokenizer', 'bert-large-uncased'), ('GPT2BPETokenizer', 'gpt2'),
           ('GPT2BPETokenizer', 'roberta')]


def native_expected() -> bool:
    """Whether the compiled helper must build here: a C compiler and the Python headers (CI has both)."""
    compiler = (sysconfig.get_config_var('CC') or 'cc').split()[0]
    return shutil.which(compiler) is not None and (Path(sysconfig.get_paths()['include']) / 'Python.h').is_file()


def set_native(tokenizer, use_native: bool):
    """Keep or drop the compiled helper of a fast tokenizer (dropped: the Python fast path alone)."""
    backend = tokenizer.text_tokenizer
    if not use_native:
        backend._native = None
    elif backend._native is None:
        assert not native_expected(), 'a C compiler and Python.h are here, but the compiled helper did not build'
        pytest.skip('no C compiler or Python headers: the compiled helper cannot be built here')
    return tokenizer


@pytest.fixture(scope='module', params=[(c, n) for c in CONFIGS for n in (True, False)],
                ids=lambda p: p[0][1] + ('-native' if p[1] else '-python'))
def pair(request):
    """(reference, fast) tokenizers of one configuration, with every command token; the fast one with or
    without the compiled helper."""
    (tokenizer_type, model_type), use_native = request.param
    if model_type == 'roberta' and not (VOCAB_DIR / 'roberta-vocab.json').is_file():
        pytest.skip(f'roberta-vocab.json is not shipped and {VOCAB_DIR} does not have it')
    kwargs = dict(add_block_symbols=True, add_task_mask=True, add_decoder_mask=True, tokenizer_path=str(VOCAB_DIR))
    ref = make_tokenizer(tokenizer_type, model_type, fast=False, **kwargs)
    fast = set_native(make_tokenizer(tokenizer_type, model_type, fast=True, **kwargs), use_native)
    assert (ref.backend, fast.backend) == ('reference', 'fast')
    return ref, fast


def corpus_sample(name, n_docs=12, max_chars=4000):
    """A deterministic sample of documents (KJV: verses grouped into chapters), each cut to max_chars."""
    path = CORPORA / name
    if not path.is_file():
        pytest.skip(f'{path} not available')
    rows = [json.loads(line) for line in path.read_text(encoding='utf-8').splitlines()]
    if name == 'en_kjv_verses.jsonl':
        chapters = {}
        for row in rows:
            chapters.setdefault((row['book'], row['chapter']), []).append(row['text'])
        docs = [' '.join(v) for v in chapters.values()]
    else:
        docs = [row['text'] for row in rows]
    picked = random.Random(1234).sample(docs, min(n_docs, len(docs)))
    return [d[:max_chars] for d in picked]


def fresh_fast(pair):
    """A new fast tokenizer like the pair's (its chunk and piece caches empty)."""
    ref, fast = pair
    tokenizer = make_tokenizer(type(ref).__name__, ref.model_type, fast=True, add_block_symbols=True,
                               add_task_mask=True, add_decoder_mask=True, tokenizer_path=str(VOCAB_DIR))
    backend = set_native(tokenizer, fast.text_tokenizer._native is not None).text_tokenizer
    assert len(backend._cache) <= 6  # '' and BERT's five literal specials ([CLS], ...)
    assert backend._native is None or backend._native_module.cache_size(backend._native) == 0
    return tokenizer


@pytest.mark.parametrize('corpus', ENGLISH)
def test_corpus_samples(pair, corpus):
    """Cold (a fresh tokenizer: every chunk new) and warm (the same documents again) give the reference ids."""
    ref, _ = pair
    fast = fresh_fast(pair)
    docs = corpus_sample(corpus)
    expected = [ref.EncodeAsIds(doc).tokenization for doc in docs]
    assert [fast.EncodeAsIds(doc).tokenization for doc in docs] == expected
    assert [fast.EncodeAsIds(doc).tokenization for doc in docs] == expected
    assert fast.EncodeAsTokens(docs[0]).tokenization == ref.EncodeAsTokens(docs[0]).tokenization


def test_ascii_agrees(pair):
    _, fast = pair
    assert fast.text_tokenizer.ascii_ok


# Text built from pieces that stress the chunking and the Unicode tables: runs of odd white space, control
# characters, command strings, accents, CJK, astral characters, lone surrogates.
PIECES = st.sampled_from([' ', '  ', '\n', '\n ', ' \n', '\t', '\r\n', '\x0b', '\x0c', '\x1c', '\x85', '\xa0',
                          '\u2028', '\u3000', '\x00', '\u200b', '[MASK]', '[CLS]', '<|endoftext|>', '[gMASK]',
                          "'s", "'ll", 'ΣΑΣ', 'İ', 'é', 'e\u0301', 'ß', 'ﬁ', '中文', '１２', '½', 'x²', '😀', '\ud800',
                          'Hello', 'world', '123', '...', '--', '$', '^'])
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=12).map(''.join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_generated_text(pair, text):
    ref, fast = pair
    assert fast.EncodeAsIds(text).tokenization == ref.EncodeAsIds(text).tokenization
    assert fast.EncodeAsTokens(text).tokenization == ref.EncodeAsTokens(text).tokenization
    # The text tokenizer alone (no command splitting, no whitespace-only shortcut).
    assert fast.text_tokenizer.encode_ids(text) == ref.text_tokenizer.encode_ids(text)


# Words for the splitting rules the fast path applies itself: ASCII of every kind (control characters
# included), and the non-ASCII characters next to it in English text -- punctuation, quotes, dashes, CJK
# (stand-alone in BERT, "other" in GPT-2), and letters, accents, digits and spaces (which are not).
WORD_CHARS = st.sampled_from(list(map(chr, range(128))) + list('—–“”‘’…«»¿¡·§¶†‰€£¥©®°±×÷。、中文々'
                                                               'éÉñßİΣσςﬁǅ\u0301\u0300２½²\xa0\u2009\u200b\ufffd'))
WORDS = st.lists(st.text(WORD_CHARS, min_size=1, max_size=12), min_size=1, max_size=30).map(' '.join)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(WORDS, min_size=1, max_size=4))
def test_generated_words_cold(pair, texts):
    """A fresh tokenizer: every chunk new (the fast path's own splitting rules, the Rust model, the Rust
    pipeline, the reference), then the same texts again from the cache."""
    ref, _ = pair
    fast = fresh_fast(pair)
    expected = [ref.text_tokenizer.encode_ids(t) for t in texts]
    assert [fast.text_tokenizer.encode_ids(t) for t in texts] == expected
    assert [fast.text_tokenizer.encode_ids(t) for t in texts] == expected


@pytest.mark.parametrize('use_native', [True, False], ids=['native', 'python'])
def test_cased_bert_words(use_native):
    """Without lower-casing (a '-cased' model type) accents and case stay: the splitting rules must too."""
    kwargs = dict(add_block_symbols=True)
    ref = make_tokenizer('BertWordPieceTokenizer', 'bert-base-cased', fast=False, **kwargs)
    fast = set_native(make_tokenizer('BertWordPieceTokenizer', 'bert-base-cased', fast=True, **kwargs), use_native)
    assert not fast.text_tokenizer.lower
    text = 'Call me Ishmael. Some years ago—never mind how long precisely—“Café” NAÏVE ΣΑΣ 中文 x²'
    assert fast.EncodeAsIds(text).tokenization == ref.EncodeAsIds(text).tokenization


def test_simple_character_verdicts(pair):
    """Which non-ASCII characters the fast path's own splitting rules take (the rest go to Rust)."""
    _, fast = pair
    backend = fast.text_tokenizer
    if fast.model_type.startswith('bert'):
        simple, not_simple = '—“”…¿。、中', 'éßΣ²\xa0\u200b\ufffd\u0301'
    else:
        simple, not_simple = '—“”…¿。、\ud800', 'é中ßΣ２²\xa0\u2009'
    assert [c for c in simple if not backend._is_simple(c)] == []
    assert [c for c in not_simple if backend._is_simple(c)] == []


def test_whole_token_table(pair):
    """A pre-token spelled like one of the `_whole` entries is that single token: for BPE, exactly the
    entries the reference BPE leaves whole (checked over the whole vocabulary)."""
    ref, fast = pair
    backend = fast.text_tokenizer
    if fast.model_type.startswith('bert'):
        assert backend._whole == {t: i for t, i in ref.vocab.items() if len(t) <= 100}
        return
    bpe = ref.text_tokenizer.bpe
    expected = {token: idx for token, idx in ref.encoder.items() if bpe(token) == [token]}
    assert backend._whole == expected
    # Only the special entries: <|endoftext|>, and RoBERTa's <s>, <pad>, </s>, <unk>, <mask>, madeupword000N
    assert all(t[0] == '<' or t.startswith('madeupword') for t in set(ref.encoder) - set(expected))


@pytest.mark.parametrize('text', ['a  b', ' a b ', '  lead', 'trail  ', 'x\n y', 'x \ny', 'a\x1cb c', 'a\x85 b',
                                  '\x0bword', 'tab\t word', 'end.\n\nNew', "it's  'll", '[MASK]  [MASK]. [MASK]',
                                  '[MASK]中文', '中[SEP]', 'x[MASK]中', '[CLS]—', '[MASK]。'])
def test_chunk_boundaries(pair, text):
    ref, fast = pair
    assert fast.text_tokenizer.encode_ids(text) == ref.text_tokenizer.encode_ids(text)
    assert fast.text_tokenizer.tokenize(text) == ref.text_tokenizer.tokenize(text)


def test_unicode_sweep(pair):
    """Every code point below U+3400 and every 53rd above, each between letters and in pairs."""
    ref, fast = pair
    if ref.model_type == 'roberta':
        pytest.skip('same pre-tokenizer and character classes as gpt2')
    points = [cp for cp in list(range(0x3400)) + list(range(0x3400, 0x110000, 53)) if not 0xD800 <= cp < 0xE000]
    for start in range(0, len(points), 64):
        block = [chr(cp) for cp in points[start:start + 64]]
        text = ' '.join(f'a{c}b {c}{c}' for c in block)
        assert fast.text_tokenizer.encode_ids(text) == ref.text_tokenizer.encode_ids(text), block


def test_compiled_helper_builds_where_it_can(tmp_path, monkeypatch):
    """Where a C compiler and the Python headers exist (CI), the helper builds; with GLM_TOKENIZER_NATIVE=0
    it is not tried; a build that cannot happen leaves the Python fast path, with the same ids."""
    from data_utils.tokenizers import native
    if not native_expected():
        pytest.skip('no C compiler or Python headers here')
    monkeypatch.setattr(native, '_loaded', {})
    monkeypatch.setenv(native.NATIVE_DIR_ENV, str(tmp_path / 'build'))
    module = native.load()
    assert module is not None and list((tmp_path / 'build').glob('*/_glm_tokenizers_native*'))
    monkeypatch.setattr(native, '_loaded', {})
    monkeypatch.setenv(native.NATIVE_ENV, '0')
    assert native.load() is None
    monkeypatch.delenv(native.NATIVE_ENV)
    monkeypatch.setattr(native, '_loaded', {})
    monkeypatch.setattr(native, 'SOURCE', tmp_path / 'missing.c')
    assert native.load() is None  # warned, not raised
    tokenizer = make_tokenizer('BertWordPieceTokenizer', 'bert-large-uncased', fast=True)
    assert tokenizer.text_tokenizer._native is None
    reference = make_tokenizer('BertWordPieceTokenizer', 'bert-large-uncased', fast=False)
    assert tokenizer.EncodeAsIds('Call me Ishmael.').tokenization == reference.EncodeAsIds('Call me Ishmael.').tokenization


def test_compiled_helper_cache_and_fallback():
    """The helper remembers every chunk (its own and the Python path's), can be emptied, and hands the
    Python path whole texts it does not cut itself (BERT: characters it deletes instead of splitting on)."""
    tokenizer = make_tokenizer('BertWordPieceTokenizer', 'bert-large-uncased', fast=True)
    backend = set_native(tokenizer, True).text_tokenizer
    module, handle = backend._native_module, backend._native
    seen = []
    text = 'Whale, whale! caf\u00e9 whale'
    ids = module.encode(handle, text, lambda chunk: seen.append(chunk) or backend._encode_ids_python(chunk))
    assert ids == make_tokenizer('BertWordPieceTokenizer', 'bert-large-uncased', fast=False).text_tokenizer.encode_ids(text)
    assert seen == ['caf\u00e9'] and module.cache_size(handle) == 4  # Whale, / whale! / café / whale
    module.clear(handle)
    assert module.cache_size(handle) == 0
    assert module.encode(handle, 'a\x0bb', backend._encode_ids_python) is None
    with pytest.raises(ZeroDivisionError):
        module.encode(handle, 'na\u00efve', lambda chunk: 1 / 0)


def test_pickled_tokenizer_builds_its_own_helper(pair):
    """A fast tokenizer sent to a spawned worker is pickled: the copy leaves the C encoder behind and, when
    the original had one, builds its own (an empty chunk cache); the ids stay the reference's."""
    import pickle
    ref, fast = pair
    text = 'Call me Ishmael. Some years ago—never mind how long precisely—having little money.'
    fast.EncodeAsIds(text)
    copy = pickle.loads(pickle.dumps(fast))
    backend = copy.text_tokenizer
    assert (backend._native is None) == (fast.text_tokenizer._native is None)
    assert backend._native is None or backend._native_module.cache_size(backend._native) == 0
    assert copy.EncodeAsIds(text).tokenization == ref.EncodeAsIds(text).tokenization


@pytest.mark.parametrize('text', ['a' * 300, 'x ' + 'ab1' * 120 + ' y', 'short ' + '!' * 400 + ' words', ' ' * 300 + 'z'])
def test_long_runs(pair, text):
    """Runs longer than the compiled helper's BPE limit (256 bytes) and than BERT's word limit (100)."""
    ref, fast = pair
    assert fast.text_tokenizer.encode_ids(text) == ref.text_tokenizer.encode_ids(text)
