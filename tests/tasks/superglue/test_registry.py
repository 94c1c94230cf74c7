"""The task table the driver reads: names, labels, model mode, prompt length, prediction flip."""

import pytest

from tasks.superglue.registry import get_task, task_names

from .conftest import bert_args


def test_task_names_are_case_insensitive():
    for name in ("COPA", "WSC", "RTE", "BoolQ", "CB", "WiC", "MultiRC", "ReCoRD", "AFQMC", "TNEWS", "CLUEWSC"):
        assert get_task(name).name == name.lower()
    assert {"ax-b", "ax-g", "wsc1"} <= set(task_names())


@pytest.mark.parametrize("task, cloze, flags, multi", [
    ("copa", True, (), True), ("record", True, (), True), ("wsc", True, (), True), ("rte", True, (), False),
    ("rte", True, ("--multi-token",), True), ("copa", False, (), True), ("record", False, (), True),
    ("rte", False, (), False), ("multirc", False, (), False)])
def test_model_mode(task, cloze, flags, multi):
    assert get_task(task).is_multi_token(bert_args(task, "d", *flags, cloze_eval=cloze)) == multi


def test_spell_length_and_wsc_flip():
    prompt = ("--continuous-prompt", "--num-prompt-tokens", "3", "--prefix-prompt", "1")
    assert get_task("boolq").spell_length(bert_args("boolq", "d", *prompt)) == 4
    assert get_task("record").spell_length(bert_args("record", "d", *prompt)) == 0  # no prompt slots
    assert get_task("afqmc").spell_length(bert_args("afqmc", "d", *prompt)) == 0
    assert get_task("rte").spell_length(bert_args("rte", "d")) == 0  # no prompt tokens asked for
    assert [get_task("wsc").choice_to_label(c) for c in (0, 1, 2)] == [1, 0, 0]
    assert [get_task("rte").choice_to_label(c) for c in (0, 1)] == [0, 1]
    assert get_task("copa").labels == [0, 1] and get_task("wsc").labels == ["False", "True"]


def test_adding_a_task_as_documented(bert, tmp_path):
    """The worked example of docs/superglue.md ("Adding a task") runs as written."""
    from tasks.superglue.examples import InputExample
    from tasks.superglue.processors.base import SuperGlueProcessor, field, read_json_lines
    from tasks.superglue.pvp.base import PVP
    from tasks.superglue.pvp.parts import MASK, SLOT, shortenable

    from .conftest import write_split

    class SentimentProcessor(SuperGlueProcessor):
        def get_labels(self):
            return ["neg", "pos"]

        def create_examples(self, path, set_type, for_train=False):
            return [InputExample(guid=f"{set_type}-{record['id']}", text_a=field(record, "review", where),
                                 label=self.checked_label(record.get("stars"), where), idx=record["id"])
                    for _, where, record in read_json_lines(path)]

    class SentimentPVP(PVP):
        PATTERN_IDS = (0,)
        COUNTS_PROMPTS = True
        VERBALIZER = {"neg": [" bad"], "pos": [" great"]}

        def get_parts(self, example):
            return [shortenable(example.text_a), SLOT, " All in all, it was", MASK, "."], []

        def verbalize(self, label):
            return self.VERBALIZER[label]

    data = write_split(tmp_path, "val.jsonl", [{"review": "A fine film.", "stars": "pos", "id": 3}])
    cfg = bert_args("rte", data)
    processor = SentimentProcessor(cfg)
    example = processor.get_examples("dev", data)[0]
    sample = SentimentPVP(cfg, bert, processor.get_labels(), cfg.data.seq_length).encode(example)
    ids = bert.EncodeAsIds
    body = ids("A fine film.").tokenization + ids(" All in all, it was").tokenization + \
        [bert.get_command("MASK").Id] + ids(".").tokenization
    assert sample["text"][1:len(body) + 1].tolist() == body and sample["label"] == 1
    assert sample["target"].tolist() == [ids(" bad").tokenization[0], ids(" great").tokenization[0]]
