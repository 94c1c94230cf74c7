"""Bad input a careless user meets (issue 20): every case ends with one clear message that names the
file, flag or line and what to do, a non-zero exit, no traceback, and nothing written.

One table drives the entry points in-process (pretrain_glm.py, finetune_glm.py, generate_samples.py)
on a tiny model; docs/troubleshooting.md lists the same messages.
"""

import dataclasses
import json
from pathlib import Path
from typing import Callable

import pytest

import finetune_glm
import pretrain_glm
import generate_samples
from tests.tasks.conftest import TINY_BERT_GLM, tiny_pretrained  # noqa: F401 -- tiny_pretrained is a fixture
from tests.tasks.helpers_tasks import write_jsonl
from tests.training.test_pretrain_e2e import corpus, flags  # noqa: F401 -- corpus is a fixture

RTE = [{"premise": "The cat sleeps on the red mat.", "hypothesis": "A cat sleeps.", "label": "entailment"},
       {"premise": "The dog runs in the park.", "hypothesis": "A cat flies.", "label": "not_entailment"}]


def write_rte(folder, train=None):
    records = [dict(r, idx=i) for i, r in enumerate(RTE * 2)]
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "train.jsonl", train if train is not None else records)
    write_jsonl(folder / "val.jsonl", records)
    write_jsonl(folder / "test.jsonl", [{k: v for k, v in r.items() if k != "label"} for r in records])
    return folder


@dataclasses.dataclass
class Case:
    entry: str                          # "pretrain", "finetune" or "generate"
    argv: Callable[[Path, dict], list]  # (tmp_path, fixtures) -> the command line
    expect: tuple                       # substrings the message must contain


def _finetune(tmp, *extra):
    return TINY_BERT_GLM + ["--finetune", "--summary-dir", str(tmp / "out"), "--experiment-name", "x",
                            "--num-workers", "0", *extra]


def _ds_config(tmp):
    path = tmp / "ds.json"
    path.write_text(json.dumps({"train_micro_batch_size_per_gpu": 2, "gradient_acumulation_steps": 4,
                                "zero_optimisation": {"stage": 1}}))
    return str(path)


CASES = {
    # 6: an unlabelled training line trained as label 0
    "superglue train line without label": Case(
        "finetune",
        lambda tmp, fx: _finetune(tmp, "--cloze-eval", "--task", "rte", "--seq-length", "64", "--epochs", "1",
                                  "--load-pretrained", str(fx["weights"]), "--data-dir",
                                  str(write_rte(tmp / "rte", train=[dict(RTE[0], idx=0),
                                                                    {"premise": "a b", "hypothesis": "c",
                                                                     "idx": 1}]))),
        ("train.jsonl:2", "no label", "entailment")),
    # 7: random weights scored
    "epochs 0 without weights": Case(
        "finetune",
        lambda tmp, fx: _finetune(tmp, "--cloze-eval", "--task", "rte", "--seq-length", "64", "--epochs", "0",
                                  "--eval-valid", "--data-dir", str(write_rte(tmp / "rte"))),
        ("--epochs 0", "--load-pretrained")),
    # 13: TypeError: '>' not supported between NoneType
    "seq2seq without source/target lengths": Case(
        "finetune",
        lambda tmp, fx: _finetune(tmp, "--task", "cnn_dm", "--seq-length", "64", "--epochs", "1",
                                  "--load-pretrained", str(fx["weights"]), "--data-dir", str(tmp)),
        ("--src-seq-length and --tgt-seq-length", "config_tasks/seq_")),
    # 14: ValueError with advice (--overlapping-eval) that does not apply
    "multichoice seq-length beyond the position table": Case(
        "finetune",
        lambda tmp, fx: _finetune(tmp, "--task", "multichoice", "--epochs", "0", "--seq-length", "512",
                                  "--load-pretrained", str(fx["weights"]), "--test-data", str(tmp / "mc.jsonl")),
        ("--seq-length 512", "--max-position-embeddings 128")),
    # 15: RuntimeError: Error(s) in loading state_dict
    "generation model deeper than the checkpoint": Case(
        "generate",
        lambda tmp, fx: TINY_BERT_GLM + ["--num-layers", "3", "--seq-length", "64", "--out-seq-length", "16",
                                         "--load-pretrained",
                                         str(fx["weights"]), "--input-file", str(tmp / "in.txt")],
        ("does not match the model", "the checkpoint has 2 layers, the model 3 (--num-layers)")),
    # 18: Caught TaskConfigError in DataLoader worker process 0
    "RTE pattern longer than seq-length": Case(
        "finetune",
        lambda tmp, fx: _finetune(tmp, "--cloze-eval", "--task", "rte", "--seq-length", "8", "--epochs", "1",
                                  "--batch-size", "2", "--num-workers", "1", "--load-pretrained",
                                  str(fx["weights"]), "--data-dir", str(write_rte(tmp / "rte"))),
        ("rte-train", "--seq-length 8", "raise --seq-length")),
    # 19: vague argparse messages
    "negative learning rate": Case(
        "pretrain", lambda tmp, fx: ["--block-lm", "--lr", "-1e-3"], ("--lr must be positive", "-0.001")),
    "split that is not numbers": Case(
        "pretrain", lambda tmp, fx: ["--block-lm", "--split", "abc"], ("--split", "'abc'", "949,50,1")),
    "unknown tokenizer type": Case(
        "pretrain", lambda tmp, fx: ["--block-lm", "--tokenizer-type", "Bert"],
        ("--tokenizer-type", "BertWordPieceTokenizer", "GPT2BPETokenizer")),
    # 9: misspelt DeepSpeed keys were ignored (accumulation 1, ZeRO 0)
    "misspelt DeepSpeed JSON keys": Case(
        "pretrain", lambda tmp, fx: ["--block-lm", "--deepspeed", "--deepspeed_config", _ds_config(tmp)],
        ("'gradient_acumulation_steps' (did you mean 'gradient_accumulation_steps'?)",
         "'zero_optimisation' (did you mean 'zero_optimization'?)")),
}


def run_entry(entry, argv, capsys):
    """Run an entry point in-process: ``(exit code, stdout + stderr)``."""
    main = {"pretrain": pretrain_glm.main, "finetune": finetune_glm.run, "generate": generate_samples.main}[entry]
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_ends_with_one_clear_message(name, tmp_path, tiny_pretrained, capsys):  # noqa: F811
    case = CASES[name]
    (tmp_path / "mc.jsonl").write_text(json.dumps({"inputs_pretokenized": "a b", "choices_pretokenized": ["c", "d"],
                                                   "label": 0}) + "\n")
    (tmp_path / "in.txt").write_text("The [MASK] sat.\n")
    code, output = run_entry(case.entry, case.argv(tmp_path, {"weights": tiny_pretrained}), capsys)
    assert code not in (0, None), output[-2000:]
    for expected in case.expect:
        assert expected in output, f"{expected!r} not in:\n{output[-2000:]}"
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, errors           # one message, not a usage dump or a chained report
    assert not (tmp_path / "out" / "runs" / "x").exists() or not any((tmp_path / "out" / "runs" / "x").iterdir())


ROOT = Path(__file__).resolve().parents[1]


def test_launchers_never_pass_overwrite():
    """Issue 20, case 3: finetune_common.sh passed --overwrite, so a second run replaced the first's best/."""
    launchers = sorted(ROOT.glob("scripts/*.sh")) + sorted(ROOT.glob("config_tasks/*.sh"))
    assert launchers
    offenders = [p.name for p in launchers if "--overwrite" in p.read_text()]
    assert offenders == []


def _snapshot(*folders):
    return {p: p.read_bytes() for folder in folders for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_second_run_into_the_same_folders_keeps_the_first(tmp_path, tiny_pretrained, capsys):  # noqa: F811
    """The first run's best/, results and predictions survive a second run with the same --save and
    experiment: it refuses and says how to proceed; --overwrite is the user's explicit choice."""
    argv = _finetune(tmp_path, "--cloze-eval", "--task", "rte", "--seq-length", "64", "--epochs", "1",
                     "--batch-size", "2", "--eval-valid", "--save", str(tmp_path / "save"), "--load-pretrained",
                     str(tiny_pretrained), "--data-dir", str(write_rte(tmp_path / "rte")))
    assert finetune_glm.run(argv) == 0
    results, save = tmp_path / "out" / "runs" / "x", tmp_path / "save" / "x"
    assert (save / "best").is_dir() and (results / "test_results.json").exists()
    before = _snapshot(results, save)
    capsys.readouterr()
    code, output = run_entry("finetune", argv, capsys)
    assert code == 1 and "Traceback" not in output
    assert f"results folder {results}" in output and f"checkpoint folder {save}" in output
    assert "--overwrite" in output and f"--load {save}" in output
    assert _snapshot(results, save) == before
    # Even with --overwrite, weights read from inside the folder the run writes are refused.
    code, output = run_entry("finetune", _finetune(tmp_path, "--task", "rte", "--epochs", "0", "--overwrite",
                                                   "--save", str(tmp_path / "save"), "--load-pretrained",
                                                   str(save / "best"), "--data-dir", str(tmp_path / "rte")), capsys)
    assert code == 1 and "lies inside this run's checkpoint folder" in output
    assert _snapshot(results, save) == before
