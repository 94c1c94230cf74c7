"""Multi-task pretraining data: pattern ensembles, the size-weighted per-index-seeded task mixture,
the PET wrapper that turns a task sample into a blank-infilling sample, batches, bad input."""

import numpy as np
import pytest
import torch

from tasks.superglue.errors import TaskConfigError, TaskDataError
from tasks.superglue.multitask import (MultiTaskDataset, PatternEnsembleDataset, build_multi_task_loaders,
                                       collate_multi_task, multi_task_names, pet_wrapper, resolve_multi_tasks)
from tasks.superglue.registry import get_task

from .conftest import bert_args
from .multitask_fixtures import write_task_files

SEQ = 64


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_task_files(tmp_path_factory.mktemp("multitask"))


def ensemble(bert, data, task, directory, split="train"):
    cfg = bert_args("rte", data, seq_length=SEQ)
    return PatternEnsembleDataset(cfg, get_task(task), str(data / directory), split, bert, SEQ)


def test_pattern_ensemble_covers_every_pattern(bert, data):
    ds = ensemble(bert, data, "agnews", "Agnews")
    assert [pvp.pattern_id for pvp in ds.pvps] == [0, 1, 2, 3, 4, 5] and len(ds) == 2 * 6
    # item p * n + i is example i under pattern p
    for pattern in range(6):
        for example in range(2):
            assert ds[pattern * 2 + example]["text"].tolist() == ds.pvps[pattern].encode(ds.examples[example])[
                "text"].tolist()
    assert ds.dataset_name == "agnews-train" and ds.labels == ["1", "2", "3", "4"]


def test_pet_wrapper_single_token(bert, data):
    sample = ensemble(bert, data, "sst2", "SST-2")[0]
    wrapped = pet_wrapper(sample)
    assert sorted(wrapped) == ["attention_mask", "loss_mask", "position_id", "target", "text"]
    assert wrapped["text"].tolist() == sample["text"].tolist()
    assert wrapped["loss_mask"].tolist() == sample["logit_mask"].tolist()
    assert int(wrapped["attention_mask"]) == int(sample["mask"])
    assert wrapped["position_id"].tolist() == sample["position"].tolist()
    # the label's verbalizer is what the [sop] must produce
    great = bert.EncodeAsIds(" great").tokenization[0]
    assert sample["label"] == 1 and wrapped["target"].tolist() == [great] * SEQ
    scored = np.flatnonzero(wrapped["loss_mask"]).tolist()
    assert scored == [int(sample["mask"])] and wrapped["text"][scored[0]] == bert.get_command("sop").Id


def test_pet_wrapper_multi_token_keeps_the_gold_row(bert, data):
    sample = ensemble(bert, data, "race", "RACE")[0]
    label = sample["label"]
    wrapped = pet_wrapper(sample)
    for key, source in (("text", "text"), ("target", "target"), ("loss_mask", "logit_mask"),
                        ("position_id", "position")):
        assert wrapped[key].tolist() == sample[source][label].tolist()
    assert int(wrapped["attention_mask"]) == int(sample["mask"][label])
    brown = bert.EncodeAsIds(" brown").tokenization + [bert.get_command("eop").Id]
    assert wrapped["target"][wrapped["loss_mask"] == 1].tolist() == brown


class Sized:
    """A stand-in task dataset: ``n`` items, each saying where it came from."""

    def __init__(self, name, n):
        self.name, self.n = name, n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return (self.name, index)


def test_weights_follow_capped_sizes():
    sizes = [100, 2_500, 300_000]
    ds = MultiTaskDataset(["a", "b", "c"], [Sized(n, s) for n, s in zip("abc", sizes)])
    expected = np.array([100, 2_500, 200_000], dtype=float) ** 0.8
    assert ds.weights == pytest.approx(expected / expected.sum())
    assert len(ds) == sum(sizes) * 1000
    draws = [ds.locate(k)[0] for k in range(6000)]
    frequencies = np.bincount(draws, minlength=3) / len(draws)
    assert frequencies == pytest.approx(ds.weights, abs=0.02)
    assert all(0 <= item < sizes[task] for task, item in (ds.locate(k) for k in range(200)))


def test_items_are_a_function_of_index_and_seed():
    def make(seed):
        return MultiTaskDataset(["a", "b"], [Sized("a", 50), Sized("b", 70)], seed=seed)

    first, again, other = make(1234), make(1234), make(7)
    indices = [0, 1, 2, 99, 12_345, 119_999]
    assert [first.locate(k) for k in indices] == [again.locate(k) for k in reversed(indices)][::-1]
    assert [first.locate(k) for k in range(50)] != [other.locate(k) for k in range(50)]


def test_empty_task_is_refused():
    with pytest.raises(TaskDataError, match="'b' has no examples"):
        MultiTaskDataset(["a", "b"], [Sized("a", 3), Sized("b", 0)])


def test_collate(bert, data):
    ds = ensemble(bert, data, "race", "RACE")
    batch = collate_multi_task([pet_wrapper(ds[0]), pet_wrapper(ds[1])])
    assert batch["mode"] == "multi-task"
    assert batch["text"].shape == (2, SEQ) and batch["position_id"].shape == (2, 2, SEQ)
    assert batch["attention_mask"].shape == (2,) and batch["text"].dtype == torch.int64


def test_loader_resumes_exactly(bert, data):
    """A loader started at iteration k yields the batches an uninterrupted one yields from batch k
    (two gradient-accumulation steps per iteration)."""
    cfg = bert_args("rte", data, "--multi-batch-size", "2", "--multi-seq-length", "48",
                     "--gradient-accumulation-steps", "2", "--num-workers", "0", seq_length=SEQ)
    tasks = resolve_multi_tasks(["sst2", "RACE"], str(data))
    train, valid = build_multi_task_loaders(cfg, bert, tasks)
    assert valid is not None
    full = [b["text"] for _, b in zip(range(8), train)]
    assert full[0].shape == (2, 48)
    resumed, _ = build_multi_task_loaders(cfg, bert, tasks, start_iter=2, train=True)
    later = [b["text"] for _, b in zip(range(4), resumed)]
    assert all(torch.equal(a, b) for a, b in zip(full[4:], later))
    # only validation: no train loader
    assert build_multi_task_loaders(cfg, bert, tasks, train=False)[0] is None


def test_unknown_task_lists_the_names(tmp_path):
    with pytest.raises(TaskConfigError) as error:
        resolve_multi_tasks(["mnli", "rte"], str(tmp_path))
    assert "'rte'" in str(error.value) and ", ".join(multi_task_names()) in str(error.value)
    assert multi_task_names() == ["mnli", "cola", "mrpc", "qnli", "qqp", "sst2", "agnews", "yelp-polarity",
                                  "yelp-full", "yahoo", "squad", "race"]


def test_missing_directory_is_named(tmp_path, data):
    with pytest.raises(TaskDataError, match=f"{tmp_path}/QQP"):
        resolve_multi_tasks(["qqp"], str(tmp_path))
    with pytest.raises(TaskDataError, match="--data-dir"):
        resolve_multi_tasks(["qqp"], None)
    # the original's directory names, or the task names themselves
    (tmp_path / "qqp").mkdir()
    assert resolve_multi_tasks(["QQP"], str(tmp_path))[0][2] == str(tmp_path / "qqp")
    assert resolve_multi_tasks(["yelp-full"], str(data))[0][2] == str(data / "yelp_review_full_csv")


def test_sequence_longer_than_the_position_table_is_refused(bert, data):
    cfg = bert_args("rte", data, "--multi-seq-length", "1024", seq_length=SEQ)
    with pytest.raises(TaskConfigError, match="--multi-seq-length 1024"):
        build_multi_task_loaders(cfg, bert, resolve_multi_tasks(["sst2"], str(data)))


def test_data_parallel_ranks_split_each_global_batch(bert, data, monkeypatch):
    """Rank r of 2 gets the r-th half of each global batch a single rank with twice the batch gets."""
    from glm import mpu

    tasks = resolve_multi_tasks(["sst2", "race"], str(data))

    def batches(rank, world, size):
        monkeypatch.setattr(mpu, "data_parallel_rank_and_size", lambda: (rank, world))
        cfg = bert_args("rte", data, "--multi-batch-size", str(size), "--num-workers", "0", seq_length=SEQ)
        train, _ = build_multi_task_loaders(cfg, bert, tasks)
        return [b["text"] for _, b in zip(range(3), train)]

    whole, first, second = batches(0, 1, 4), batches(0, 2, 2), batches(1, 2, 2)
    for full, a, b in zip(whole, first, second):
        assert torch.equal(full, torch.cat([a, b]))
