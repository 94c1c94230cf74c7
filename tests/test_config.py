"""The typed configuration: every flag lands in exactly one frozen group, and the library below the
entry points never sees the argparse namespace."""

import ast
import dataclasses
import json
import os
import pathlib
import re

import pytest

from glm import config as config_module
from glm.arguments import build_parser, get_args
from glm.config import (GROUPS, RunConfig, build_config, format_config_summary, format_resolved_config, group_of,
                        load_resolved_config, save_resolved_config)

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: Modules allowed to handle the argparse namespace: the parser itself and the conversion.
NAMESPACE_OWNERS = {"glm/arguments.py", "glm/config.py"}


def _flag_dests():
    return {action.dest for action in build_parser()._actions if action.dest != "help"}


def _fields():
    return {field.name: field for cls in GROUPS.values() for field in dataclasses.fields(cls)}


def test_every_flag_is_a_field_of_exactly_one_group():
    names = [field.name for cls in GROUPS.values() for field in dataclasses.fields(cls)]
    assert len(names) == len(set(names)), "a field name appears in two groups"
    missing = _flag_dests() - set(names)
    assert not missing, f"flags without a configuration field: {sorted(missing)}"


def test_fields_without_a_flag_are_the_derived_ones():
    derived = set(_fields()) - _flag_dests()
    assert derived == {"dynamic_loss_scale", "eod_token", "rank", "world_size", "cuda", "deepspeed_config_dict"}
    # Only derived values carry a default; flag defaults live in the parser alone.
    for name, field in _fields().items():
        has_default = field.default is not dataclasses.MISSING
        assert has_default == (name in derived), name


def test_build_config_takes_the_parsed_and_derived_values():
    args = get_args(["--hidden-size", "64", "--num-attention-heads", "4", "--lr", "0.5", "--fp16",
                     "--loss-scale", "128", "--batch-size", "6"])
    config = build_config(args)
    assert isinstance(config, RunConfig)
    assert config.model.hidden_size == 64 and config.model.num_attention_heads == 4
    assert config.training.lr == 0.5 and config.training.batch_size == 6
    assert config.precision.fp16 and config.precision.loss_scale == 128
    assert config.precision.dynamic_loss_scale is False      # derived by get_args
    assert config.evaluation.eval_batch_size == 6            # defaults to the batch size
    assert config.parallel.world_size == 1 and config.parallel.rank == 0
    assert config.to_dict() == {name: getattr(args, name) for name in _fields() if hasattr(args, name)} | {
        "eod_token": None, "deepspeed_config_dict": None}


def test_groups_are_frozen_and_updated_returns_a_new_config():
    config = build_config(get_args([]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model.hidden_size = 8
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.model = config.model
    changed = config.updated(vocab_size=50048, eod_token=3, train_iters=7)
    assert (changed.model.vocab_size, changed.data.eod_token, changed.training.train_iters) == (50048, 3, 7)
    assert config.model.vocab_size == 30522 and config.data.eod_token is None   # the original is untouched
    assert changed.training.lr == config.training.lr
    with pytest.raises(KeyError, match="not a GLM configuration field"):
        config.updated(no_such_flag=1)


def test_a_missing_field_is_named():
    values = vars(get_args([]))
    del values["hidden_size"]
    with pytest.raises(ValueError, match="model.hidden_size"):
        build_config(values)
    assert group_of("hidden_size") == "model"


def _library_files():
    for package in ("glm", "data_utils", "tasks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative not in NAMESPACE_OWNERS and "hf_files" not in relative:
                yield relative, ast.parse(path.read_text(encoding="utf-8"), filename=relative)


def test_nothing_below_the_entry_points_handles_the_argparse_namespace():
    """No library module imports argparse, names a parameter ``args`` or reads ``args.<flag>``:
    modules receive the typed groups of glm.config (the exported Hugging Face folder is standalone
    code and is not part of the library)."""
    offenders = []
    for relative, tree in _library_files():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(alias.name == "argparse" for alias in node.names):
                offenders.append(f"{relative}:{node.lineno} imports argparse")
            elif isinstance(node, ast.ImportFrom) and node.module == "argparse":
                offenders.append(f"{relative}:{node.lineno} imports from argparse")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                params = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                if any(param.arg == "args" for param in params):
                    offenders.append(f"{relative}:{node.lineno} takes a parameter named args")
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id == "args" and node.attr in _fields()):
                offenders.append(f"{relative}:{node.lineno} reads args.{node.attr}")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                  and node.func.id in ("getattr", "setattr", "hasattr") and node.args
                  and isinstance(node.args[0], ast.Name) and node.args[0].id == "args"):
                offenders.append(f"{relative}:{node.lineno} {node.func.id}(args, ...)")
    assert not offenders, "\n".join(offenders)


# ---------------------------------------------------------------------------------------------------
# The resolved configuration a run prints and saves
# ---------------------------------------------------------------------------------------------------


def test_format_resolved_config_is_sorted_and_complete():
    config = build_config(get_args(["--lr", "3e-4", "--train-data", "pile"]))
    text = format_resolved_config(config)
    lines = text.splitlines()
    keys = [line.split(":")[0].strip() for line in lines[1:]]
    assert keys == sorted(_fields()) and str(len(keys)) in lines[0]
    assert re.search(r"^  lr +: 0\.0003$", text, re.M)
    assert re.search(r"^  train_data +: \['pile'\]$", text, re.M)


def test_save_resolved_config_round_trip(tmp_path):
    config = build_config(get_args(["--lr", "3e-4", "--train-data", "pile", "cc-news", "--experiment-name", "x"]))
    config = config.updated(save=pathlib.Path("/tmp/somewhere"))  # non-JSON values are stored as text
    path = tmp_path / "run" / "config.json"
    save_resolved_config(config, str(path))
    loaded = load_resolved_config(str(path))
    assert loaded == config.updated(save="/tmp/somewhere")
    assert list(json.loads(path.read_text())) == sorted(_fields())
    # Overwrite in place, no temporary files left behind.
    save_resolved_config(config.updated(lr=1.0), str(path))
    assert load_resolved_config(str(path)).training.lr == 1.0
    assert os.listdir(path.parent) == ["config.json"]


def test_save_resolved_config_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_text('{"old": true}\n')

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(config_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_resolved_config(build_config(get_args([])), str(path))
    assert path.read_text() == '{"old": true}\n'
    assert os.listdir(tmp_path) == ["config.json"]


def test_run_start_prints_a_summary_and_print_config_everything():
    """Issue 20: a 186-line dump opened every run; the terminal now gets a summary."""
    config = build_config(get_args(["--block-lm", "--train-data", "toy.jsonl", "--save", "runs/x", "--bf16"]))
    summary = format_config_summary(config)
    assert len(summary.splitlines()) <= 8
    assert "toy.jsonl" in summary and "bf16" in summary and "runs/x/config.json" in summary
    assert "--print-config" in format_config_summary(build_config(get_args(["--block-lm"])))
    assert len(format_resolved_config(config).splitlines()) > 150
