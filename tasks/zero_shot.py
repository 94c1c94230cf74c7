"""The zero-shot family: evaluation without training (``--epochs 0``) of a pretrained GLM (spec 9.3, 9.5).

One :class:`ZeroShotSpec` row per ``--task`` in :data:`TASKS` names the dataset builder and the
evaluator; :func:`run` is the family's entry (``finetune_glm.py`` hands it the task): it loads the
pretrained weights, evaluates and writes ``<summary-dir>/runs/<experiment-name>/test_results.json``.
The datasets live in :mod:`tasks.language_model` and :mod:`tasks.multichoice`, which know no task
names.
"""

import dataclasses
import json
import logging
import os
import time
from typing import Callable, Optional

from .errors import TaskError
from .language_model.dataset import build_lambada_dataset, build_lm_dataset, build_wikitext103_dataset
from .language_model.evaluate import evaluate_lm
from .multichoice.dataset import build_multichoice_dataset
from .multichoice.evaluate import evaluate_multichoice

logger = logging.getLogger("finetune_glm")


def _evaluate_lm(model, data, config, device):
    return evaluate_lm(model, data, batch_size=config.evaluation.eval_batch_size, device=device)


def _multichoice(tokenizer, config):
    # Multiple-choice samples place the input and the choice at positions up to --seq-length: the
    # model's position table must reach that far (checked here, before any data is read).
    if config.data.seq_length > config.model.max_position_embeddings:
        raise TaskError(
            f"--seq-length {config.data.seq_length} is longer than the model's position table "
            f"(--max-position-embeddings {config.model.max_position_embeddings}): pass --seq-length "
            f"{config.model.max_position_embeddings} or less (scripts/evaluate_multichoice.sh: set SEQ_LENGTH)")
    return build_multichoice_dataset(tokenizer, config)


def _evaluate_multichoice(model, data, config, device):
    return evaluate_multichoice(model, data, batch_size=config.evaluation.eval_batch_size, device=device,
                                length_penalty=config.generation.length_penalty)


@dataclasses.dataclass(frozen=True)
class ZeroShotSpec:
    """A zero-shot task: how its data is read and how the model is scored on it."""
    name: str                                   # the --task value (lower case)
    build_dataset: Callable                     # (tokenizer, config) -> dataset
    evaluate: Callable                          # (model, dataset, config, device) -> metrics dict
    recipe: Optional[str] = None                # its released config, config_tasks/<recipe>


TASKS = {spec.name: spec for spec in (
    # "lambda" is the original's spelling, kept by the released configs.
    ZeroShotSpec("lambda", build_lambada_dataset, _evaluate_lm, "zero_lambada.sh"),
    ZeroShotSpec("lambada", build_lambada_dataset, _evaluate_lm),
    ZeroShotSpec("wikitext", build_wikitext103_dataset, _evaluate_lm, "zero_wikitext.sh"),
    ZeroShotSpec("language_model", build_lm_dataset, _evaluate_lm, "zero_lm.sh"),
    ZeroShotSpec("multichoice", _multichoice, _evaluate_multichoice),
)}


def task_names():
    """The zero-shot ``--task`` values (lower case; matching ignores case)."""
    return sorted(TASKS)


def find_task(name):
    """The :class:`ZeroShotSpec` of ``name`` (any case), or ``None``."""
    return TASKS.get(str(name).lower()) if name else None


def check_flags(config, spec):
    """Zero-shot tasks only evaluate: refuse a training run before anything is loaded."""
    if config.training.epochs not in (None, 0):
        raise TaskError(f"--task {config.task.task} is a zero-shot evaluation: pass --epochs 0 "
                        f"(got --epochs {config.training.epochs})")


def results_path(config):
    """The one file a zero-shot run writes: ``test_results.json`` in the run's results folder, the
    one finetuning runs use (imported on call: the driver pulls in torch)."""
    from .finetune import log_directory
    return os.path.join(log_directory(config), "test_results.json")


def load_evaluation_model(config, device):
    """The flags' GLMModel returning full-vocabulary logits, with the pretrained weights loaded
    (resharded on the fly when the checkpoint's model-parallel size differs)."""
    import torch

    from glm.checkpoint import load_pretrained_weights
    from glm.training.distributed import is_rank_0
    from glm.training.model_setup import build_model

    path = config.task.load_pretrained or config.checkpoint.load
    if not path:
        raise TaskError("zero-shot evaluation needs weights: pass --load-pretrained (or --load) CHECKPOINT_DIR")
    # The LM windows are seq_length + 1 long but their positions stay below seq_length, and the
    # released wikitext configs pass a --seq-length above the position table: check positions, not
    # the flag.
    model_config = config.updated(seq_length=min(config.data.seq_length, config.model.max_position_embeddings))
    # Built on the meta device in the evaluation dtype: the checkpoint's tensors become the weights.
    dtype = torch.float16 if config.precision.fp16 else torch.bfloat16 if config.precision.bf16 else None
    model = build_model(model_config, on_meta=True, dtype=dtype if device.type == "cuda" else None,
                        parallel_output=False)
    load_pretrained_weights(model, path, unsafe_unpickle=config.checkpoint.unsafe_unpickle,
                            log=print if is_rank_0() else (lambda *a: None))
    return model.to(device).eval()


def run(config, spec, tokenizer, device):
    """Evaluate ``spec``'s task and write its results (rank 0); returns the metrics."""
    from glm.training.distributed import is_rank_0

    data = spec.build_dataset(tokenizer, config)
    model = load_evaluation_model(config, device)
    start = time.time()
    metrics = spec.evaluate(model, data, config, device)
    metrics["seconds"] = time.time() - start
    if is_rank_0():
        output = results_path(config)
        summary = {k: v for k, v in metrics.items() if k != "predictions"}
        logger.info("%s: %s", config.task.task, json.dumps(summary, sort_keys=True))
        os.makedirs(os.path.dirname(output), exist_ok=True)
        with open(output, "w") as f:
            json.dump({"task": config.task.task, **metrics}, f, indent=1)
        print(json.dumps({"task": config.task.task, **summary}, sort_keys=True))
    return metrics
