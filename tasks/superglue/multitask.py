"""Multi-task pretraining data (spec section 7.5): labelled task examples, written with every pattern of
their task, as blank-infilling samples the pretraining loss consumes.

``pretrain_glm.py --multi-task-data mnli race ... --data-dir D`` reads each task from its directory
under ``D`` and builds, per split (train; dev for validation):

1. one :class:`PatternEnsembleDataset` per task: item ``p * n + i`` is example ``i`` written with the
   task's ``p``-th pattern (the original's ``pattern_ensemble``);
2. a :class:`MultiTaskDataset` over them: item ``k`` draws a task with probability proportional to
   ``min(size, 200000) ** 0.8`` and one of its items, from a generator seeded by ``(--seed, k)``, so
   item ``k`` is the same in every run, on every rank, before and after a resume;
3. :func:`pet_wrapper` keeps the sequence of the correct answer as a pretraining sample: the answer
   (or verbalizer) is the part-B text to generate at the blank, ``logit_mask`` becomes the loss mask;
4. a loader with the pretraining loader's resumable distributed batch order
   (:func:`data_utils.configure_data.make_data_loader`), batches tagged ``mode = "multi-task"``.

Only ``pretrain_glm.py`` imports this module, and only when ``--multi-task-data`` is given.
"""

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from ..jsonl import MissingSplitError
from .dataset import SuperGlueDataset
from .errors import TaskConfigError, TaskDataError
from .registry import pretraining_task

# Multi-task name -> the directory the original expected under --data-dir (the lower-case name is
# accepted too).  The registry task of each is the name itself.
MULTI_TASK_DIRECTORIES = {
    "mnli": "MNLI", "cola": "CoLA", "mrpc": "MRPC", "qnli": "QNLI", "qqp": "QQP", "sst2": "SST-2",
    "agnews": "Agnews", "yelp-polarity": "yelp_review_polarity_csv", "yelp-full": "yelp_review_full_csv",
    "yahoo": "Yahoo", "squad": "SQuAD", "race": "RACE",
}
SIZE_LIMIT = 200_000     # a task counts at most this many items when weighting
TEMPERATURE = 0.8        # weight = min(size, SIZE_LIMIT) ** TEMPERATURE
VIRTUAL_EPOCHS = 1000    # the dataset's length is this many passes over every task (as the original)
BATCH_KEYS = ("text", "target", "loss_mask", "position_id", "attention_mask")


def multi_task_names():
    """The names ``--multi-task-data`` accepts."""
    return list(MULTI_TASK_DIRECTORIES)


def resolve_multi_tasks(names, data_dir):
    """``[(name, TaskSpec, directory)]`` for the ``--multi-task-data`` names (any case).

    An unknown name raises :class:`TaskConfigError` listing the known ones; a task without its
    directory under ``data_dir`` raises :class:`TaskDataError` naming the directory looked for."""
    if not names:
        raise TaskConfigError(f"--multi-task-data names no task; choose from {', '.join(multi_task_names())}")
    if not data_dir:
        raise TaskDataError("--multi-task-data needs --data-dir: the directory holding one folder per task")
    unknown = [raw for raw in names if str(raw).lower() not in MULTI_TASK_DIRECTORIES]
    if unknown:  # every name is checked before any directory, so one run reports all bad names
        raise TaskConfigError(f"unknown multi-task task{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(repr(raw) for raw in unknown)}; --multi-task-data accepts "
                              f"{', '.join(multi_task_names())}")
    resolved = []
    for raw in names:
        name = str(raw).lower()
        candidates = [os.path.join(data_dir, MULTI_TASK_DIRECTORIES[name]), os.path.join(data_dir, name)]
        directory = next((path for path in candidates if os.path.isdir(path)), None)
        if directory is None:
            raise TaskDataError(f"multi-task data for {name!r} not found: expected the directory {candidates[0]} "
                                f"(or {candidates[1]})")
        resolved.append((name, pretraining_task(name), directory))
    return resolved


def task_config(config, spec, data_dir, seq_length):
    """The pretraining configuration with what the task patterns read set for multi-task data:
    cloze patterns, one sequence per answer, no prompts, no fast decoding.  The flags that shape
    every GLM sample (``--no-block-position``, ``--sentinel-token``, ``--masked-lm``) stay."""
    return config.updated(task=spec.name, data_dir=data_dir, seq_length=seq_length, cloze_eval=True,
                          multi_token=False, segment_length=0, fast_decode=False, continuous_prompt=False,
                          num_prompt_tokens=0, prefix_prompt=0, few_superglue=False)


class PatternEnsembleDataset(SuperGlueDataset):
    """A :class:`~tasks.superglue.dataset.SuperGlueDataset` of one task and split written with every
    pattern of the task: item ``p * len(examples) + i`` is example ``i`` under pattern
    ``available_patterns()[p]``.  ``pvps`` holds the patterns (``pvp`` is the first)."""

    def __init__(self, config, spec, data_dir, split, tokenizer, seq_length):
        # Not SuperGlueDataset.__init__: that one reads one --task, --data-dir and --pattern-id.
        config = task_config(config, spec, data_dir, seq_length)
        self.spec, self.config, self.split, self.tokenizer = spec, config, split, tokenizer
        self.dataset_name = f"{spec.name}-{split}"
        self.processor = spec.make_processor(config)
        self.cloze_eval = True
        self.pvps = [spec.pvp(config, tokenizer, spec.labels, seq_length, pattern_id=pattern_id, split=split)
                     for pattern_id in spec.pvp.available_patterns()]
        self.pvp = self.pvps[0]
        examples = self.processor.get_examples(split, data_dir)
        self.examples = sorted(examples, key=lambda example: example.num_choices)
        self.labeled = split != "test"

    @property
    def num_truncated(self):
        return sum(pvp.num_truncated for pvp in self.pvps)

    def __len__(self):
        return len(self.examples) * len(self.pvps)

    def __getitem__(self, index):
        pattern, example = divmod(index, len(self.examples))
        return self.pvps[pattern].encode(self.examples[example])


def pet_wrapper(sample):
    """A task sample as a pretraining sample: the correct answer's sequence only.

    Multi-token samples hold one row per answer; the row of ``label`` is kept.  A single-token sample
    has one row whose ``target`` lists every label's verbalizer; the label's verbalizer becomes the
    target everywhere (only the ``[sop]`` position is scored).  Renamed: ``logit_mask`` ->
    ``loss_mask``, ``mask`` -> ``attention_mask``, ``position`` -> ``position_id``."""
    label = int(sample["label"])
    text, target, loss_mask = sample["text"], sample["target"], sample["logit_mask"]
    attention_mask, position_id = sample["mask"], sample["position"]
    if text.ndim == 2:
        text, target, loss_mask = text[label], target[label], loss_mask[label]
        attention_mask, position_id = attention_mask[label], position_id[label]
    else:
        target = np.full_like(text, target[label])
    return {"text": np.asarray(text, dtype=np.int64), "target": np.asarray(target, dtype=np.int64),
            "loss_mask": np.asarray(loss_mask, dtype=np.int64),
            "attention_mask": np.asarray(attention_mask, dtype=np.int64),
            "position_id": np.asarray(position_id, dtype=np.int64)}


class MultiTaskDataset(Dataset):
    """Random items of several task datasets, weighted by size; item ``k`` depends only on ``k`` and
    ``seed``.

    ``weights[t]`` is the probability of task ``t``: ``min(len(dataset), 200000) ** 0.8``, normalised
    (a dataset's length counts every pattern, as the original).  The length is a virtual
    ``1000 x`` the total, so a sequential sampler never runs out."""

    def __init__(self, names, datasets, seed=0, temperature=TEMPERATURE, size_limit=SIZE_LIMIT):
        if len(names) != len(datasets) or not datasets:
            raise ValueError("MultiTaskDataset needs one name per dataset, and at least one dataset")
        self.names, self.datasets, self.seed = list(names), list(datasets), int(seed)
        self.sizes = [len(dataset) for dataset in self.datasets]
        for name, dataset, size in zip(self.names, self.datasets, self.sizes):
            if size == 0:
                split = getattr(dataset, "split", None)
                where = f" in its {split} split" if split else ""
                raise TaskDataError(f"multi-task task {name!r} has no examples{where}")
        weights = np.array([min(size, size_limit) ** temperature for size in self.sizes], dtype=np.float64)
        self.weights = weights / weights.sum()

    def __len__(self):
        return sum(self.sizes) * VIRTUAL_EPOCHS

    def locate(self, index):
        """``(task index, item index)`` of item ``index``."""
        rng = np.random.default_rng([self.seed % 2 ** 32, int(index)])
        task = int(rng.choice(len(self.datasets), p=self.weights))
        return task, int(rng.integers(self.sizes[task]))

    def __getitem__(self, index):
        task, item = self.locate(index)
        return pet_wrapper(self.datasets[task][item])


def collate_multi_task(samples):
    """Stack wrapped samples into a pretraining batch (``attention_mask`` ``[B]``, ``position_id``
    ``[B, 2, L]``) tagged ``mode = "multi-task"`` (its losses are reported as ``Multi loss``)."""
    batch = {key: torch.as_tensor(np.stack([sample[key] for sample in samples])) for key in BATCH_KEYS}
    batch["mode"] = "multi-task"
    return batch


def build_multi_task_datasets(config, tokenizer, tasks, split, seq_length):
    """The :class:`MultiTaskDataset` of ``split`` over ``tasks`` (from :func:`resolve_multi_tasks`),
    or ``None`` for the dev split when a task has none."""
    datasets = []
    for name, spec, directory in tasks:
        try:
            datasets.append(PatternEnsembleDataset(config, spec, directory, split, tokenizer, seq_length))
        except MissingSplitError:
            if split == "train":
                raise
            return None  # validation needs every task's dev split (the Multi loss mixes them)
    return MultiTaskDataset([name for name, _, _ in tasks], datasets, seed=config.training.seed)


def build_multi_task_loaders(config, tokenizer, tasks, start_iter=0, train=True):
    """``(train loader or None, validation loader or None)`` for ``--multi-task-data``.

    Sequences of ``--multi-seq-length`` (default ``--seq-length``) tokens, ``--multi-batch-size``
    (default ``--batch-size``) samples per data-parallel rank and batch.  ``start_iter`` is the number
    of optimizer iterations that used multi-task batches before the resume point (each took
    ``--gradient-accumulation-steps`` batches).  ``train=False`` builds the validation loader only."""
    from data_utils.configure_data import make_data_loader
    from glm import mpu

    seq_length = config.data.multi_seq_length or config.data.seq_length
    if not config.model.transformer_xl and seq_length > config.model.max_position_embeddings:
        raise TaskConfigError(f"--multi-seq-length {seq_length} is larger than the position table "
                              f"(--max-position-embeddings {config.model.max_position_embeddings})")
    batch_size = config.data.multi_batch_size or config.training.batch_size
    rank, world = mpu.data_parallel_rank_and_size()
    accumulation = max(1, int(config.training.gradient_accumulation_steps or 1))

    def loader(dataset, start, steps):
        if dataset is None:
            return None
        # Items are already random (seeded per index): a sequential order keeps resume exact.
        return make_data_loader(dataset, batch_size, rank=rank, world_size=world, shuffle=False,
                                start_iter=start, gradient_accumulation_steps=steps,
                                num_workers=int(config.data.num_workers), collate_fn=collate_multi_task)

    train_set = build_multi_task_datasets(config, tokenizer, tasks, "train", seq_length) if train else None
    valid_set = build_multi_task_datasets(config, tokenizer, tasks, "dev", seq_length)
    return loader(train_set, start_iter, accumulation), loader(valid_set, 0, 1)
