"""Multi-span layouts (extraction, blank), and turning generated ids into scored text and files."""

import json
import random

import numpy as np

from tasks.inputs import pack_glm_spans
from tasks.seq2seq.char_offsets import wordpiece_offsets
from tasks.seq2seq.dataset import BlankLMDataset, ExtractionDataset
from tasks.seq2seq.example import InputExample
from tasks.seq2seq.outputs import blank_prediction_text, prediction_text, write_prediction_files
from tasks.seq2seq.squad import squad_decode
from tests.tasks.seq2seq.conftest import BERT, GPT2, seq2seq_args, write_lines


def test_pack_glm_spans_layout_padding_and_cut():
    packed = pack_glm_spans([7, 2, 8, 2], [(1, [5, 11], [11, 6]), (3, [5], [6])], max_len=9, pad_id=9,
                            target_pad_id=4)
    assert packed.text.tolist() == [7, 2, 8, 2, 5, 11, 5, 9, 9]
    assert packed.target.tolist() == [0, 0, 0, 0, 11, 6, 6, 4, 4]
    assert packed.loss_mask.tolist() == [0, 0, 0, 0, 1, 1, 1, 0, 0]
    assert packed.position_id.tolist() == [[0, 1, 2, 3, 1, 1, 3, 0, 0], [0, 0, 0, 0, 1, 2, 1, 0, 0]]
    assert packed.sep == 4
    cut = pack_glm_spans([7, 2], [(1, [5, 11, 12], [11, 12, 6])], max_len=4, block_position=False)
    assert cut.text.tolist() == [7, 2, 5, 11] and cut.target.tolist() == [0, 0, 11, 12]
    assert cut.position_id.tolist() == [[0, 1, 1, 1], [0, 0, 1, 1]] and cut.loss_mask.tolist() == [0, 0, 1, 1]


def test_extraction_with_the_gpt2_tokenizer_keeps_mask_and_pads_targets(tmp_path, gpt2_tokenizer):
    write_lines(tmp_path / "train.source", ["[MASK] is the capital of France."])
    write_lines(tmp_path / "train.target", ["Paris"])
    item = ExtractionDataset(seq2seq_args(GPT2, "extraction", tmp_path, 10, 6), "train", gpt2_tokenizer)[0]
    mask, sop, eop, pad = (gpt2_tokenizer.get_command(n).Id for n in ("MASK", "sop", "eop", "pad"))
    paris = gpt2_tokenizer.EncodeAsIds(" Paris").tokenization
    source = gpt2_tokenizer.EncodeAsIds("[MASK] is the capital of France.").tokenization
    assert item["text"].tolist() == source + [pad] * (10 - len(source)) + [sop] + paris + [pad] * (5 - len(paris))
    assert item["target"].tolist() == [0] * 10 + paris + [eop] + [pad] * (5 - len(paris))
    assert item["position_id"][0, 10:10 + len(paris) + 1].tolist() == [source.index(mask)] * (len(paris) + 1)


def test_blank_masks_from_the_seed_and_task_mask(tmp_path, bert_tokenizer):
    text = "the quick brown fox jumps over the lazy dog near the old river bank today ."
    write_lines(tmp_path / "train.txt", [text])
    cfg = seq2seq_args(BERT, "blank", tmp_path, 32, 8, "--blank-maskratio", "0.2", "--seed", "5")
    first, again = BlankLMDataset(cfg, "train", bert_tokenizer)[0], BlankLMDataset(cfg, "train", bert_tokenizer)[0]
    assert all(np.array_equal(first[k], again[k]) for k in ("text", "target", "position_id"))
    # the words chosen are random.Random(seed).sample(range(words), int(words * ratio))
    words = text.split()
    chosen = sorted(random.Random(5).sample(range(len(words)), int(len(words) * 0.2)))
    mask = bert_tokenizer.get_command("MASK").Id
    masks_in_a = int((first["text"][:32] == mask).sum())
    runs = sum(1 for k, i in enumerate(chosen) if k == 0 or i != chosen[k - 1] + 1)
    assert masks_in_a == runs and first["text"].shape == (32 + int(32 * 0.2),)
    # with --task-mask the blanks are [gMASK]
    from data_utils import prepare_tokenizer
    task_args = seq2seq_args(BERT + ["--task-mask"], "blank", tmp_path, 32, 8, "--blank-maskratio", "0.2",
                             "--seed", "5")
    tokenizer = prepare_tokenizer(task_args)
    item = BlankLMDataset(task_args, "train", tokenizer)[0]
    gmask = tokenizer.get_command("gMASK").Id
    assert int((item["text"][:32] == gmask).sum()) == runs and int((item["text"][:32] == mask).sum()) == 0


def test_prediction_text_strips_eop_and_pad(tmp_path, gpt2_tokenizer):
    cfg = seq2seq_args(GPT2, "cnn_dm", tmp_path)
    eop, pad = gpt2_tokenizer.get_command("eop").Id, gpt2_tokenizer.get_command("pad").Id
    ids = gpt2_tokenizer.EncodeAsIds(" A short summary.").tokenization
    assert prediction_text(cfg, gpt2_tokenizer, ids + [eop, pad, pad]) == " A short summary."


def test_squad_answers_come_from_the_context_characters(tmp_path, bert_tokenizer):
    context = "The Caf\u00e9 Royal opened in 1865, near the \u5317\u4eac million\u2603x Gate."
    context_tokens = bert_tokenizer.EncodeAsIds(context).tokenization
    offsets = wordpiece_offsets(bert_tokenizer, context, context_tokens)
    assert [context[s:e] for s, e in offsets] == ["The", "Caf\u00e9", "Royal", "opened", "in", "1865", ",", "near",
                                                   "the", "\u5317", "\u4eac", "million\u2603x", "Gate", "."]
    example = InputExample("dev-0", "", meta={"context": context, "context_tokens": context_tokens,
                                              "token_to_char": offsets})
    cfg = seq2seq_args(BERT, "squad", tmp_path)
    generated = bert_tokenizer.EncodeAsIds("cafe royal").tokenization
    assert prediction_text(cfg, bert_tokenizer, generated, example) == "Caf\u00e9 Royal"
    assert squad_decode(example, bert_tokenizer.EncodeAsIds("3 , 000 people").tokenization,
                        bert_tokenizer) == "3,000 people"
    assert squad_decode(example, bert_tokenizer.EncodeAsIds("N/A").tokenization, bert_tokenizer) == "n / a"
    assert squad_decode(example, [], bert_tokenizer) == ""


def test_blank_prediction_text_fills_the_masks(tmp_path, bert_tokenizer):
    write_lines(tmp_path / "test.txt", ["i don't know what you mean ."])
    (tmp_path / "blank").mkdir()
    write_lines(tmp_path / "blank" / "test.maskratio0.1.blank", ["i <blank> know what [MASK] mean ."])
    dataset = BlankLMDataset(seq2seq_args(BERT, "blank", tmp_path, 16, 8), "test", bert_tokenizer)
    item = dataset[0]
    sop, eop = bert_tokenizer.get_command("sop").Id, bert_tokenizer.get_command("eop").Id
    encode = lambda text: bert_tokenizer.EncodeAsIds(text).tokenization  # noqa: E731
    generated = encode("don ' t") + [sop] + encode("you") + [eop]
    text = blank_prediction_text(bert_tokenizer, item["text"], generated, bert_tokenizer.get_command("MASK").Id)
    assert text == "i don't know what you mean ."


def test_prediction_files(tmp_path):
    examples = [InputExample("test-0", "ctx\nline", meta={"ref": "ref one", "answer": "a"}),
                InputExample("test-1", "ctx", meta={"ref": "ref two", "answer": "b"})]
    write_prediction_files("squad_generation", ["pred one", "pred\ntwo"], examples, str(tmp_path / "test.jsonl"))
    assert (tmp_path / "test.jsonl.hyps").read_text() == "pred one\npred two\n"
    assert (tmp_path / "test.jsonl.refs").read_text() == "ref one\nref two\n"
    assert (tmp_path / "test.jsonl.source").read_text() == "ctx line Answer: a\nctx Answer: b\n"
    squad = [InputExample(f"dev-{i}", "w", idx=qid, meta={"answers": gold}) for i, (qid, gold) in
             enumerate([("q1", ["x"]), ("q1", ["x"]), ("q2", ["N/A"])])]
    write_prediction_files("squad", ["N/A", "x", "n/a"], squad, str(tmp_path / "squad.json"))
    assert json.loads((tmp_path / "squad.json").read_text()) == {"q1": "x", "q2": ""}
    lines = [json.loads(line) for line in (tmp_path / "squad.json.refs").read_text().splitlines()]
    assert lines[0] == {"id": "q1", "pred": "N/A", "gold": ["x"]}
