"""Every sample and example of the original's ``SuperGlueDataset``, field by field.

The reference files hold, for two tokenizer setups (GLM-Large's BERT, GLM-10B's GPT-2), every task,
every pattern id (plus COPA's fast decoding and the generative WSC config), both the dev and the
train split: the ``InputExample`` list and each item of the dataset.  ``X__shape`` / ``X__dtype``
describe the numpy arrays the original produced.
"""

import numpy as np
import pytest

from tasks.superglue.dataset import SuperGlueDataset

from .conftest import task_args

CONFIGS = ("bert_large", "gpt2_10B")
PVP_TASKS = ("copa", "rte", "boolq", "cb", "wic", "wsc", "wsc_generative", "multirc", "record")
CLASSIFICATION_TASKS = ("copa", "rte", "boolq", "cb", "wic", "wsc", "multirc", "record")


def sample_differences(got, expected):
    """Human-readable differences between a dataset item and its reference record."""
    fields = [k for k in expected if not k.endswith(("__shape", "__dtype"))]
    problems = [] if list(got) == fields else [f"keys {list(got)} != {fields}"]
    for key in fields:
        if key not in got:
            continue
        value, want = got[key], expected[key]
        if f"{key}__shape" in expected:
            value = np.asarray(value)
            if list(value.shape) != expected[f"{key}__shape"] or str(value.dtype) != expected[f"{key}__dtype"]:
                problems.append(f"{key}: shape/dtype {value.shape}/{value.dtype}, expected "
                                f"{expected[key + '__shape']}/{expected[key + '__dtype']}")
            elif value.tolist() != want:
                problems.append(f"{key}: {value.tolist()} != {want}")
        elif type(value) is not type(want) or value != want:
            problems.append(f"{key}: {value!r} != {want!r}")
    return problems


def check_split(cfg, tokenizer, split, expected):
    dataset = SuperGlueDataset(cfg, split, tokenizer)
    assert [e.to_dict() for e in dataset.examples] == expected["examples"]
    if "variable_num_choices" in expected:
        assert dataset.variable_num_choices == expected["variable_num_choices"]
    assert len(dataset) == len(expected["samples"])
    for index, want in enumerate(expected["samples"]):
        problems = sample_differences(dataset[index], want)
        assert not problems, f"{split} sample {index} ({want.get('uid')}):\n" + "\n".join(p[:600] for p in problems)


def variant_overrides(variant, multi_token):
    """``default/pattern_3`` -> pattern 3; ``fast_decode/pattern_0`` -> pattern 0 with --fast-decode."""
    kind, pattern = variant.split("/")
    return {"pattern_id": int(pattern.rsplit("_", 1)[1]), "fast_decode": kind == "fast_decode",
            "multi_token": multi_token}


@pytest.mark.parametrize("task", PVP_TASKS)
@pytest.mark.parametrize("config", CONFIGS)
def test_cloze_samples_match_reference(load_reference, tokenizer_for, task_data_dir, config, task):
    recorded = load_reference(f"superglue_pvp__{config}")["tasks"][task]
    checked = 0
    for variant, splits in recorded["patterns"].items():
        cfg = task_args(recorded["argv"], task_data_dir, **variant_overrides(variant, recorded["multi_token"]))
        tokenizer = tokenizer_for(cfg)
        for split, expected in splits.items():
            check_split(cfg, tokenizer, split, expected)
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize("task", PVP_TASKS)
def test_task_facts_match_reference(load_reference, task_data_dir, task):
    """Labels, multi-token mode and the advertised pattern ids."""
    from tasks.superglue.registry import get_task

    recorded = load_reference("superglue_pvp__bert_large")["tasks"][task]
    cfg = task_args(recorded["argv"], task_data_dir)
    spec = get_task(cfg.task.task)
    assert spec.labels == recorded["labels"]
    assert spec.is_multi_token(cfg) == recorded["multi_token"]
    assert spec.pvp.available_patterns() == recorded["available_patterns"]


@pytest.mark.parametrize("task", CLASSIFICATION_TASKS)
@pytest.mark.parametrize("config", CONFIGS)
def test_classification_samples_match_reference(load_reference, tokenizer_for, task_data_dir, config, task):
    recorded = load_reference(f"superglue_classification__{config}")["tasks"][task]
    cfg = task_args(recorded["argv"], task_data_dir)
    assert not cfg.task.cloze_eval
    tokenizer = tokenizer_for(cfg)
    for split, expected in recorded["splits"].items():
        check_split(cfg, tokenizer, split, expected)
