"""The CLUE tasks (AFQMC, TNEWS, CLUEWSC) on small hand-written files.  There are no reference
vectors for them: the expected layouts are written out from the spec's pattern table (section 9.3)."""

import pytest

from tasks.superglue.dataset import SuperGlueDataset
from tasks.superglue.errors import TaskConfigError
from tasks.superglue.processors.clue import mark_spans
from tasks.superglue.registry import get_task
from tests.conftest import shared_dir

from .conftest import write_split

AFQMC = [{"sentence1": "花呗怎么还款", "sentence2": "花呗如何还钱", "label": "1"},
         {"sentence1": "借呗能提额吗", "sentence2": "花呗可以分期吗", "label": "0"}]
TNEWS = [{"label": "103", "label_desc": "news_sports", "sentence": "女排夺冠", "keywords": "女排,冠军"},
         {"label": "109", "label_desc": "news_tech", "sentence": "新手机发布", "keywords": ""}]
CLUEWSC = [{"target": {"span2_index": 9, "span1_index": 0, "span1_text": "小明", "span2_text": "他"},
            "idx": 12, "label": "true", "text": "小明今天很累，所以他早早睡了。"},
           {"target": {"span2_index": 6, "span1_index": 0, "span1_text": "桌子", "span2_text": "它"},
            "id": 13, "label": "false", "text": "桌子上的书，它很旧。"}]


def clue_args(task, data_dir, *argv, seq_length=48, **overrides):
    from tests.helpers import parse_config

    return parse_config(["--block-lm", "--cloze-eval", "--task-mask", "--tokenizer-type", "ChineseSPTokenizer",
                         "--fix-command-token", "--task", task, "--data-dir", str(data_dir),
                         "--seq-length", str(seq_length), *argv], **overrides)


def test_readers(tmp_path):
    afqmc = get_task("AFQMC").make_processor(None)
    examples = afqmc.get_examples("dev", write_split(tmp_path / "afqmc", "dev.json", AFQMC))
    assert [(e.guid, e.idx, e.text_a, e.text_b, e.label) for e in examples] == [
        ("dev-0", 0, "花呗怎么还款", "花呗如何还钱", "1"), ("dev-1", 1, "借呗能提额吗", "花呗可以分期吗", "0")]

    tnews = get_task("tnews").make_processor(None)
    examples = tnews.get_examples("train", write_split(tmp_path / "tnews", "train.jsonl", TNEWS))  # .jsonl too
    assert [(e.text_a, e.text_b, e.label) for e in examples] == [("女排夺冠", "女排,冠军", "103"),
                                                                 ("新手机发布", "", "109")]
    assert len(tnews.get_labels()) == 15

    wsc = get_task("CLUEWSC").make_processor(None)
    examples = wsc.get_examples("dev", write_split(tmp_path / "wsc", "dev.json", CLUEWSC))
    assert [(e.guid, e.idx, e.label) for e in examples] == [("dev-12", 12, "true"), ("dev-13", 13, "false")]
    assert examples[0].meta == {"span1_text": "小明", "span2_text": "他", "span1_index": 0, "span2_index": 9,
                                "span1_length": 2, "span2_length": 1}
    assert mark_spans(examples[0]) == "#小明#今天很累，所以*他*早早睡了。"
    assert wsc.get_classifier_input(examples[1]) == ("#桌子#上的书，*它*很旧。", "桌子")

    bad = dict(CLUEWSC[0], target=dict(CLUEWSC[0]["target"], span2_index=40))
    with pytest.raises(ValueError, match="dev.json:1: span2"):
        wsc.get_examples("dev", write_split(tmp_path / "bad", "dev.json", [bad]))


def test_clue_metrics_and_patterns():
    for name in ("afqmc", "tnews", "cluewsc"):
        assert get_task(name).default_metric == "accuracy"
    assert get_task("afqmc").pvp.PATTERN_IDS == (0, 1) and get_task("tnews").pvp.PATTERN_IDS == (0,)
    assert get_task("cluewsc").pvp.PATTERN_IDS == (0, 1)


VOCAB_DIR = shared_dir() / "assets" / "vocab"


@pytest.fixture(scope="module")
def chinese():
    """GLM-Large-Chinese's tokenizer (needs cog-pretrain.model from the shared assets)."""
    if not (VOCAB_DIR / "cog-pretrain.model").is_file():
        pytest.skip(f"cog-pretrain.model not found in {VOCAB_DIR}")
    from data_utils import prepare_tokenizer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GLM_VOCAB_DIR", str(VOCAB_DIR))
        return prepare_tokenizer(clue_args("afqmc", "."))


def ids(tok, text):
    return tok.EncodeAsIds(text).tokenization


@pytest.mark.parametrize("pattern", [0, 1])
def test_afqmc_cloze(chinese, tmp_path, pattern):
    data = write_split(tmp_path, "dev.json", AFQMC)
    dataset = SuperGlueDataset(clue_args("afqmc", data, "--pattern-id", str(pattern)), "dev", chinese)
    sample = dataset[0]
    enc, eos, mask, sop = (chinese.get_command(n).Id for n in ("ENC", "eos", "MASK", "sop"))
    # the literal "▁" of the original verbalizers is read as white space: "▁是" == "是"
    assert sample["target"].tolist() == [ids(chinese, "不是")[0], ids(chinese, "是")[0]]
    first, second = ids(chinese, "花呗怎么还款"), ids(chinese, "花呗如何还钱")
    if pattern == 0:
        body = first + ids(chinese, "？") + ids(chinese, "你是说") + second + ids(chinese, "？") + [mask] + \
            ids(chinese, "。")
    else:
        body = first + ids(chinese, "？") + [mask] + ids(chinese, "，") + second
    sep = int(sample["mask"])
    assert sample["text"][:sep + 1].tolist() == [enc] + body + [eos, sop]
    assert sample["logit_mask"].tolist().index(1) == sep and sample["label"] == 1
    assert sample["position"][0][sep] == body.index(mask) + 1


def test_cluewsc_cloze(chinese, tmp_path):
    data = write_split(tmp_path, "dev.json", CLUEWSC)
    sample = SuperGlueDataset(clue_args("cluewsc", data), "dev", chinese)[0]
    mask = chinese.get_command("MASK").Id
    body = ids(chinese, "#小明#今天很累，所以*他*早早睡了。") + ids(chinese, "代词'*他*'") + [mask] + \
        ids(chinese, "指#小明#.")
    assert sample["text"][1:int(sample["mask"]) - 1].tolist() == body
    assert sample["target"].tolist() == [ids(chinese, "不是")[0], ids(chinese, "是")[0]] and sample["label"] == 1
    with pytest.raises(TaskConfigError, match="no continuous-prompt slots"):
        cfg = clue_args("cluewsc", data, "--pattern-id", "1", "--continuous-prompt", "--num-prompt-tokens", "2")
        SuperGlueDataset(cfg, "dev", chinese)[0]


def test_tnews_verbalizer_that_is_two_pieces(chinese, tmp_path):
    """居家 (label 106) is two pieces in cog-pretrain (the original asserted on its first sample);
    the dataset refuses at construction, naming the verbalizer."""
    data = write_split(tmp_path, "dev.json", TNEWS)
    with pytest.raises(TaskConfigError, match="'居家' of label '106' is 2 tokens"):
        SuperGlueDataset(clue_args("tnews", data), "dev", chinese)
    sample = SuperGlueDataset(clue_args("tnews", data, cloze_eval=False), "dev", chinese)[0]
    enc, sep_id, eos = (chinese.get_command(n).Id for n in ("ENC", "sep", "eos"))
    expected = [enc] + ids(chinese, "女排夺冠") + [sep_id] + ids(chinese, "女排,冠军") + [eos]
    assert sample["text"][:len(expected)].tolist() == expected and int(sample["mask"]) == len(expected)
    assert sample["label"] == 3
