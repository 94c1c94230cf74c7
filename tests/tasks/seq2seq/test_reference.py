"""Seq2seq datasets against the original's items and examples (reference item 6, seq2seq__*.json)."""

import json

import numpy as np
import pytest

import tasks.seq2seq.dataset as seq2seq_dataset
from data_utils.tokenizers import configure_tokenizer
from tests.tasks.conftest import recorded_args

CONFIGS = ("bert_large", "gpt2_10B")
SPLITS = ("train", "dev", "test")


def _cases(reference_dir, config):
    return json.loads((reference_dir / "tasks" / f"seq2seq__{config}.json").read_text())["datasets"]


def assert_item_equal(sample, expected, label):
    """Same keys, and every array with the recorded shape, dtype and values."""
    fields = [k for k in expected if "__" not in k]
    assert list(sample) == fields, label
    for key in fields:
        if key == "uid":
            assert sample[key] == expected[key], label
            continue
        value = sample[key]
        assert isinstance(value, np.ndarray), (label, key)
        assert list(value.shape) == expected[key + "__shape"], (label, key)
        assert str(value.dtype) == expected[key + "__dtype"], (label, key)
        assert value.tolist() == expected[key], (label, key)


@pytest.mark.parametrize("config", CONFIGS)
def test_seq2seq_datasets_match_reference(reference_dir, task_data_dir, config):
    tokenizer = None
    for name, case in _cases(reference_dir, config).items():
        cfg = recorded_args(case["argv"], task_data_dir)
        if tokenizer is None:
            tokenizer, cfg = configure_tokenizer(cfg)
        else:
            _, cfg = configure_tokenizer(cfg)   # the vocabulary size and eod id of the tokenizer
        cls = getattr(seq2seq_dataset, case["dataset_class"])
        assert seq2seq_dataset.dataset_class(cfg.task.task) is cls, name
        for split in SPLITS:
            recorded = case["splits"][split]
            dataset = cls(cfg, split, tokenizer)
            label = f"{config}/{name}/{split}"
            assert [e.to_dict() for e in dataset.example_list] == recorded["examples"], label
            assert list(dataset.examples) == [e["guid"] for e in recorded["examples"]], label
            assert len(dataset) == len(recorded["samples"]), label
            for i, expected in enumerate(recorded["samples"]):
                assert_item_equal(dataset[i], expected, f"{label}/{i}")


@pytest.mark.parametrize("case_name", ["customization_sep", "customization_mask_pad_token"])
def test_customization_batches_match_forward_main(reference_dir, tmp_path, case_name):
    """forward_main.pt's customization cases: CustomizationDataset (toy_char tokenizer, train split)
    stacked into a batch equals what the original handed to the model (get_batch passes the collated
    fields through; loss_mask as float)."""
    import torch

    from tests.helpers import parse_config

    case = torch.load(reference_dir / "model" / "forward_main.pt", weights_only=True)["cases"][case_name]
    sources, targets = zip(*case["source_target_pairs"])
    (tmp_path / "train.source").write_text("".join(s + "\n" for s in sources))
    (tmp_path / "train.target").write_text("".join(t + "\n" for t in targets))
    argv = ["--block-lm", "--tokenizer-type", "CharacterLevelTokenizer", "--task", "customization",
            "--data-dir", str(tmp_path), "--src-seq-length", str(case["src_seq_length"]),
            "--tgt-seq-length", str(case["tgt_seq_length"])]
    if case_name.endswith("mask_pad_token"):
        argv.append("--mask-pad-token")
    tokenizer, cfg = configure_tokenizer(parse_config(argv))
    dataset = seq2seq_dataset.CustomizationDataset(cfg, "train", tokenizer)
    items = [dataset[i] for i in range(len(dataset))]

    def stack(key):
        return torch.from_numpy(np.stack([item[key] for item in items]))

    assert torch.equal(stack("text"), case["input_ids"])
    assert torch.equal(stack("position_id"), case["position_ids"])
    assert torch.equal(stack("target"), case["labels"])
    assert torch.equal(stack("loss_mask").float(), case["loss_mask"])
    assert torch.equal(stack("attention_mask"), case["attention_mask"])
