"""Tokenizers against the reference files recorded with the original GLM (glm_reference/tokenizers/*.json),
the command-token table of spec §5.1, and bad input.

The RoBERTa vocabulary and the Chinese SentencePiece model are not shipped with the project; their tests
read them from ../shared/assets/vocab and are skipped where that folder is missing.
"""

import json
import logging
import os
from pathlib import Path

import pytest

from data_utils import prepare_tokenizer
from data_utils.tokenizers import configure_tokenizer, make_tokenizer, unassigned_token
from tests.helpers import parse_config

SHARED = Path(os.environ.get('GLM_SHARED_DIR') or Path(__file__).resolve().parents[2] / 'shared')
REFERENCE_DIR = SHARED / 'glm_reference' / 'tokenizers'
VOCAB_DIR = SHARED / 'assets' / 'vocab'
REFERENCE_FILES = sorted(p.name for p in REFERENCE_DIR.glob('*.json')) if REFERENCE_DIR.is_dir() else []
# Files whose vocabulary is not shipped: the test needs it from the shared assets.
NEEDS = {'roberta': 'roberta-vocab.json', 'chinese_sp': 'cog-pretrain.model'}


def need_vocab(filename):
    if not (VOCAB_DIR / filename).is_file():
        pytest.skip(f'{filename} is not shipped with the project and {VOCAB_DIR} does not have it')


@pytest.fixture
def shared_vocab(monkeypatch):
    """Point GLM_VOCAB_DIR at the shared assets (for the RoBERTa and Chinese files)."""
    monkeypatch.setenv('GLM_VOCAB_DIR', str(VOCAB_DIR))


def load_reference(name):
    if not REFERENCE_FILES:
        pytest.skip(f'reference files not found under {REFERENCE_DIR}')
    for prefix, filename in NEEDS.items():
        if name.startswith(prefix):
            need_vocab(filename)
    return json.loads((REFERENCE_DIR / name).read_text(encoding='utf-8'))


def build(ref, fast):
    """fast: False (reference path), True (fast path, with its compiled helper where it builds) or
    'python' (the fast path without the helper)."""
    tokenizer, cfg = configure_tokenizer(parse_config(ref['argv']), fast=bool(fast))
    if fast == 'python':
        if not hasattr(getattr(tokenizer, 'text_tokenizer', None), '_native'):
            pytest.skip(f'{type(tokenizer).__name__} has no compiled helper: the "fast" case covers it')
        tokenizer.text_tokenizer._native = None
    return cfg, tokenizer


PATHS = [pytest.param(False, id='reference'), pytest.param(True, id='fast')]
CASE_PATHS = PATHS + [pytest.param('python', id='fast-python-only')]


def test_reference_files_present():
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f'{REFERENCE_DIR} not available')
    assert len(REFERENCE_FILES) == 6


@pytest.mark.parametrize('fast', PATHS)
@pytest.mark.parametrize('name', REFERENCE_FILES)
def test_reference_tables(name, fast, shared_vocab):
    ref = load_reference(name)
    cfg, tok = build(ref, fast)
    assert tok.tokenizer_class == ref['tokenizer_class']
    assert tok.num_tokens == ref['num_tokens']
    assert tok.num_command_tokens == ref['num_command_tokens']
    assert tok.num_text_tokens == ref['num_text_tokens']
    assert tok.num_type_tokens == ref['num_type_tokens']
    assert cfg.model.vocab_size == tok.padded_vocab_size == ref['padded_vocab_size']
    assert cfg.model.vocab_size % ref['make_vocab_size_divisible_by'] == 0
    assert cfg.data.eod_token == ref['eod_token'] == tok.get_command('eos').Id
    got = [dict(name=c.name, token=c.token, id=c.Id, lstrip=c.lstrip, rstrip=c.rstrip) for c in tok.command_tokens]
    assert got == ref['command_tokens']
    for c in ref['command_tokens']:
        assert tok.get_command(c['name']).Id == c['id']
        assert tok.command_name_map[c['name']].token == c['token']
    assert [dict(name=t.name, token=t.token, id=t.Id) for t in tok.type_tokens] == ref['type_tokens']


@pytest.mark.parametrize('fast', CASE_PATHS)
@pytest.mark.parametrize('name', REFERENCE_FILES)
def test_reference_cases(name, fast, shared_vocab):
    ref = load_reference(name)
    _, tok = build(ref, fast)
    command_strings = [c['token'] for c in ref['command_tokens']]
    for case in ref['cases']:
        text = case['text']
        assert tok.EncodeAsIds(text).tokenization == case['ids'], text
        assert [tok.IdToToken(i) for i in case['ids']] == case['id_tokens'], text
        assert tok.DecodeIds(case['ids']) == case['decoded'], text
        if 'text_tokens' in case:
            assert tok.EncodeAsTokens(text).tokenization == case['text_tokens'], text
        else:
            # The original GPT-2 EncodeAsTokens crashed (a misspelt attribute); ours returns the BPE token
            # strings, which are the id tokens wherever no command string is involved.
            assert case['text_tokens_error'].startswith('AttributeError')
            if not any(s in text for s in command_strings):
                assert tok.EncodeAsTokens(text).tokenization == case['id_tokens'], text


# Spec §5.1: (type, model type, flags) -> expected command ids, num_tokens and padded size.
SPEC_TABLE = [
    ('BertWordPieceTokenizer', 'bert-base-uncased', dict(block_lm=True),
     dict(pad=0, eos=0, ENC=101, MASK=103, sep=102, unk=100, sop=30522, eop=30523), 30524, 30592),
    ('BertWordPieceTokenizer', 'bert-large-uncased', dict(block_lm=True, task_mask=True, block_mask_prob=0.1),
     dict(gMASK=30524, sMASK=30525, dBLOCK=30526), 30527, 30592),
    ('BertWordPieceTokenizer', 'bert-large-uncased', dict(block_lm=True, context_mask_ratio=0.1),
     dict(dBLOCK=30524), 30525, 30592),
    ('BertWordPieceTokenizer', None, dict(), dict(pad=0, eos=0, ENC=101, MASK=103, sep=102, unk=100), 30522, 30592),
    ('GPT2BPETokenizer', 'gpt2', dict(), dict(pad=50256, eos=50256), 50257, 50304),
    ('GPT2BPETokenizer', None, dict(block_lm=True, task_mask=True, block_mask_prob=0.1),
     dict(pad=50256, eos=50256, sop=50257, eop=50258, ENC=50259, MASK=50260, sep=50261, unk=50262, gMASK=50263,
          sMASK=50264, dBLOCK=50265), 50266, 50304),
    ('GPT2BPETokenizer', 'roberta', dict(block_lm=True, task_mask=True, block_mask_prob=0.1),
     dict(pad=2, eos=2, ENC=0, MASK=50264, sep=2, unk=3, sop=50265, eop=50266, gMASK=50267, sMASK=50268,
          dBLOCK=50269), 50270, 50304),
    ('ChineseSPTokenizer', None, dict(block_lm=True, task_mask=True, block_mask_prob=0.1),
     dict(pad=50000, eos=50000, sep=50001, ENC=50002, MASK=50003, unk=50004, sop=50006, eop=50007, gMASK=50007,
          sMASK=50008, dBLOCK=50009), 50010, 50048),
    ('ChineseSPTokenizer', None, dict(block_lm=True, task_mask=True, fix_command_token=True, block_mask_prob=0.1),
     dict(sop=50006, eop=50007, sMASK=50008, gMASK=50009, dBLOCK=50010), 50011, 50048),
    # Block symbols without task masks: the unfixed counter leaves eop outside num_tokens.
    ('ChineseSPTokenizer', None, dict(block_lm=True), dict(sop=50006, eop=50007), 50007, 50048),
    ('ChineseSPTokenizer', None, dict(block_lm=True, fix_command_token=True), dict(sop=50006, eop=50007), 50008, 50048),
    ('CharacterLevelTokenizer', None, dict(),
     dict(pad=0, eos=0, ENC=1, MASK=2, sep=3, unk=4, sop=5, eop=6, gMASK=7, sMASK=8, dBLOCK=9), 266, 384),
]


@pytest.mark.parametrize('tokenizer_type,model_type,flags,ids,num_tokens,padded', SPEC_TABLE)
def test_spec_command_table(tokenizer_type, model_type, flags, ids, num_tokens, padded, shared_vocab):
    if model_type == 'roberta':
        need_vocab('roberta-vocab.json')
    if tokenizer_type == 'ChineseSPTokenizer':
        need_vocab('cog-pretrain.model')
    cfg = parse_config(tokenizer_type=tokenizer_type, tokenizer_model_type=model_type, **flags)
    tok, cfg = configure_tokenizer(cfg)
    assert {name: tok.get_command(name).Id for name in ids} == ids
    assert tok.num_tokens == num_tokens
    assert cfg.model.vocab_size == padded
    assert cfg.data.eod_token == ids.get('eos', tok.get_command('eos').Id)


def test_chinese_gmask_collision(shared_vocab):
    """GLM-10B-Chinese: [gMASK] and <|endofpiece|> share 50007 (reproduced, not fixed)."""
    need_vocab('cog-pretrain.model')
    tok = make_tokenizer('ChineseSPTokenizer', add_block_symbols=True, add_task_mask=True)
    assert tok.get_command('gMASK').Id == tok.get_command('eop').Id == 50007
    assert tok.IdToToken(50007) == '[gMASK]'  # the later entry of the table names the shared id
    assert tok.EncodeAsIds('<|endofpiece|>[gMASK]').tokenization == [50007, 50007]
    assert tok.IdToToken(50005) == unassigned_token(50005)  # the id the original skipped
    assert tok.IdToToken(0) == '<str0>' and tok.IdToToken(1) == '<str1>'  # original quirk, kept
    fixed = make_tokenizer('ChineseSPTokenizer', add_block_symbols=True, add_task_mask=True, fix_command_token=True)
    assert fixed.get_command('gMASK').Id == 50009 and fixed.IdToToken(50007) == '<|endofpiece|>'


def test_sentinel_tokens():
    cfg = parse_config(block_lm=True, sentinel_token=True, max_position_embeddings=8)
    tok, cfg = configure_tokenizer(cfg)
    assert tok.get_command('MASK1').Id == 30524 and tok.get_command('sop1').Id == 30525
    assert tok.get_command('MASK7').Id == 30536 and tok.get_command('sop7').Id == 30537
    assert tok.num_tokens == 30538 and cfg.model.vocab_size == 30592
    assert tok.EncodeAsIds('a [MASK3] b<|startofpiece3|>').tokenization == [1037, 30528, 1038, 30529]
    with pytest.raises(ValueError, match='sentinel'):
        prepare_tokenizer(parse_config(tokenizer_type='GPT2BPETokenizer', block_lm=True, sentinel_token=True))


def test_toy_char():
    cfg = parse_config(tokenizer_type='CharacterLevelTokenizer')
    tok, cfg = configure_tokenizer(cfg)
    assert tok.num_tokens == 266 and cfg.model.vocab_size == 384 and cfg.data.eod_token == 0
    text = '[CLS]Hi [MASK]!<|endoftext|>'
    ids = tok.EncodeAsIds(text).tokenization
    assert ids == [1, ord('H') + 10, ord('i') + 10, ord(' ') + 10, 2, ord('!') + 10, 0]
    assert tok.DecodeIds(ids) == text
    assert tok.EncodeAsIds('é€').tokenization == [ord('é') + 10, tok.get_command('unk').Id]  # above U+00FF: unk
    assert tok.IdToToken(ord('a') + 10) == 'a' and tok.TokenToId('a') == ord('a') + 10
    assert tok.IdToToken(300) == unassigned_token(300)


def test_defaults_and_fast_switch(monkeypatch):
    cfg = parse_config()
    tok, cfg = configure_tokenizer(cfg)
    assert tok.tokenizer_class == 'BertWordPieceTokenizer' and tok.model_type == 'bert-large-uncased'
    assert (cfg.model.vocab_size, cfg.data.eod_token, tok.backend) == (30592, 0, 'fast')
    monkeypatch.setenv('GLM_TOKENIZER_FAST', '0')
    assert prepare_tokenizer(parse_config()).backend == 'reference'
    assert prepare_tokenizer(parse_config(), fast=True).backend == 'fast'


def test_model_parallel_divisibility():
    _, cfg = configure_tokenizer(parse_config(model_parallel_size=2))
    assert cfg.model.vocab_size == 30592
    with pytest.raises(ValueError, match='model-parallel'):
        prepare_tokenizer(parse_config(model_parallel_size=3))
    _, cfg = configure_tokenizer(parse_config(model_parallel_size=3, make_vocab_size_divisible_by=384))
    assert cfg.model.vocab_size == 30720


# ----------------------------------------------------------------------------------------------- bad input

def test_unknown_tokenizer_type():
    with pytest.raises(ValueError) as err:
        prepare_tokenizer(parse_config(tokenizer_type='WordLevelTokenizer'))
    for choice in ('CharacterLevelTokenizer', 'SentencePieceTokenizer', 'BertWordPieceTokenizer',
                   'GPT2BPETokenizer', 'ChineseSPTokenizer'):
        assert choice in str(err.value)


def test_unknown_model_types(caplog):
    with pytest.raises(ValueError) as err:
        make_tokenizer('GPT2BPETokenizer', 'gpt3')
    assert 'gpt2' in str(err.value) and 'roberta' in str(err.value)
    # BERT keeps the original's silent fallback to bert-large-uncased, but says so now.
    with caplog.at_level(logging.WARNING):
        tok = make_tokenizer('BertWordPieceTokenizer', 'bert-base-multilingual-uncased')
    assert tok.model_type == 'bert-large-uncased' and tok.do_lower_case
    assert 'bert-base-multilingual-uncased' in caplog.text and 'bert-base-uncased' in caplog.text
    cased = make_tokenizer('BertWordPieceTokenizer', 'bert-large-cased')  # uncased vocab, no lower-casing
    assert not cased.do_lower_case and cased.EncodeAsIds('Hello').tokenization != [7592]


@pytest.mark.parametrize('tokenizer_type,model_type,filename', [
    ('GPT2BPETokenizer', 'roberta', 'roberta-vocab.json'),
    ('ChineseSPTokenizer', None, 'cog-pretrain.model'),
])
def test_missing_vocabulary(tokenizer_type, model_type, filename, tmp_path, monkeypatch):
    monkeypatch.setenv('GLM_VOCAB_DIR', str(tmp_path / 'empty'))
    given = tmp_path / 'somewhere'
    given.mkdir()
    with pytest.raises(FileNotFoundError) as err:
        make_tokenizer(tokenizer_type, model_type, tokenizer_path=str(given), cache_dir=str(tmp_path / 'cache'))
    message = str(err.value)
    assert filename in message
    for place in (given / filename, tmp_path / 'empty' / filename, tmp_path / 'cache' / filename):
        assert str(place) in message
    monkeypatch.delenv('GLM_VOCAB_DIR')
    with pytest.raises(FileNotFoundError, match='GLM_VOCAB_DIR: not set'):
        make_tokenizer(tokenizer_type, model_type)


def test_vocabulary_from_tokenizer_path(monkeypatch):
    monkeypatch.delenv('GLM_VOCAB_DIR', raising=False)
    need_vocab('cog-pretrain.model')
    need_vocab('roberta-vocab.json')
    model_file = str(VOCAB_DIR / 'cog-pretrain.model')
    assert make_tokenizer('ChineseSPTokenizer', tokenizer_path=model_file).num_tokens == 50005
    assert make_tokenizer('ChineseSPTokenizer', tokenizer_path=str(VOCAB_DIR)).num_tokens == 50005
    assert make_tokenizer('GPT2BPETokenizer', 'roberta', tokenizer_path=str(VOCAB_DIR)).num_tokens == 50265


def test_missing_sentencepiece_model(tmp_path):
    with pytest.raises(FileNotFoundError, match='train_sentencepiece'):
        make_tokenizer('SentencePieceTokenizer', tokenizer_path=str(tmp_path / 'nothing.model'))


@pytest.mark.parametrize('fast', PATHS)
def test_unknown_characters_and_empty_text(fast):
    bert = make_tokenizer('BertWordPieceTokenizer', fast=fast, add_block_symbols=True)
    gpt2 = make_tokenizer('GPT2BPETokenizer', fast=fast, add_block_symbols=True)
    assert bert.EncodeAsIds('😀 ꙮ').tokenization == [100, 100]
    weird = 'a\x00b\ufffd\u200b\U000e0001 \ud800 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ¿?'
    for tok in (bert, gpt2):
        assert tok.EncodeAsIds('').tokenization == []
        assert tok.EncodeAsIds(' \n\t ').tokenization == []  # whitespace-only text: no ids, as the original
        assert tok.DecodeIds([]) == ''
        ids = tok.EncodeAsIds(weird).tokenization
        assert ids and all(0 <= i < tok.num_tokens for i in ids)
        tok.DecodeIds(ids)
    assert gpt2.DecodeIds(gpt2.EncodeAsIds('😀 ꙮ').tokenization) == '😀 ꙮ'


def test_unknown_characters_chinese(shared_vocab):
    need_vocab('cog-pretrain.model')
    tok = make_tokenizer('ChineseSPTokenizer')
    assert 0 in tok.EncodeAsIds('測試😀').tokenization
    assert tok.EncodeAsIds('').tokenization == [] and tok.DecodeIds([]) == ''


def test_decode_ids_out_of_range():
    tok = make_tokenizer('GPT2BPETokenizer', add_block_symbols=True, add_task_mask=True)
    assert tok.num_tokens == 50265 and tok.padded_vocab_size == 50304
    # Padding rows of the embedding decode to a placeholder (samplers can emit them), never a KeyError.
    assert tok.IdToToken(50300) == unassigned_token(50300) == '<|unassigned_id_50300|>'
    assert tok.DecodeIds([15496, 50300]) == 'Hello<|unassigned_id_50300|>'
    for bad in (-1, 50304, 10 ** 9):
        with pytest.raises(ValueError, match='outside the vocabulary'):
            tok.DecodeIds([15496, bad])
        with pytest.raises(ValueError):
            tok.IdToToken(bad)
    with pytest.raises(TypeError):
        tok.DecodeIds(['Hello'])
    bert = make_tokenizer('BertWordPieceTokenizer')
    assert bert.DecodeIds([7592, 30591]) == 'hello <|unassigned_id_30591|>'
    with pytest.raises(ValueError):
        bert.DecodeIds([30592])


def test_interface_details():
    import numpy as np
    tok = make_tokenizer('BertWordPieceTokenizer', add_block_symbols=True)
    enc = tok.EncodeAsIds('Hello, world! [MASK]', process_fn=str.upper)
    assert enc.tokenization == [7592, 1010, 2088, 999, 103] and len(enc) == 5 and list(enc) == enc.tokenization
    assert enc.text == 'HELLO, WORLD! [MASK]' and enc.original_text == 'Hello, world! [MASK]'
    assert tok.DecodeIds(np.array(enc.tokenization)) == tok.DecodeIds(enc) == 'hello , world ! [MASK]'
    assert tok.TokenToId('[MASK]') == 103 and tok.TokenToId('world') == 2088
    assert tok.DecodeTokens(['hello', '##s', '<|startofpiece|>']) == 'hellos <|startofpiece|>'
    with pytest.raises(KeyError):
        tok.TokenToId('no-such-token')
    with pytest.raises(KeyError, match="'eop'"):
        tok.get_command('gMASK')  # the message lists what exists
    assert tok.get_type('str1').Id == 1
    assert tok.command_id_map[0].name == 'eos' and tok.command_token_map['[PAD]'].name == 'eos'


def test_without_rust_library(monkeypatch, caplog):
    """Where `tokenizers` is not installed the reference path is used (with a warning)."""
    from data_utils.tokenizers import fast
    monkeypatch.setattr(fast, 'fast_available', lambda: False)
    with caplog.at_level(logging.WARNING):
        tok = make_tokenizer('GPT2BPETokenizer')
    assert tok.backend == 'reference' and 'tokenizers' in caplog.text
    assert tok.EncodeAsIds('Hello, world!').tokenization == [15496, 11, 995, 0]
    with pytest.raises(ImportError):
        make_tokenizer('BertWordPieceTokenizer', fast=True)
