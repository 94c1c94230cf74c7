"""The task tables: every --task in exactly one family, every released recipe in its table, and adding
a task is one row plus its reader/pattern code (docs/finetuning.md, "Adding a task")."""

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest

import finetune_glm
from tests.helpers import parse_config
from tasks import registry, zero_shot
from tasks.errors import TaskError
from tasks.seq2seq import registry as seq2seq_registry
from tasks.seq2seq.dataset import Seq2SeqDataset, build_dataset, dataset_class
from tasks.seq2seq.example import InputExample
from tasks.seq2seq.files import DEV_STEMS, read_lines, split_path
from tasks.seq2seq.summarization import summary_source_tokens
from tasks.superglue import registry as superglue_registry
from tasks.superglue.dataset import SuperGlueDataset
from tasks.superglue.examples import InputExample as ClozeExample
from tasks.superglue.processors.base import SuperGlueProcessor, field, read_json_lines
from tasks.superglue.pvp.base import PVP
from tasks.superglue.pvp.parts import MASK, shortenable
from data_utils import prepare_tokenizer
from tests.tasks.conftest import TINY_BERT_GLM
from tests.tasks.helpers_tasks import write_jsonl

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bert_tokenizer():
    return prepare_tokenizer(parse_config(TINY_BERT_GLM))


def test_every_task_belongs_to_one_family():
    tables = [set(family.tasks) for family in registry.FAMILIES]
    assert sum(len(t) for t in tables) == len(set().union(*tables)), "a task name is in two family tables"
    assert [family.name for family in registry.FAMILIES] == ["zero-shot", "seq2seq", "superglue"]
    for family in registry.FAMILIES:
        for name, spec in family.tasks.items():
            assert name == spec.name == name.lower()
            found = registry.find_task(name.upper())
            assert found.family is family and found.spec is spec


def test_unknown_task_lists_every_family():
    with pytest.raises(TaskError) as caught:
        registry.find_task("summarise")
    message = str(caught.value)
    assert message.startswith("unknown --task 'summarise'; available: ")
    assert all(name in message for name in ("cnn_dm_original", "copa", "lambada", "multichoice"))
    with pytest.raises(TaskError, match="--task is required"):
        registry.find_task(None)


RECIPES = sorted((ROOT / "config_tasks").glob("seq_*.sh")) + sorted((ROOT / "config_tasks").glob("zero_*.sh"))


@pytest.mark.parametrize("config", RECIPES, ids=lambda p: p.name)
def test_each_released_recipe_names_a_row_that_names_it(config):
    """The ``recipe`` field of a row is the config_tasks file whose TASK_NAME is the row (the
    ``*_uni.sh`` variants share their task's row)."""
    out = subprocess.run(["bash", "-c", f'source "{config}" && printf "%s" "$TASK_NAME"'],
                         env={"DATA_ROOT": "/tmp/glm-data", "MODEL_TYPE": "tiny", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    family, spec = registry.find_task(out.stdout)
    assert family.name == ("seq2seq" if config.name.startswith("seq_") else "zero-shot")
    assert spec.recipe == config.name.replace("_uni.sh", ".sh")


def test_rows_name_only_existing_recipes():
    for table in (seq2seq_registry.TASKS, zero_shot.TASKS):
        for spec in table.values():
            assert spec.recipe is None or (ROOT / "config_tasks" / spec.recipe).is_file(), spec


def test_the_retokenization_is_a_row_field_not_a_task_name():
    """``cnn_dm_org`` names "no rewriting" (the original scorer's name), which cnn_dm_original and every
    other plain-text task use with GPT-2 vocabularies; BERT vocabularies always get the PTB rules."""
    rows = seq2seq_registry.TASKS
    assert rows["cnn_dm_original"].retokenization_for("GPT2BPETokenizer") == "cnn_dm_org"
    assert rows["gigaword"].retokenization_for("GPT2BPETokenizer") == "gigaword"
    assert {row.retokenization_for("BertWordPieceTokenizer") for row in rows.values()} == {"cnn_dm"}


# ----------------------------------------------------------------------------------- a new seq2seq task
class HeadlineFormat:
    """The "dataset code" of a new task: ``{train,dev,test}.tsv`` lines ``article<TAB>headline``;
    the source is packed as the summarisation tasks pack theirs."""

    def __init__(self, spec, data_dir, tokenizer):
        self.spec, self.data_dir, self.tokenizer = spec, data_dir, tokenizer

    def examples(self, split):
        path = split_path(self.data_dir, self.spec.split_stems, split, ".tsv")
        examples, origins = [], []
        for number, line in enumerate(read_lines(path), 1):
            article, headline = line.split("\t")
            examples.append(InputExample(guid=f"{split}-{number - 1}", text_a=article, text_b=headline,
                                         meta={"ref": headline}))
            origins.append(f"{path}:{number}")
        return examples, origins

    def source_tokens(self, example, mask_id, max_length, ids):
        return summary_source_tokens(self.tokenizer, example.text_a, mask_id, max_length, ids.enc)

    @staticmethod
    def target_text(example):
        return example.text_b


HEADLINES = [("the cat sat on the mat all day long", "cat sits"), ("a dog ran in the park at noon", "dog runs")]


@pytest.fixture
def headline_task(monkeypatch, tmp_path):
    """The one row that registers the task, and a folder of its files."""
    row = seq2seq_registry.TaskSpec("headline", None, format=HeadlineFormat, split_stems=DEV_STEMS)
    monkeypatch.setitem(seq2seq_registry.TASKS, "headline", row)
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.tsv").write_text("".join(f"{a}\t{h}\n" for a, h in HEADLINES), encoding="utf-8")
    return row, tmp_path


def test_a_new_seq2seq_row_is_found_and_builds_its_datasets(headline_task, bert_tokenizer):
    row, folder = headline_task
    cfg = parse_config(TINY_BERT_GLM + ["--finetune", "--task", "Headline", "--data-dir", str(folder),
                                     "--src-seq-length", "24", "--tgt-seq-length", "8"])
    assert registry.find_task(cfg.task.task) == (registry.FAMILIES[1], row)
    assert finetune_glm.task_family(cfg) == "seq2seq"
    assert dataset_class(cfg.task.task) is Seq2SeqDataset
    train = build_dataset(cfg, "train", bert_tokenizer)
    assert [e.text_b for e in train.example_list] == ["cat sits", "dog runs"]
    item = train[1]
    eop, pad = bert_tokenizer.get_command("eop").Id, bert_tokenizer.get_command("pad").Id
    target = [int(t) for t, keep in zip(item["target"][24:], item["loss_mask"][24:]) if keep and t not in (eop, pad)]
    assert bert_tokenizer.DecodeIds(target) == "dog runs"
    assert " ".join(bert_tokenizer.DecodeIds(item["text"][:24].tolist()).split()).count("dog ran in the park") == 1
    test = build_dataset(cfg, "test", bert_tokenizer)
    assert len(test) == 2 and "target" not in test[0] and train.where(0).endswith("train.tsv:1")


@pytest.mark.slow
def test_a_new_seq2seq_row_trains_and_scores_through_the_driver(headline_task, tiny_pretrained, tmp_path):
    _, folder = headline_task
    argv = TINY_BERT_GLM + ["--finetune", "--task", "headline", "--data-dir", str(folder), "--src-seq-length",
                            "24", "--tgt-seq-length", "8", "--load-pretrained", str(tiny_pretrained),
                            "--summary-dir", str(tmp_path / "out"), "--experiment-name", "headline", "--epochs", "1",
                            "--batch-size", "2", "--log-interval", "1000"]
    results = finetune_glm.main(argv)
    assert set(results["test"]) == {"rouge-1", "rouge-2", "rouge-l"}
    run_dir = tmp_path / "out" / "runs" / "headline"
    assert json.loads((run_dir / "test_results.json").read_text())["task"] == "headline"
    assert (run_dir / "test.jsonl.refs").read_text().splitlines() == [h for _, h in HEADLINES]


# ----------------------------------------------------------------------------------- a new cloze task
class SentimentProcessor(SuperGlueProcessor):
    """The reader of a new SuperGLUE-style task: ``{"idx", "sentence", "label"}`` lines."""

    def get_labels(self):
        return ["negative", "positive"]

    def create_examples(self, path, set_type, for_train=False):
        return [ClozeExample(guid=f"{set_type}-{field(record, 'idx', where)}",
                             text_a=field(record, "sentence", where),
                             label=self.checked_label(record.get("label"), where), idx=record["idx"])
                for _, where, record in read_json_lines(path)]


class SentimentPVP(PVP):
    """Its pattern: ``<sentence> It was [MASK].``, verbalised `` bad`` / `` good``."""

    VERBALIZER = {"negative": [" bad"], "positive": [" good"]}

    def get_parts(self, example):
        return [shortenable(example.text_a), " It was", MASK, "."], []

    def verbalize(self, label):
        return self.VERBALIZER[label]


def test_a_new_cloze_row_is_found_and_encodes_its_pattern(monkeypatch, tmp_path, bert_tokenizer):
    row = superglue_registry.TaskSpec("sentiment", SentimentProcessor, SentimentPVP)
    monkeypatch.setitem(superglue_registry.TASKS, "sentiment", row)
    records = [{"idx": 0, "sentence": "A fine film.", "label": "positive"},
               {"idx": 1, "sentence": "A dull film.", "label": "negative"}]
    for name in ("train.jsonl", "val.jsonl"):
        write_jsonl(tmp_path / name, records)
    cfg = parse_config(
        TINY_BERT_GLM +
        ["--finetune", "--cloze-eval", "--task", "sentiment", "--data-dir",
         str(tmp_path), "--seq-length", "32"])
    assert registry.find_task("sentiment") == (registry.FAMILIES[2], row)
    assert finetune_glm.task_family(cfg) == "superglue"
    dataset = SuperGlueDataset(cfg, "train", bert_tokenizer)
    assert [e.label for e in dataset.examples] == ["positive", "negative"]
    item = dataset[0]
    text = bert_tokenizer.DecodeIds([int(t) for t in item["text"] if int(t) != bert_tokenizer.get_command("pad").Id])
    assert re.search(r"a fine film \. it was \[MASK\] \.", text), text
    good, bad = (bert_tokenizer.EncodeAsIds(word).tokenization[0] for word in (" good", " bad"))
    assert sorted(int(t) for t in item["target"]) == sorted([bad, good])   # the verbalizer ids, label order


# ----------------------------------------------------------------------------------- no task lists elsewhere
# Strings that equal a task name but mean something else (the original's names for rule sets and folders).
NOT_TASK_REFERENCES = {("tasks/seq2seq/retokenize.py", "cnn_dm"), ("tasks/seq2seq/retokenize.py", "gigaword"),
                       ("tasks/seq2seq/dataset.py", "blank")}   # re-tokenisation names; the blank test folder


def _code_strings(path):
    """The string constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_only_the_tables_name_tasks():
    """The entry script and the task modules of the seq2seq, language-model and multiple-choice families
    name no task: what differs between tasks is a field of the task's row."""
    tables = {ROOT / "tasks/seq2seq/registry.py", ROOT / "tasks/zero_shot.py"}
    modules = [
        ROOT / "finetune_glm.py", ROOT / "tasks/registry.py", *sorted((ROOT / "tasks/seq2seq").glob("*.py")), *sorted(
            (ROOT / "tasks/language_model").glob("*.py")), *sorted((ROOT / "tasks/multichoice").glob("*.py"))
    ]
    names = set(registry.task_names())
    found = [(str(path.relative_to(ROOT)), text) for path in modules if path not in tables
             for text in _code_strings(path) if text in names]
    assert set(found) <= NOT_TASK_REFERENCES, found
