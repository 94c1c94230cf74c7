"""LAMBADA / WikiText / LM-line datasets against the original's samples (reference item 6)."""

import json

import numpy as np
import pytest

import tasks.language_model.dataset as lm_dataset
from tests.tasks.conftest import recorded_args
from data_utils.tokenizers import configure_tokenizer

CONFIGS = ("bert_large", "gpt2_10B")


@pytest.mark.parametrize("config", CONFIGS)
def test_lm_eval_datasets_match_reference(reference_dir, task_data_dir, config):
    data = json.loads((reference_dir / "tasks" / f"lm_eval__{config}.json").read_text())
    tokenizer = None
    for name, case in data["datasets"].items():
        cfg = recorded_args(case["argv"], task_data_dir, case["overrides"])
        if tokenizer is None:
            tokenizer, cfg = configure_tokenizer(cfg)
        else:
            _, cfg = configure_tokenizer(cfg)   # the vocabulary size and eod id of the tokenizer
        dataset = getattr(lm_dataset, case["builder"])(tokenizer, cfg)
        assert type(dataset).__name__ == case["dataset_class"], name
        assert len(dataset) == case["num_samples"], name
        if "context_tokens" in case:
            assert dataset.context_tokens == case["context_tokens"], name
            assert dataset.label_tokens == case["label_tokens"], name
        else:
            assert [list(d) for d in dataset.documents] == case["documents"], name
            assert dataset.num_original_tokens == case["num_original_tokens"], name
            assert dataset.num_tokenized_tokens == case["num_tokenized_tokens"], name
        for i, expected in enumerate(case["samples"]):
            sample = dataset[i]
            fields = sorted(k for k in expected if "__" not in k)
            assert sorted(sample) == fields, (name, i)
            for key in fields:
                value = np.asarray(sample[key])
                assert list(value.shape) == expected[key + "__shape"], (name, i, key)
                assert str(value.dtype) == expected[key + "__dtype"], (name, i, key)
                assert value.tolist() == expected[key], (name, i, key)
