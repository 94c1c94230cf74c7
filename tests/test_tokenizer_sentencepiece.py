"""SentencePieceTokenizer: training a model with the GLM command tokens, loading it through the flags,
and loading a model that lacks them."""

import json
import os
from pathlib import Path

import pytest

pytest.importorskip('sentencepiece')

import data_utils.tokenizers  # noqa: E402
from data_utils.tokenizers import configure_tokenizer, make_tokenizer, train_sentencepiece, unassigned_token  # noqa: E402
from tests.helpers import parse_config  # noqa: E402

SHARED = Path(os.environ.get('GLM_SHARED_DIR') or Path(__file__).resolve().parents[2] / 'shared')
KJV = SHARED / 'assets' / 'corpora' / 'en_kjv_verses.jsonl'


def verses(n=2000):
    """KJV verses, or where the shared corpus is absent sentences made of the shipped BERT vocabulary."""
    if KJV.is_file():
        with open(KJV, encoding='utf-8') as f:
            return [json.loads(line)['text'] for _, line in zip(range(n), f)]
    vocab = Path(data_utils.tokenizers.__file__).parent / 'vocab' / 'bert-base-uncased-vocab.txt'
    words = [w for w in vocab.read_text(encoding='utf-8').split('\n') if w.isalpha() and w.isascii()]
    words = [w.capitalize() if i % 3 == 0 else w for i, w in enumerate(words)]
    return [' '.join(words[i:i + 8]) + ', and so on.' for i in range(0, len(words), 8)][:n // 2]


@pytest.fixture(scope='module')
def glm_model(tmp_path_factory):
    return train_sentencepiece(verses(), tmp_path_factory.mktemp('sp') / 'kjv', vocab_size=400)


def test_trained_layout(glm_model):
    tok, cfg = configure_tokenizer(parse_config(['--tokenizer-type', 'SentencePieceTokenizer',
                                                 '--tokenizer-path', str(glm_model), '--block-lm']))
    ids = {c.name: c.Id for c in tok.command_tokens}
    assert ids == dict(pad=1, eos=1, ENC=2, MASK=3, sep=4, unk=0, sop=5, eop=6, gMASK=7, sMASK=8, dBLOCK=9)
    assert tok.num_tokens == 400 and tok.num_text_tokens == 390
    assert cfg.model.vocab_size == 512 and cfg.data.eod_token == 1
    assert tok.get_command('MASK').lstrip and tok.get_command('gMASK').lstrip


def test_trained_encode_decode(glm_model):
    tok = make_tokenizer('SentencePieceTokenizer', tokenizer_path=str(glm_model))
    text = 'In the beginning God created the heaven and the earth.'
    ids = tok.EncodeAsIds(text).tokenization
    assert tok.DecodeIds(ids) == text and all(i >= 10 for i in ids)
    masked = tok.EncodeAsIds('[CLS] And God said, [MASK]. Let there be light[sMASK]<|endoftext|>').tokenization
    assert masked[0] == 2 and masked[-1] == 1 and 3 in masked and 8 in masked
    assert tok.DecodeIds(masked) == '[CLS] And God said,[MASK]. Let there be light[sMASK]<|endoftext|>'
    assert tok.IdToToken(3) == '[MASK]' and tok.TokenToId('<|startofpiece|>') == 5
    assert tok.EncodeAsIds('Ω').tokenization[-1] == 0  # a character the model never saw is unk
    assert tok.IdToToken(450) == unassigned_token(450)
    with pytest.raises(ValueError):
        tok.DecodeIds([512])


def test_model_without_command_symbols(tmp_path):
    model = train_sentencepiece(verses(), tmp_path / 'plain', vocab_size=400, user_defined_symbols=[],
                                unk_piece='<unk>')
    tok = make_tokenizer('SentencePieceTokenizer', tokenizer_path=str(model), add_block_symbols=True)
    ids = {c.name: c.Id for c in tok.command_tokens}
    assert ids == dict(pad=400, eos=400, ENC=401, MASK=402, sep=403, unk=0, sop=404, eop=405)
    assert tok.num_tokens == 406 and tok.padded_vocab_size == 512
    assert tok.DecodeIds(tok.EncodeAsIds('the land[MASK]').tokenization) == 'the land[MASK]'
