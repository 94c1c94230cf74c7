"""The shared GLM input builder (spec section 9.2)."""

import json
from types import SimpleNamespace

import pytest

from tasks.inputs import build_decoder_input, build_input_from_ids, build_uni_input_from_ids, pack_glm_input
from tests.helpers import parse_config
from tests.tasks.helpers_tasks import COMMANDS, WordTokenizer
from data_utils.tokenizers import configure_tokenizer

ENC, MASK, EOS, SOP, SEP = (COMMANDS[k] for k in ("ENC", "MASK", "eos", "sop", "sep"))


def test_pack_layout_and_padding():
    packed = pack_glm_input([1, 20, 2, 0], [5, 30], [30, 31], mask_position=2, max_len=8, pad_id=0)
    assert packed.text.tolist() == [1, 20, 2, 0, 5, 30, 0, 0]
    assert packed.position_id.tolist() == [[0, 1, 2, 3, 2, 2, 0, 0], [0, 0, 0, 0, 1, 2, 0, 0]]
    assert packed.target.tolist() == [0, 0, 0, 0, 30, 31, 0, 0]
    assert packed.loss_mask.tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    assert packed.sep == 4 and packed.paddings.tolist() == [1] * 6 + [0, 0]
    flat = pack_glm_input([1, 2], [5, 30, 31], mask_position=1, block_position=False)
    assert flat.position_id[1].tolist() == [0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="does not fit"):
        pack_glm_input([1, 2, 3], [5, 6], mask_position=1, max_len=4)
    with pytest.raises(ValueError, match="position of the mask"):
        pack_glm_input([1, 2], [5])


def test_build_input_from_ids_answer_and_piece():
    tok, cfg = WordTokenizer(), parse_config()
    ids, types, paddings, positions, sep, targets, loss = build_input_from_ids(
        [20, MASK, 21], [22], [30, 31], 12, tok, cfg, add_sep=True)
    assert ids.tolist() == [ENC, 20, MASK, 21, SEP, 22, EOS, SOP, 30, 0, 0, 0]
    assert types.tolist()[:7] == [0, 0, 0, 0, 0, 1, 1]
    assert sep == 7 and positions.tolist()[0][:10] == [0, 1, 2, 3, 4, 5, 6, 2, 2, 0]
    assert positions.tolist()[1][:10] == [0] * 7 + [1, 2, 0]
    assert targets.tolist()[7:9] == [30, 31] and loss.tolist() == [0] * 7 + [1, 1, 0, 0, 0]
    assert paddings.tolist() == [1] * 9 + [0] * 3
    # single-token cloze: only [sop], scored
    ids, _, _, positions, sep, targets, loss = build_input_from_ids([20, MASK], None, None, 6, tok, cfg,
                                                                    add_piece=True)
    assert ids.tolist() == [ENC, 20, MASK, EOS, SOP, 0] and loss.tolist() == [0, 0, 0, 0, 1, 0]
    assert positions.tolist() == [[0, 1, 2, 3, 2, 0], [0, 0, 0, 0, 1, 0]]
    # part A is cut to max_len - 1 before [eos]
    ids, *_ = build_input_from_ids(list(range(20, 30)), None, None, 6, tok, cfg)
    assert ids.tolist() == [ENC, 20, 21, 22, 23, EOS]


def test_uni_and_decoder_inputs():
    tok, cfg = WordTokenizer(), parse_config()
    ids, _, _, positions, sep, targets, loss = build_uni_input_from_ids([20, 21], None, [30], 8, tok, cfg)
    assert ids.tolist() == [ENC, MASK, SOP, 20, 21, 0, 0, 0] and sep == 2
    assert targets.tolist()[:5] == [0, 0, 20, 21, 30] and loss.tolist()[:5] == [0, 0, 0, 0, 1]
    assert positions.tolist()[0][:5] == [0, 1, 1, 1, 1] and positions.tolist()[1][:5] == [0, 0, 1, 2, 3]
    dec = build_decoder_input([ENC, 20, MASK, 21, MASK, EOS], [30, 31, 32], 6, 5, tok)
    assert dec[0].tolist() == [SOP, 30, 31, 0, 0] and dec[4] == 6
    assert dec[3].tolist() == [[2, 2, 2, 0, 0], [1, 2, 3, 0, 0]]
    assert dec[5].tolist() == [30, 31, 32, 0, 0] and dec[6].tolist() == [1, 1, 1, 0, 0]


def test_lambada_reference_sample_through_build_input_from_ids(reference_dir):
    """The original's LAMBADA sample equals the generic builder on ``context + [MASK]``."""
    from tests.helpers import parse_config

    case = json.loads((reference_dir / "tasks" / "lm_eval__bert_large.json").read_text())["datasets"]["lambada_small"]
    cfg = parse_config([a for a in case["argv"] if "<work>" not in a and a != "--valid-data"])
    tok, cfg = configure_tokenizer(cfg)
    mask = tok.get_command("MASK").Id
    for context, answer, expected in zip(case["context_tokens"], case["label_tokens"], case["samples"]):
        context = context[-(cfg.data.seq_length - 3 - len(answer)):]
        ids, _, _, positions, sep, targets, loss = build_input_from_ids(context + [mask], None, answer,
                                                                        cfg.data.seq_length, tok, cfg)
        assert ids.tolist() == expected["text"] and positions.tolist() == expected["position_id"]
        assert targets.tolist() == expected["target"] and loss.tolist() == expected["loss_mask"]
        assert sep == expected["attention_mask"]


def test_decoder_input_matches_copa_fast_decode_reference(reference_dir):
    from data_utils import prepare_tokenizer
    from tests.helpers import parse_config

    data = json.loads((reference_dir / "tasks" / "superglue_pvp__bert_large.json").read_text())["tasks"]["copa"]
    tok = prepare_tokenizer(parse_config([a for a in data["argv"] if "<work>" not in a and a != "--data-dir"]))
    for sample in data["patterns"]["fast_decode/pattern_0"]["dev"]["samples"]:
        enc = sample["text"][:sample["mask"]]
        for c, target in enumerate(sample["dec_target"]):
            answer = target[:sum(sample["dec_logit_mask"][c])]
            ids, _, _, positions, sep, targets, loss = build_decoder_input(enc, answer, len(sample["text"]),
                                                                           len(target), tok)
            assert ids.tolist() == sample["dec_text"][c] and positions.tolist() == sample["dec_position"][c]
            assert targets.tolist() == target and loss.tolist() == sample["dec_logit_mask"][c]
            assert sep == sample["dec_mask"][c]


@pytest.mark.parametrize("config", ["bert_large", "gpt2_10B"])
def test_build_input_from_ids_matches_copa_cloze_reference(reference_dir, config):
    """Multi-token cloze samples of the original rebuilt from their part A and answer."""
    from tests.helpers import parse_config

    data = json.loads((reference_dir / "tasks" / f"superglue_pvp__{config}.json").read_text())["tasks"]["copa"]
    cfg = parse_config([a for a in data["argv"] if "<work>" not in a and a != "--data-dir"])
    tok, cfg = configure_tokenizer(cfg)
    checked = 0
    for sample in data["patterns"]["default/pattern_0"]["dev"]["samples"]:
        for c in range(len(sample["text"])):
            text, sep = sample["text"][c], sample["mask"][c] if isinstance(sample["mask"], list) else sample["mask"]
            answer = [t for t, m in zip(sample["target"][c], sample["logit_mask"][c]) if m]
            ids, _, _, positions, got_sep, targets, loss = build_input_from_ids(
                text[1:sep - 1], None, answer, len(text), tok, cfg, add_piece=True)
            assert (ids.tolist(), positions.tolist(), got_sep) == (text, sample["position"][c], sep)
            assert targets.tolist() == sample["target"][c] and loss.tolist() == sample["logit_mask"][c]
            checked += 1
    assert checked
