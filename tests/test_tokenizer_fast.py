"""The fast (Rust, cached) path gives exactly the reference (pure Python) path's ids and tokens: on samples
of the English corpora, on generated text, and on every character of a wide Unicode sweep."""

import json
import os
import random
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


@pytest.fixture(scope='module', params=CONFIGS, ids=lambda c: c[1])
def pair(request):
    """(reference, fast) tokenizers of one configuration, with every command token."""
    tokenizer_type, model_type = request.param
    if model_type == 'roberta' and not (VOCAB_DIR / 'roberta-vocab.json').is_file():
        pytest.skip(f'roberta-vocab.json is not shipped and {VOCAB_DIR} does not have it')
    kwargs = dict(add_block_symbols=True, add_task_mask=True, add_decoder_mask=True, tokenizer_path=str(VOCAB_DIR))
    ref = make_tokenizer(tokenizer_type, model_type, fast=False, **kwargs)
    fast = make_tokenizer(tokenizer_type, model_type, fast=True, **kwargs)
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


@pytest.mark.parametrize('corpus', ENGLISH)
def test_corpus_samples(pair, corpus):
    ref, fast = pair
    for doc in corpus_sample(corpus):
        assert fast.EncodeAsIds(doc).tokenization == ref.EncodeAsIds(doc).tokenization
    doc = corpus_sample(corpus, n_docs=1)[0]
    assert fast.EncodeAsTokens(doc).tokenization == ref.EncodeAsTokens(doc).tokenization


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


@pytest.mark.parametrize('text', ['a  b', ' a b ', '  lead', 'trail  ', 'x\n y', 'x \ny', 'a\x1cb c', 'a\x85 b',
                                  '\x0bword', 'tab\t word', 'end.\n\nNew', "it's  'll", '[MASK]  [MASK]. [MASK]'])
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
