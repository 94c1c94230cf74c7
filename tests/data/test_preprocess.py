"""Preprocessing (data_utils/preprocess.py) and its command (scripts/preprocess_corpus.py): bad input,
determinism, atomicity, CLI errors."""

import filecmp
import importlib.util
import json
import os

import pytest

from data_utils import preprocess
from data_utils.corpora import READERS, CorpusError, CorpusRegistry, WikipediaReader
from data_utils.lazy import LazyCorpus, read_meta
from data_utils.preprocess import PreprocessError, build_cache, ensure_cache, tokenizer_fingerprint
from tests.data.helpers_data import ToyTokenizer, toy_corpus, write_bytes, write_jsonl

TOK = ToyTokenizer()
_SCRIPT = os.path.join(os.path.dirname(__file__), '..', '..', 'scripts', 'preprocess_corpus.py')
_SPEC = importlib.util.spec_from_file_location('preprocess_corpus', _SCRIPT)
preprocess_corpus = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(preprocess_corpus)


def _bad_corpus(tmp_path):
    write_jsonl(tmp_path / 'in' / 'a.jsonl', [{'text': 'first'}, {'prompt': 'P:', 'text': 'second'}])
    write_bytes(tmp_path / 'in' / 'b.jsonl', b'\n'.join([
        b'{"text": "ok one"}',
        b'{"text": "unterminated',          # 2 malformed JSON
        b'{"body": "no text key"}',         # 3 missing text
        b'{"text": ""}',                    # 4 empty
        b'{"text": " \\t\\n "}',            # 5 whitespace only
        b'{"text": "bad \xff\xfe bytes"}',  # 6 invalid UTF-8
        b'{"text": "BOOM"}',                # 7 the toy tokenizer raises
        b'{"text": "ok two"}']) + b'\n')
    return str(tmp_path / 'in')


def test_bad_input_is_skipped_and_counted_with_file_and_line(tmp_path):
    spec = CorpusRegistry().resolve(_bad_corpus(tmp_path))
    out = str(tmp_path / 'out.lazy')
    summary = build_cache(spec, TOK, cache_path=out, workers=1, progress=False)
    assert summary.documents == 4 and summary.files == 2 and summary.items == 10
    b = os.path.join(str(tmp_path / 'in'), 'b.jsonl')
    assert summary.skipped_at == [(b, 2, 'malformed JSON'), (b, 3, "missing 'text' key"), (b, 4, 'empty document'),
                                  (b, 5, 'empty document'), (b, 6, 'invalid UTF-8'),
                                  (b, 7, 'error: RuntimeError: toy tokenizer exploded')]
    assert summary.skipped == {'malformed JSON': 1, "missing 'text' key": 1, 'empty document': 2, 'invalid UTF-8': 1,
                               'error: RuntimeError: toy tokenizer exploded': 1}
    text = summary.format()
    assert f'{b}:6: invalid UTF-8' in text and 'skipped 6 item(s)' in text
    corpus = LazyCorpus(out)
    assert [TOK.DecodeIds(corpus['text'][i]) for i in range(4)] == ['first', 'second', 'ok one', 'ok two']
    assert TOK.DecodeIds(corpus['prompt'][1]) == 'P:'
    assert summary.tokens == {'prompt': 2, 'text': 5 + 6 + 6 + 6}
    meta = read_meta(out)
    assert meta['summary']['skipped_at'][0] == [b, 2, 'malformed JSON']
    assert meta['tokenizer'] == tokenizer_fingerprint(TOK)


def test_one_and_two_workers_give_byte_identical_caches(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, 'CHUNK_ITEMS', 7)  # many small chunks: completion order varies
    path = toy_corpus(tmp_path / 'c.jsonl', docs=120)
    with open(path, 'a') as f:
        f.write('not json\n{"text": "tail."}\n')
    spec = CorpusRegistry().resolve(path)
    one = build_cache(spec, TOK, cache_path=str(tmp_path / 'one.lazy'), workers=1, progress=False)
    two = build_cache(spec, TOK, cache_path=str(tmp_path / 'two.lazy'), workers=2, progress=False)
    assert one.to_json() == two.to_json() and one.documents == 121
    files = sorted(os.listdir(tmp_path / 'one.lazy'))
    assert files == ['meta.json', 'prompt', 'prompt.len.npy', 'text', 'text.len.npy']
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / 'one.lazy', tmp_path / 'two.lazy', files, shallow=False)
    assert mismatch == [] and errors == [] and match == files


def test_crash_leaves_no_cache_under_the_real_name(tmp_path, monkeypatch):
    monkeypatch.setattr(preprocess, 'CHUNK_ITEMS', 5)
    spec = CorpusRegistry().resolve(toy_corpus(tmp_path / 'c.jsonl', docs=30))
    out = tmp_path / 'c.lazy'
    real_write = preprocess._write_chunk
    calls = []

    def crashing_write(writer, result):
        calls.append(1)
        assert not out.exists()  # work in progress lives in a temporary directory only
        assert any('.tmp-' in name for name in os.listdir(tmp_path))
        if len(calls) == 3:
            raise RuntimeError('disk on fire')
        real_write(writer, result)

    monkeypatch.setattr(preprocess, '_write_chunk', crashing_write)
    for workers in (1, 2):
        calls.clear()
        with pytest.raises(RuntimeError, match='disk on fire'):
            build_cache(spec, TOK, cache_path=str(out), workers=workers, progress=False)
        assert sorted(os.listdir(tmp_path)) == ['c.jsonl']  # no cache, no temporary left behind
    monkeypatch.setattr(preprocess, '_write_chunk', real_write)
    build_cache(spec, TOK, cache_path=str(out), workers=1, progress=False)
    assert sorted(os.listdir(tmp_path)) == ['c.jsonl', 'c.lazy']


class _FatalReader(WikipediaReader):
    """A reader whose configuration breaks inside the worker."""

    def documents(self, item):
        raise CorpusError('language model vanished')


def test_fatal_error_inside_a_worker_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setitem(READERS, 'fatal-test', _FatalReader)
    path = toy_corpus(tmp_path / 'c.jsonl', docs=4)
    spec = CorpusRegistry({'f': {'path': path, 'reader': 'fatal-test'}}).resolve('f')
    with pytest.raises(CorpusError, match='language model vanished'):
        build_cache(spec, TOK, cache_path=str(tmp_path / 'f.lazy'), workers=2, progress=False)
    assert sorted(os.listdir(tmp_path)) == ['c.jsonl']


def test_existing_cache_is_reused_and_checked_against_the_tokenizer(tmp_path):
    spec = CorpusRegistry().resolve(toy_corpus(tmp_path / 'c.jsonl', docs=5))
    path = ensure_cache(spec, TOK, workers=1)
    assert path == str(tmp_path / 'c.lazy')
    stamp = os.stat(os.path.join(path, 'text')).st_mtime_ns
    again = build_cache(spec, TOK, workers=1, progress=False)
    assert again.reused and again.documents == 5
    assert os.stat(os.path.join(path, 'text')).st_mtime_ns == stamp

    class Other(ToyTokenizer):
        tokenizer_class = 'Other'
    with pytest.raises(CorpusError, match='another tokenizer'):
        ensure_cache(spec, Other(), workers=1)
    forced = build_cache(spec, TOK, workers=1, progress=False, force=True)
    assert not forced.reused and sorted(os.listdir(tmp_path)) == ['c.jsonl', 'c.lazy']


def test_raw_text_cache_without_pre_tokenisation(tmp_path):
    path = write_jsonl(tmp_path / 'c.jsonl', [{'prompt': '\u201cQ\u201d', 'text': 'caf\u00e9'}])
    spec = CorpusRegistry().resolve(path)
    build_cache(spec, TOK, cache_path=str(tmp_path / 'c.lazy'), pre_tokenize=False, progress=False)
    corpus = LazyCorpus(str(tmp_path / 'c.lazy'))
    assert not corpus.is_array and corpus['text'][0] == 'café' and corpus['prompt'][0] == '"Q"'
    assert read_meta(str(tmp_path / 'c.lazy'))['tokenizer'] is None


def test_cli_errors_are_one_line_messages(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('GLM_CORPORA', raising=False)
    assert preprocess_corpus.main(['nosuchcorpus', '--no-progress']) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: unknown corpus') and 'kjv' in err and 'wikibook' in err
    assert 'Traceback' not in err
    assert preprocess_corpus.main([str(tmp_path / 'missing.jsonl'), '--no-progress']) == 1
    assert 'does not exist' in capsys.readouterr().err
    reg = tmp_path / 'r.json'
    reg.write_text(json.dumps({'corpora': {'wikibook': {'path': 'absent-dir'}}}))
    assert preprocess_corpus.main(['wikibook', '--corpus-registry', str(reg), '--no-progress']) == 1
    assert 'absent-dir does not exist' in capsys.readouterr().err


def test_cli_builds_a_cache_with_the_bert_tokenizer(tmp_path, capsys):
    path = write_jsonl(tmp_path / 'tiny.jsonl', [{'text': 'Hello world. How are you?'}, {'text': '{bad'}, 'oops'])
    rc = preprocess_corpus.main([path, '--workers', '2', '--no-progress', '--cache-dir', str(tmp_path / 'cache')])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert 'documents: 2' in out.out and 'malformed JSON: 1' in out.out and 'tiny.jsonl:3: malformed JSON' in out.out
    (cache,) = os.listdir(tmp_path / 'cache')
    assert cache.startswith('tiny-') and '.BertWordPieceTokenizer-' in cache and cache.endswith('.lazy')
    corpus = LazyCorpus(str(tmp_path / 'cache' / cache))
    assert corpus['text'][0].tolist() == [7592, 2088, 1012, 2129, 2024, 2017, 1029]


class _DyingReader(WikipediaReader):
    """Kills its worker process outright (as the OOM killer would)."""

    def documents(self, item):
        os._exit(3)


def test_a_worker_killed_mid_run_is_a_clean_error(tmp_path, monkeypatch):
    monkeypatch.setitem(READERS, 'dying-test', _DyingReader)
    path = toy_corpus(tmp_path / 'c.jsonl', docs=4)
    spec = CorpusRegistry({'d': {'path': path, 'reader': 'dying-test'}}).resolve('d')
    with pytest.raises(PreprocessError, match='worker process died'):
        build_cache(spec, TOK, cache_path=str(tmp_path / 'd.lazy'), workers=2, progress=False)
    assert sorted(os.listdir(tmp_path)) == ['c.jsonl']


def test_cache_is_used_when_the_raw_inputs_are_gone(tmp_path):
    path = toy_corpus(tmp_path / 'c.jsonl', docs=3)
    registry = CorpusRegistry({'mine': {'path': path}})
    built = ensure_cache(registry.resolve('mine'), TOK, workers=1)
    os.remove(path)
    assert ensure_cache(registry.resolve('mine'), TOK, workers=1) == built
    assert build_cache(registry.resolve('mine'), TOK, progress=False).reused
    with pytest.raises(CorpusError, match='does not exist'):
        build_cache(registry.resolve('mine'), TOK, progress=False, force=True)


def test_unreadable_input_is_a_clean_error(tmp_path):
    import gzip
    good = tmp_path / 'good.jsonl.gz'
    with gzip.open(good, 'wt') as f:
        f.write('{"text": "a"}\n' * 50)
    write_bytes(tmp_path / 'cut.jsonl.gz', good.read_bytes()[:25])
    good.unlink()
    spec = CorpusRegistry().resolve(str(tmp_path / 'cut.jsonl.gz'))
    with pytest.raises(PreprocessError, match='cannot read'):
        build_cache(spec, TOK, workers=1, progress=False)
    assert sorted(os.listdir(tmp_path)) == ['cut.jsonl.gz']


def test_an_edited_corpus_rebuilds_its_cache(tmp_path, capsys):
    """Issue 20, case 8: the cache of an edited corpus was used with only a warning."""
    spec = CorpusRegistry().resolve(toy_corpus(tmp_path / 'c.jsonl', docs=5))
    path = ensure_cache(spec, TOK, workers=1)
    assert len(LazyCorpus(path)) == 5
    toy_corpus(tmp_path / 'c.jsonl', docs=7)
    assert ensure_cache(spec, TOK, workers=1) == path
    assert len(LazyCorpus(path)) == 7
    assert 'inputs changed since the cache' in capsys.readouterr().err
    assert build_cache(spec, TOK, workers=1, progress=False).reused   # current again: reused
    assert sorted(os.listdir(tmp_path)) == ['c.jsonl', 'c.lazy']


def test_a_corpus_fixed_after_an_empty_error_is_read_again(tmp_path):
    """Issue 20, case 8: a corpus fixed after "has no documents" kept reporting it (the empty cache stayed)."""
    from data_utils.configure_data import build_document_dataset
    corpus = tmp_path / 'c.jsonl'
    write_jsonl(corpus, [{'txet': 'misspelt key'}] * 3)
    from tests.helpers import parse_config

    cfg = parse_config([])
    with pytest.raises(CorpusError, match='has no documents'):
        build_document_dataset([str(corpus)], cfg, TOK)
    toy_corpus(corpus, docs=4)
    dataset, _ = build_document_dataset([str(corpus)], cfg, TOK)
    assert len(dataset) == 4
