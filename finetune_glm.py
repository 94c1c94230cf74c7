"""Finetune or evaluate GLM on a downstream task (spec section 9).

    python finetune_glm.py --finetune --task rte --data-dir DATA/RTE --cloze-eval --load-pretrained CKPT ...
    python finetune_glm.py --finetune --task lambada --valid-data lambada_test.jsonl --load-pretrained CKPT ...
    torchrun --nproc-per-node 2 finetune_glm.py ... --model-parallel-size 2      # data / tensor parallel
    deepspeed finetune_glm.py --deepspeed --deepspeed_config config_tasks/config_blocklm_10B.json ...

This script only dispatches: ``--task`` is looked up in the task tables (:mod:`tasks.registry` joins
one table per family) and the family's entry runs it.  Task families:

* SuperGLUE / CLUE cloze and classification tasks (``copa``, ``rte``, ``boolq``, ``cb``, ``wic``, ``wsc``,
  ``multirc``, ``record``, ``afqmc``, ``tnews``, ``cluewsc``, ...): training for ``--epochs`` with the dev
  metrics every ``--eval-epoch``, the best model kept, test predictions in the submission format
  (table: tasks/superglue/registry.py; docs/superglue.md);
* seq2seq (``cnn_dm``, ``cnn_dm_original``, ``xsum``, ``gigaword``, ``squad_generation``, ``squad``,
  ``squad_v1``, ``cmrc``, ``blank``, ``customization``, ``extraction``): training with label smoothing,
  evaluation by decoding, ROUGE / EM-F1 (table: tasks/seq2seq/registry.py; docs/seq2seq.md).  Unlike the original,
  ``--task squad`` reaches this driver (the original sent it to the cloze driver by mistake);
* zero-shot evaluation (``--epochs 0``): ``lambda``/``lambada``, ``wikitext``, ``language_model``,
  ``multichoice`` (table: tasks/zero_shot.py; docs/evaluation.md).

Adding a task is a row in its family's table: docs/finetuning.md, "Adding a task".

Results go to ``<summary-dir>/runs/<experiment-name>/`` (``test_results.json``, ``results.json``,
predictions; ``--overwrite`` to replace them), checkpoints to ``<save>/<experiment-name>/``.
"""

import logging
import sys

from tasks.errors import TaskError

__all__ = ["TaskError", "main", "run", "task_family"]


def task_family(config):
    """The family name (``"zero-shot"``, ``"seq2seq"``, ``"superglue"``) of ``--task``; a
    :class:`TaskError` listing every task when it names none."""
    from tasks.registry import find_task
    return find_task(config.task.task).family.name


def main(argv=None):
    """Parse the flags, look up ``--task`` and hand it to its family's entry; returns its results."""
    from data_utils.tokenizers import configure_tokenizer
    from glm.arguments import get_args
    from glm.config import build_config
    from glm.training.distributed import initialize_distributed
    from glm.training.seed import set_random_seed
    from tasks.finetune import check_outputs_free
    from tasks.registry import find_task

    config = build_config(get_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not config.checkpoint.finetune:
        raise TaskError("finetune_glm.py expects --finetune (as the original); add it to the flags")
    family, spec = find_task(config.task.task)
    family.check(config, spec)
    if config.training.epochs is None:   # no --epochs: nothing to train, the finetuning families only evaluate
        config = config.updated(epochs=0)
    config = family.configure(config, spec)
    # A zero-shot run writes one file; a finetuning run a folder of results and a checkpoint folder.
    check_outputs_free(config, results_file=family.results_file(config))
    device, config = initialize_distributed(config)
    set_random_seed(config.training.seed)
    tokenizer, config = configure_tokenizer(config)
    return family.run(config, spec, tokenizer, device)


def user_error_message(exc):
    """The message of a user-facing error.  One raised inside a DataLoader worker arrives re-raised
    with the worker's traceback in its text ("Caught X in DataLoader worker process 0. Original
    Traceback ..."); its last line holds the original message."""
    text = str(exc)
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = text.strip().splitlines()[-1]
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        return last[len(prefix):] if last.startswith(prefix) else last
    return text


def user_errors():
    """The exception types that mean "fix your flags, files or checkpoint" (no traceback)."""
    from glm.checkpoint import CheckpointError
    from glm.generation import GenerationInputError
    from glm.training.core import TrainingDiverged
    from tasks.finetune import FinetuneError
    from tasks.jsonl import TaskDataError
    from glm.training.run_directory import RunDirectoryError
    from tasks.superglue.errors import TaskConfigError
    return (TaskError, TaskDataError, TaskConfigError, FinetuneError, GenerationInputError, CheckpointError,
            TrainingDiverged, FileNotFoundError, RunDirectoryError)


def run(argv=None):
    """:func:`main` as a program: 0 on success; a user error prints one line on stderr and returns 1
    (bad flags exit with 2 through argparse); Ctrl-C/SIGTERM stop after a step with 130/143 and say
    which checkpoint resumes the run."""
    from glm.training.interrupt import RunInterrupted
    try:
        main(argv)
    except user_errors() as e:
        print(f"finetune_glm.py: error: {user_error_message(e)}", file=sys.stderr, flush=True)
        return 1
    except RunInterrupted as stop:
        print(f"finetune_glm.py: {stop}", file=sys.stderr, flush=True)
        return stop.exit_code
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, without saving
        print("finetune_glm.py: stopped at once by a second Ctrl-C", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(run())
