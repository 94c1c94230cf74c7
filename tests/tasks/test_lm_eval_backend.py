"""The lm-evaluation-harness backend: the harness, offline, on a local YAML task over a local JSONL file
gives the numbers of our own zero-shot multiple-choice evaluation; generation is our blank filling."""

import os

os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("lm_eval")

from data_utils.tokenizers import make_tokenizer  # noqa: E402
from glm.checkpoint import save_model_checkpoint  # noqa: E402
from glm.generation import DecodeConfig, fill_text  # noqa: E402
from tasks.multichoice.dataset import MultiChoiceDataset  # noqa: E402
from tasks.multichoice.evaluate import evaluate_multichoice  # noqa: E402
from tests.helpers import tiny_glm  # noqa: E402
from tests.tasks.helpers_tasks import task_args, write_jsonl  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECORDS = [
    {"inputs_pretokenized": "The capital of France is", "choices_pretokenized": ["Paris", "Berlin", "a small town"],
     "label": 0},
    {"inputs_pretokenized": "Is the sky blue? Answer: [MASK] .", "choices_pretokenized": ["yes", "no"], "label": 1},
    {"inputs_pretokenized": "Two plus two equals", "choices_pretokenized": ["four", "five", "twenty two"], "label": 0},
    {"inputs_pretokenized": "Water boils at one hundred", "choices_pretokenized": ["degrees", "apples"], "label": 0},
]
TASK_YAML = """task: glm_tiny_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{inputs_pretokenized}}}}"
doc_to_choice: "{{{{choices_pretokenized}}}}"
doc_to_target: label
target_delimiter: ""
metric_list:
  - metric: acc
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny GLM with the BERT vocabulary saved as our checkpoint, the JSONL data and the YAML task."""
    root = tmp_path_factory.mktemp("lm_eval")
    torch.manual_seed(3)
    model = tiny_glm(vocab=30592, hidden=32, heads=4, layers=2, max_seq=64, parallel_output=False).eval()
    save_model_checkpoint(str(root / "ckpt"), "release", {"module": model.state_dict(), "iteration": 0})
    write_jsonl(root / "choices.jsonl", RECORDS)
    (root / "tasks").mkdir()
    (root / "tasks" / "glm_tiny_choice.yaml").write_text(TASK_YAML.format(data=root / "choices.jsonl"))
    return SimpleNamespace(root=root, model=model, ckpt=str(root / "ckpt"),
                           model_args=f"pretrained={root / 'ckpt'},num_attention_heads=4,tokenizer=bert,device=cpu")


@pytest.fixture(autouse=True)
def _caches(tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "hf_home"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache / "datasets"))


def our_scores(setup):
    tokenizer = make_tokenizer("BertWordPieceTokenizer", "bert-large-uncased", add_block_symbols=True)
    dataset = MultiChoiceDataset(task_args(seq_length=64), tokenizer, [str(setup.root / "choices.jsonl")])
    return evaluate_multichoice(setup.model, dataset)


def test_harness_equals_our_multiple_choice_evaluation(setup):
    import lm_eval
    import tasks.lm_eval_backend  # noqa: F401  (registers "glm")
    from lm_eval.tasks import TaskManager

    results = lm_eval.simple_evaluate(model="glm", model_args=setup.model_args, tasks=["glm_tiny_choice"],
                                      task_manager=TaskManager(include_path=str(setup.root / "tasks")),
                                      log_samples=True, batch_size=2)
    ours = our_scores(setup)
    samples = sorted(results["samples"]["glm_tiny_choice"], key=lambda s: s["doc_id"])
    harness = [[resp[0][0] for resp in s["resps"]] for s in samples]
    expected = [p["scores"] for p in ours["predictions"]]
    worst = max(abs(a - b) for h, e in zip(harness, expected) for a, b in zip(h, e))
    accuracy = results["results"]["glm_tiny_choice"]["acc,none"]
    print(f"harness accuracy {accuracy:.4f}, ours {ours['accuracy'] / 100:.4f}; max |score difference| {worst:.3g}")
    assert [len(h) for h in harness] == [len(e) for e in expected]
    assert worst < 1e-9
    assert accuracy == pytest.approx(ours["accuracy"] / 100)


@pytest.mark.parametrize("program", [["lm_eval_glm.py"], ["-m", "tasks.lm_eval_backend"]], ids=["script", "alias"])
def test_command_line(setup, tmp_path, program):
    """``python lm_eval_glm.py`` (and its alias ``python -m tasks.lm_eval_backend``) is the lm_eval command with
    the ``glm`` model registered."""
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.run([sys.executable, *program, "--model", "glm", "--model_args", setup.model_args,
                    "--tasks", "glm_tiny_choice", "--include_path", str(setup.root / "tasks"),
                    "--output_path", str(out)], check=True, env=env, capture_output=True, cwd=ROOT, timeout=300)
    found = [os.path.join(d, f) for d, _, files in os.walk(out) for f in files if f.startswith("results")]
    assert len(found) == 1
    accuracy = json.load(open(found[0]))["results"]["glm_tiny_choice"]["acc,none"]
    assert accuracy == pytest.approx(our_scores(setup)["accuracy"] / 100)


def test_generate_until_is_our_blank_filling(setup):
    from tasks.lm_eval_backend import GLMHarnessModel

    lm = GLMHarnessModel(pretrained=setup.ckpt, num_attention_heads=4, tokenizer="bert", device="cpu")
    context = "The capital of France is"
    [text] = lm.generate_until([SimpleNamespace(args=(context, {"until": [], "max_gen_toks": 5}))])
    config = DecodeConfig(max_new_tokens=5, top_k=1, end_ids=(30523, 0), num_tokens=lm.tokenizer.num_tokens)
    expected = fill_text(lm.model, lm.tokenizer, context, config, seq_length=64)
    assert text == expected.blanks[0].generated_text and text
    stop = text.split()[1]
    [cut] = lm.generate_until([SimpleNamespace(args=(context, {"until": [stop], "max_gen_toks": 5}))])
    assert cut == text[:text.index(stop)]
    [rolling] = lm.loglikelihood_rolling([SimpleNamespace(args=("one two three four",))])
    assert rolling < 0
