"""Malformed seq2seq data is refused with the file (and line) named."""

import pytest

from tasks.jsonl import TaskDataError
from tasks.seq2seq.dataset import BlankLMDataset, CustomizationDataset, ExtractionDataset, Seq2SeqDataset, build_dataset
from tests.tasks.seq2seq.conftest import BERT, GPT2, seq2seq_args, squad_document, write_json, write_lines


def test_source_and_target_of_different_lengths(tmp_path, bert_tokenizer):
    write_lines(tmp_path / "train.source", ["one", "two", "three"])
    write_lines(tmp_path / "train.target", ["1", "2"])
    with pytest.raises(TaskDataError, match=r"train\.source:3: no matching line in .*train\.target"):
        Seq2SeqDataset(seq2seq_args(BERT, "gigaword", tmp_path), "train", bert_tokenizer)
    with pytest.raises(TaskDataError, match=r"train\.source:3"):
        CustomizationDataset(seq2seq_args(BERT, "customization", tmp_path), "train", bert_tokenizer)


def test_missing_split_file_is_named(tmp_path, bert_tokenizer):
    write_lines(tmp_path / "val.source", ["x"])
    with pytest.raises(TaskDataError, match=r"val\.target: split file not found"):
        Seq2SeqDataset(seq2seq_args(BERT, "cnn_dm", tmp_path), "dev", bert_tokenizer)
    with pytest.raises(TaskDataError, match=r"valid\.source: split file not found"):
        ExtractionDataset(seq2seq_args(BERT, "extraction", tmp_path), "dev", bert_tokenizer)
    with pytest.raises(TaskDataError, match=r"dev-v2\.0\.json: split file not found"):
        Seq2SeqDataset(seq2seq_args(BERT, "squad", tmp_path), "test", bert_tokenizer)
    write_lines(tmp_path / "test.txt", ["a b c"])
    with pytest.raises(TaskDataError, match=r"blank/test\.maskratio0\.2\.blank: masked test file not found"):
        BlankLMDataset(seq2seq_args(BERT, "blank", tmp_path, 24, 8, "--blank-maskratio", "0.2"), "test", bert_tokenizer)


def test_bad_json_and_bad_squad_fields(tmp_path, bert_tokenizer):
    (tmp_path / "train.json").write_text('{"data": [\n  {"paragraphs": [}\n]}')
    with pytest.raises(TaskDataError, match=r"train\.json:2: not valid JSON"):
        Seq2SeqDataset(seq2seq_args(BERT, "squad_generation", tmp_path), "train", bert_tokenizer)
    write_json(tmp_path / "dev.json", [{"paragraphs": []}])
    with pytest.raises(TaskDataError, match=r"dev\.json: expected a SQuAD file"):
        Seq2SeqDataset(seq2seq_args(BERT, "squad_generation", tmp_path), "dev", bert_tokenizer)
    document = squad_document([("q7", "Who?", ["one"])])
    del document["data"][0]["paragraphs"][0]["qas"][0]["question"]
    write_json(tmp_path / "test.json", document)
    with pytest.raises(TaskDataError, match=r"test\.json: .*qas\[0\] \(id 'q7'\): no 'question'"):
        Seq2SeqDataset(seq2seq_args(BERT, "cmrc", tmp_path), "test", bert_tokenizer)
    write_json(tmp_path / "test.json", squad_document([("q8", "Who?", [])]))
    with pytest.raises(TaskDataError, match=r"'q8'\): question generation needs an answer"):
        Seq2SeqDataset(seq2seq_args(BERT, "squad_generation", tmp_path), "test", bert_tokenizer)


def test_squad_question_that_leaves_no_room(tmp_path, bert_tokenizer):
    write_json(tmp_path / "train-v2.0.json", squad_document([("q1", "why " * 30, ["one"])]))
    with pytest.raises(TaskDataError, match=r"'q1'\): the question takes 30 tokens"):
        Seq2SeqDataset(seq2seq_args(BERT, "squad", tmp_path, 24, 8), "train", bert_tokenizer)


def test_xsum_summary_without_a_section(tmp_path, bert_tokenizer):
    write_json(tmp_path / "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json", {"train": ["7"], "validation": [], "test": []})
    write_lines(tmp_path / "7.summary", ["[SN]FIRST-SENTENCE[SN]", "A summary."])
    with pytest.raises(TaskDataError, match=r"7\.summary: no \[SN\]RESTBODY\[SN\] section"):
        Seq2SeqDataset(seq2seq_args(BERT, "xsum", tmp_path), "train", bert_tokenizer)
    write_json(tmp_path / "XSum-TRAINING-DEV-TEST-SPLIT-90-5-5.json", {"train": ["8"]})
    with pytest.raises(TaskDataError, match="no 'validation' list"):
        Seq2SeqDataset(seq2seq_args(BERT, "xsum", tmp_path), "dev", bert_tokenizer)


def test_source_without_a_mask(tmp_path, bert_tokenizer):
    write_lines(tmp_path / "test.source", ["The capital of [MASK] is Paris.", "No blank in this line."])
    write_lines(tmp_path / "test.target", ["France", "x"])
    dataset = ExtractionDataset(seq2seq_args(BERT, "extraction", tmp_path, 16, 8), "test", bert_tokenizer)
    assert dataset[0]["text"].shape == (17,)
    with pytest.raises(TaskDataError, match=r"test\.source:2: the source has no mask token"):
        dataset[1]
    # a mask cut off by --src-seq-length is just as missing
    write_lines(tmp_path / "test.source", ["one two three four five six seven eight [MASK]"])
    write_lines(tmp_path / "test.target", ["nine"])
    with pytest.raises(TaskDataError, match=r"test\.source:1: the source has no mask"):
        ExtractionDataset(seq2seq_args(BERT, "extraction", tmp_path, 4, 8), "test", bert_tokenizer)[0]


def test_more_masks_than_spans(tmp_path, bert_tokenizer):
    write_lines(tmp_path / "train.source", ["[MASK] and [MASK] and [MASK]"])
    write_lines(tmp_path / "train.target", ["a|b"])
    dataset = ExtractionDataset(seq2seq_args(BERT, "extraction", tmp_path, 16, 8), "train", bert_tokenizer)
    with pytest.raises(TaskDataError, match=r"train\.source:1: the source has 3 masks but the target only 2"):
        dataset[0]


def test_prompt_longer_than_the_source_length(tmp_path, gpt2_tokenizer):
    write_lines(tmp_path / "train.source", ["An article."])
    write_lines(tmp_path / "train.target", ["A summary."])
    dataset = Seq2SeqDataset(seq2seq_args(GPT2, "cnn_dm_original", tmp_path, 3, 8), "train", gpt2_tokenizer)
    with pytest.raises(TaskDataError, match=r"train\.source:1: the source takes 4 tokens, more than"):
        dataset[0]


def test_unknown_task_split_and_missing_lengths(tmp_path, bert_tokenizer):
    with pytest.raises(ValueError, match=r"unknown seq2seq task 'summarize'; expected one of blank, cmrc, cnn_dm"):
        build_dataset(seq2seq_args(BERT, "summarize", tmp_path), "train", bert_tokenizer)
    with pytest.raises(ValueError, match=r"unknown split 'validation'; expected one of train, dev, test"):
        build_dataset(seq2seq_args(BERT, "cnn_dm", tmp_path), "validation", bert_tokenizer)
    with pytest.raises(ValueError, match="Seq2SeqDataset does not serve --task blank"):
        Seq2SeqDataset(seq2seq_args(BERT, "blank", tmp_path), "train", bert_tokenizer)
    from tests.helpers import parse_config
    with pytest.raises(ValueError, match="--src-seq-length and --tgt-seq-length"):
        build_dataset(parse_config([*BERT, "--task", "cnn_dm", "--data-dir", str(tmp_path)]), "train", bert_tokenizer)
    with pytest.raises(TaskDataError, match="--data-dir"):
        build_dataset(parse_config([*BERT, "--task", "cnn_dm", "--src-seq-length", "8", "--tgt-seq-length", "4"]),
                      "train", bert_tokenizer)
