"""Pattern and reader behaviour the reference files do not exercise: continuous prompts, prefix
prompts, answer segments, COPA's connective encoder, ``--multi-token`` on a single-token task,
FewGLUE splits, test splits, WSC repairs and variants, ReCoRD negative sampling."""

import random

import numpy as np
import pytest

from tasks.superglue.dataset import SuperGlueDataset
from tasks.superglue.processors.wsc import repair_spans
from tasks.superglue.pvp.parts import MASK, SLOT, place_prompts
from tasks.superglue.registry import generative_wsc, get_task

from .conftest import bert_args, write_split

RTE = [{"premise": "A dog runs in the park.", "hypothesis": "An animal is outside.", "label": "entailment", "idx": 0}]
COPA = [{"premise": "The pond froze.", "choice1": "People skated on the pond.", "choice2": "Boats sailed.",
         "question": "effect", "idx": 0, "label": 0},
        {"premise": "She was cold.", "choice1": "The heater broke.", "choice2": "She ate.", "question": "cause",
         "idx": 1, "label": 0}]


def ids_of(tok, text):
    return tok.EncodeAsIds(text).tokenization


def test_prompt_tokens_are_spread_over_the_slots():
    parts_a, parts_b = [SLOT, "x", SLOT], [MASK, SLOT]
    assert place_prompts(parts_a, parts_b, 5, enabled=False)[:2] == (["x"], [MASK])
    assert place_prompts(parts_a, parts_b, 5, enabled=True) == ([2, "x", 2], [MASK, 1], 3)
    assert place_prompts(parts_a, parts_b, 2, enabled=True) == ([1, "x", 1], [MASK], 3)  # last slot gets none


def test_continuous_prompt_positions(bert, tmp_path):
    data = write_split(tmp_path, "val.jsonl", RTE)
    plain = SuperGlueDataset(bert_args("rte", data), "dev", bert)[0]
    cfg = bert_args("rte", data, "--continuous-prompt", "--num-prompt-tokens", "3", "--prefix-prompt", "2")
    dataset = SuperGlueDataset(cfg, "dev", bert)
    prompted = dataset[0]
    assert dataset.pvp.spell_length == 5 and get_task("rte").spell_length(cfg) == 5
    positions = prompted["prompt_pos"].tolist()
    # two prefix tokens after [CLS], then one token in each of RTE pattern 0's three slots
    assert len(positions) == 5 and positions[:2] == [1, 2]
    assert (prompted["text"][positions] == 0).all()
    kept = np.delete(prompted["text"], positions)
    sep = int(plain["mask"])
    assert kept[:sep].tolist() == plain["text"][:sep].tolist()
    assert int(prompted["mask"]) == sep + 5
    # the [sop] reading the answer sits at the (shifted) mask position
    mask_at = prompted["text"].tolist().index(bert.get_command("MASK").Id)
    assert prompted["position"][0][int(prompted["mask"])] == mask_at


def test_multi_token_flag_on_a_single_token_task(bert, tmp_path):
    cfg = bert_args("rte", write_split(tmp_path, "val.jsonl", RTE), "--multi-token")
    dataset = SuperGlueDataset(cfg, "dev", bert)
    sample = dataset[0]
    assert dataset.multi_token and sample["text"].shape == (2, 64)
    eop = bert.get_command("eop").Id
    for row, word in enumerate(("yes", "no")):
        scored = sample["target"][row][sample["logit_mask"][row] == 1].tolist()
        assert scored == ids_of(bert, word) + [eop]


def test_answer_segments(bert, tmp_path):
    data = write_split(tmp_path, "val.jsonl", COPA[:1])
    cfg = bert_args("copa", data, "--segment-length", "2")
    sample = SuperGlueDataset(cfg, "dev", bert)[0]
    eop = bert.get_command("eop").Id
    answers = [ids_of(bert, " people skated on the pond") + [eop], ids_of(bert, " boats sailed") + [eop]]
    lengths = [(len(a) + 1) // 2 for a in answers]
    assert sample["segment_id"].tolist() == [0] * lengths[0] + [1] * lengths[1]
    rows = [sample["target"][i][sample["logit_mask"][i] == 1].tolist() for i in range(sum(lengths))]
    assert rows[:lengths[0]] == [answers[0][i:i + 2] for i in range(0, len(answers[0]), 2)]
    # the second segment's context already holds the first segment before the blank
    mask = bert.get_command("MASK").Id
    second = sample["text"][1].tolist()
    at = second.index(mask)
    assert second[at - 2:at] == answers[0][:2]


def test_copa_connective_encoder(bert, tmp_path):
    data = write_split(tmp_path, "val.jsonl", COPA)
    sample = SuperGlueDataset(bert_args("copa", data, "--pattern-id", "2"), "dev", bert)[1]
    assert "prompt_pos" not in sample and sample["text"].shape == (2, 64)
    eop, mask = bert.get_command("eop").Id, bert.get_command("MASK").Id
    for row, alternative in enumerate((" the heater broke", " she ate")):
        text = sample["text"][row].tolist()
        sep = int(sample["mask"][row])
        assert sample["target"][row][sample["logit_mask"][row] == 1].tolist() == ids_of(bert, " because") + [eop]
        body = ids_of(bert, '"') + ids_of(bert, "the heater broke") + ids_of(bert, '" or "') + \
            ids_of(bert, "she ate") + ids_of(bert, '"?') + ids_of(bert, "She was cold") + [mask] + \
            ids_of(bert, alternative)
        assert text[1:sep - 1] == body
    # pattern 3 is the same encoder; with continuous prompts it has no pattern and says so
    same = SuperGlueDataset(bert_args("copa", data, "--pattern-id", "3"), "dev", bert)[1]
    assert same["text"].tolist() == sample["text"].tolist()
    with pytest.raises(ValueError, match="pattern 3"):
        SuperGlueDataset(bert_args("copa", data, "--pattern-id", "3", "--continuous-prompt"), "dev", bert)


def test_copa_training_data_is_mirrored(bert, tmp_path):
    data = write_split(tmp_path, "train.jsonl", COPA)
    examples = SuperGlueDataset(bert_args("copa", data), "train", bert).examples
    assert [e.guid for e in examples] == ["train-0", "train-1", "train-0m", "train-1m"]
    assert examples[2].meta["choice1"] == "Boats sailed." and examples[2].label == 1


def test_few_superglue_and_test_splits(bert, tmp_path):
    write_split(tmp_path, "dev32.jsonl", RTE)
    write_split(tmp_path, "val.jsonl", RTE * 2)
    unlabeled = [{k: v for k, v in r.items() if k != "label"} for r in RTE]
    write_split(tmp_path, "test.jsonl", unlabeled)
    few = bert_args("rte", tmp_path, "--few-superglue")
    assert len(SuperGlueDataset(few, "dev", bert)) == 1
    test = SuperGlueDataset(few, "test", bert)
    assert len(test) == 2 and test.examples[0].guid == "test-0"
    plain = SuperGlueDataset(bert_args("rte", tmp_path), "test", bert)
    assert plain.examples[0].label is None and plain[0]["label"] == 0 and not plain.labeled


WSC_LINE = {"text": "Mark told Pete many lies about himself, which Pete included in his, book.",
            "target": {"span1_text": "mark", "span1_index": 1, "span2_text": "his", "span2_index": 11},
            "idx": 3, "label": True, "candidates": [{"text": "Pete"}, {"text": "Pete"}, {"text": "lies"}]}


def test_wsc_span_repair():
    words, span1, span2 = repair_spans(WSC_LINE["text"], 1, "mark", 11, "his", "f:1")
    assert span1 == 0 and span2 == 11 and words[11:13] == ["his", ","]  # "his," split off its comma
    words, _, span2 = repair_spans("he saw his dog", 0, "he", 1, "his", "f:1")  # one word off
    assert span2 == 2 and words == ["he", "saw", "his", "dog"]
    with pytest.raises(ValueError, match="f:1.*pronoun 'her'"):
        repair_spans("a b c d", 0, "a", 2, "her", "f:1")


def test_wsc_reader_variants(bert, tmp_path):
    negative = dict(WSC_LINE, idx=4, label=False)
    many = dict(WSC_LINE, idx=5, candidates=[{"text": f"c{i}"} for i in range(11)])
    data = write_split(tmp_path, "train.jsonl", [WSC_LINE, negative, many])
    cloze = SuperGlueDataset(bert_args("wsc", data, "--wsc-negative", "--loss-func", "mix"), "train", bert)
    # cloze training keeps positives only; candidates are de-duplicated; 11 candidates -> 9 + (2 padded to 9)
    assert [e.guid for e in cloze.examples] == ["train-3", "train-5", "train-5"]
    assert cloze.examples[0].meta["candidates"] == ["Pete", "lies"]
    assert cloze.examples[2].meta["candidates"] == ["c9", "c10"] + [f"c{i}" for i in range(7)]
    assert cloze.variable_num_choices and cloze[0]["text"].shape == (3, 64) and cloze[0]["label"] == 0

    one = SuperGlueDataset(bert_args("wsc1", data, cloze_eval=False), "train", bert)
    assert [(e.text_b, e.label) for e in one.examples[:4]] == [("mark", "True"), ("Pete", "False"),
                                                              ("lies", "False"), ("mark", "False")]
    # the classification input pairs the marked sentence with each example's own candidate
    assert one.processor.get_classifier_input(one.examples[1])[1] == "Pete"
    assert "*his*" in one.processor.get_classifier_input(one.examples[1])[0]
    with pytest.raises(ValueError, match="without --cloze-eval"):
        SuperGlueDataset(bert_args("wsc1", data), "train", bert)


def test_generative_wsc_switch():
    assert generative_wsc(bert_args("WSC", "d"))
    assert not generative_wsc(bert_args("wsc", "d", "--wsc-negative"))
    assert not generative_wsc(bert_args("wsc", "d", cloze_eval=False))


def record_line(entities, answers, text="ABCDEFGHIJKLMNOP"):
    return {"idx": 7, "passage": {"text": text, "entities": [{"start": i, "end": i} for i in entities]},
            "qas": [{"query": "Who is @placeholder here?", "idx": 2,
                     "answers": [{"text": text[i], "start": i, "end": i} for i in answers]}]}


def test_record_negative_sampling(bert, tmp_path):
    line = record_line(range(13), [4, 4, 2])
    data = write_split(tmp_path, "train.jsonl", [line])
    write_split(tmp_path, "val.jsonl", [line])
    train = SuperGlueDataset(bert_args("record", data), "train", bert).examples
    assert [e.guid for e in train] == ["train-p7-q2-a0", "train-p7-q2-a1"]
    shuffler = random.Random(42)  # one generator per file, drawn in example order
    for example, answer in zip(train, "EC"):
        others = [c for c in "ABCDEFGHIJKLM" if c not in "EC"]
        shuffler.shuffle(others)
        assert example.meta["candidates"] == [answer] + others[:9] and example.num_choices == 10
        assert example.label == "0" and example.meta["answers"] == [answer]
    dev = SuperGlueDataset(bert_args("record", data), "dev", bert)
    assert dev.examples[0].meta["candidates"] == list("ABCDEFGHIJKLM") and dev.examples[0].idx == 2
    assert dev.examples[0].meta["answers"] == ["E", "C"]
    assert len(SuperGlueDataset(bert_args("record", data), "dev", bert, for_train=True)) == 2


def test_dataset_orders_examples_by_number_of_choices(bert, tmp_path):
    lines = [record_line(range(5), [1]), record_line(range(3), [0]), record_line(range(4), [2])]
    for i, line in enumerate(lines):
        line["idx"] = i
    data = write_split(tmp_path, "val.jsonl", lines)
    dataset = SuperGlueDataset(bert_args("record", data), "dev", bert)
    assert [e.num_choices for e in dataset.examples] == [3, 4, 5]
    assert [dataset[i]["text"].shape[0] for i in range(3)] == [3, 4, 5]


def test_classification_encoding_with_pretrained_bert(bert, tmp_path):
    data = write_split(tmp_path, "val.jsonl", COPA[:1])
    sample = SuperGlueDataset(bert_args("copa", data, "--pretrained-bert", cloze_eval=False), "dev", bert)[0]
    assert list(sample) == ["text", "label", "types", "padding_mask", "uid"]
    assert sample["text"].shape == sample["types"].shape == (2, 64)
    # [CLS] premise because [SEP] choice [eos]: types 0 up to [SEP], 1 after
    sep = sample["text"][0].tolist().index(bert.get_command("sep").Id)
    assert sample["types"][0][:sep + 1].tolist() == [0] * (sep + 1) and sample["types"][0][sep + 1] == 1


def test_truncation_takes_from_the_longer_shortenable_side():
    from tasks.superglue.pvp.parts import truncate

    parts_a, parts_b = [([1, 2, 3], True)], [([4, 5], True), ([6], False)]
    # [CLS] + 6 tokens + [eos] + [sop] = 9; fit 7: the first cut comes from A (3 > 2), the second from
    # B (a tie goes to B)
    assert truncate(parts_a, parts_b, None, 7)
    assert parts_a == [([1, 2], True)] and parts_b == [([4], True), ([6], False)]
    # an answer takes the place of the lone [sop]: 4 tokens + [CLS] + [eos] + 2 answer tokens = 8
    assert not truncate(parts_a, parts_b, [7, 8], 8)
    assert truncate(parts_a, parts_b, [7, 8], 7) and parts_a == [([1], True)]


def test_long_passages_are_cut_from_the_end(bert, tmp_path):
    passage = " ".join(f"word{i}" for i in range(80))
    data = write_split(tmp_path, "val.jsonl", [{"question": "is it long", "passage": passage, "idx": 0,
                                                "label": True}])
    sample = SuperGlueDataset(bert_args("boolq", data, "--pattern-id", "4", seq_length=40), "dev", bert)[0]
    text = sample["text"].tolist()
    assert len(text) == 40 and text[-1] != 0 and int(sample["mask"]) == 39  # full: A is 39 tokens + [sop]
    decoded = bert.DecodeIds(text[1:38])
    assert decoded.startswith("based on the following passage is it long ?") and "word0" in decoded
    assert "word79" not in decoded
