"""Finetune or evaluate GLM on a downstream task (spec section 9).

    python finetune_glm.py --finetune --task rte --data-dir DATA/RTE --cloze-eval --load-pretrained CKPT ...
    python finetune_glm.py --finetune --task lambada --valid-data lambada_test.jsonl --load-pretrained CKPT ...
    torchrun --nproc-per-node 2 finetune_glm.py ... --model-parallel-size 2      # data / tensor parallel
    deepspeed finetune_glm.py --deepspeed --deepspeed_config config_tasks/config_blocklm_10B.json ...

Task families:

* SuperGLUE / CLUE cloze and classification tasks (``copa``, ``rte``, ``boolq``, ``cb``, ``wic``, ``wsc``,
  ``multirc``, ``record``, ``afqmc``, ``tnews``, ``cluewsc``, ...): training for ``--epochs`` with the dev
  metrics every ``--eval-epoch``, the best model kept, test predictions in the submission format
  (tasks/superglue, docs/superglue.md);
* seq2seq (``cnn_dm``, ``cnn_dm_original``, ``xsum``, ``gigaword``, ``squad_generation``, ``squad``,
  ``squad_v1``, ``cmrc``, ``blank``, ``customization``, ``extraction``): training with label smoothing,
  evaluation by decoding, ROUGE / EM-F1 (tasks/seq2seq, docs/seq2seq.md).  Unlike the original,
  ``--task squad`` reaches this driver (the original sent it to the cloze driver by mistake);
* zero-shot evaluation (``--epochs 0``): ``lambda``/``lambada``, ``wikitext``, ``language_model``,
  ``multichoice`` (docs/evaluation.md).

Results go to ``<summary-dir>/runs/<experiment-name>/`` (``test_results.json``, ``results.json``,
predictions; ``--overwrite`` to replace them), checkpoints to ``<save>/<experiment-name>/``.
"""

import argparse
import json
import logging
import os
import sys
import time

import torch

logger = logging.getLogger("finetune_glm")

LM_TASKS = ("lambda", "lambada", "wikitext", "language_model")
SEQ2SEQ_TASKS = ("cnn_dm", "cnn_dm_original", "gigaword", "blank", "squad_generation", "squad", "squad_v1", "xsum",
                 "extraction", "cmrc", "customization")


class TaskError(ValueError):
    """A task or flag combination this driver cannot run."""


def _lm_task(args, tokenizer):
    from tasks.language_model import dataset
    task = args.task.lower()
    builder = {"lambda": dataset.build_lambada_dataset, "lambada": dataset.build_lambada_dataset,
               "wikitext": dataset.build_wikitext103_dataset, "language_model": dataset.build_lm_dataset}[task]
    return builder(tokenizer, args)


def _evaluate_lm(model, data, args, device):
    from tasks.language_model.evaluate import evaluate_lm
    return evaluate_lm(model, data, batch_size=args.eval_batch_size, device=device)


def _mc_task(args, tokenizer):
    from tasks.multichoice.dataset import build_multichoice_dataset
    # Multiple-choice samples place the input and the choice at positions up to --seq-length: the
    # model's position table must reach that far (checked here, before any data is read).
    if args.seq_length > args.max_position_embeddings:
        raise TaskError(f"--seq-length {args.seq_length} is longer than the model's position table "
                        f"(--max-position-embeddings {args.max_position_embeddings}): pass --seq-length "
                        f"{args.max_position_embeddings} or less (scripts/evaluate_multichoice.sh: set SEQ_LENGTH)")
    return build_multichoice_dataset(tokenizer, args)


def _evaluate_mc(model, data, args, device):
    from tasks.multichoice.evaluate import evaluate_multichoice
    return evaluate_multichoice(model, data, batch_size=args.eval_batch_size, device=device,
                                length_penalty=args.length_penalty)


# Zero-shot tasks: task name (lower case) -> (dataset builder, evaluator).
ZERO_SHOT_TASKS = {**{name: (_lm_task, _evaluate_lm) for name in LM_TASKS}, "multichoice": (_mc_task, _evaluate_mc)}


def superglue_task_names():
    from tasks.superglue.registry import task_names
    return tuple(task_names())


def task_family(args):
    """``"zero-shot"``, ``"seq2seq"`` or ``"superglue"`` for ``--task`` (case-insensitive).  Seq2seq
    names are looked up first, so ``squad`` is extractive QA as generation (the original's cloze
    ``squad`` processor shadowed it)."""
    name = (args.task or "").lower()
    if name in ZERO_SHOT_TASKS:
        return "zero-shot"
    if name in SEQ2SEQ_TASKS:
        return "seq2seq"
    if name in superglue_task_names():
        return "superglue"
    available = ", ".join(sorted(set(ZERO_SHOT_TASKS) | set(SEQ2SEQ_TASKS) | set(superglue_task_names())))
    if not name:
        raise TaskError(f"--task is required; available: {available}")
    raise TaskError(f"unknown --task {args.task!r}; available: {available}")


def resolve_task(args):
    """The (dataset builder, evaluator) of a zero-shot task; these tasks only evaluate."""
    if args.epochs not in (None, 0):
        raise TaskError(f"--task {args.task} is a zero-shot evaluation: pass --epochs 0 (got --epochs {args.epochs})")
    return ZERO_SHOT_TASKS[args.task.lower()]


def load_evaluation_model(args, device):
    """The flags' GLMModel returning full-vocabulary logits, with the pretrained weights loaded
    (resharded on the fly when the checkpoint's model-parallel size differs)."""
    from glm.checkpoint import load_pretrained_weights
    from glm.training.distributed import is_rank_0
    from glm.training.model_setup import build_model

    path = args.load_pretrained or args.load
    if not path:
        raise TaskError("zero-shot evaluation needs weights: pass --load-pretrained (or --load) CHECKPOINT_DIR")
    # The LM windows are seq_length + 1 long but their positions stay below seq_length, and the
    # released wikitext configs pass a --seq-length above the position table: check positions, not
    # the flag.
    model_args = argparse.Namespace(**vars(args))
    model_args.seq_length = min(args.seq_length, args.max_position_embeddings)
    # Built on the meta device in the evaluation dtype: the checkpoint's tensors become the weights.
    dtype = torch.float16 if args.fp16 else torch.bfloat16 if args.bf16 else None
    model = build_model(model_args, on_meta=True, dtype=dtype if device.type == "cuda" else None,
                        parallel_output=False)
    load_pretrained_weights(model, path, unsafe_unpickle=args.unsafe_unpickle,
                            log=print if is_rank_0() else (lambda *a: None))
    return model.to(device).eval()


def results_path(args):
    return os.path.join(args.summary_dir or ".", "runs", args.experiment_name, "test_results.json")


def run_finetuning(args, family, tokenizer, device):
    """Train and evaluate a SuperGLUE/CLUE or seq2seq task through ``tasks.finetune``."""
    from tasks.finetune import finetune
    if family == "superglue":
        from tasks.superglue.finetune import build_task
    else:
        from tasks.seq2seq.finetune import build_task
    if args.epochs is None:
        args.epochs = 0
    return finetune(args, build_task(args, tokenizer), device)


def main(argv=None):
    from data_utils import prepare_tokenizer
    from glm.arguments import get_args
    from glm.training.distributed import initialize_distributed, is_rank_0
    from glm.training.seed import set_random_seed

    args = get_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not args.finetune:
        raise TaskError("finetune_glm.py expects --finetune (as the original); add it to the flags")
    family = task_family(args)
    if family == "zero-shot":
        build_dataset, evaluate = resolve_task(args)
    output = results_path(args)
    from tasks.finetune import check_outputs_free
    # Zero-shot runs write one file; finetuning runs a folder of results and a checkpoint folder.
    check_outputs_free(args, results_file=output if family == "zero-shot" else None)
    device = initialize_distributed(args)
    set_random_seed(args.seed)
    tokenizer = prepare_tokenizer(args)
    if family != "zero-shot":
        return run_finetuning(args, family, tokenizer, device)
    data = build_dataset(args, tokenizer)
    model = load_evaluation_model(args, device)
    start = time.time()
    metrics = evaluate(model, data, args, device)
    metrics["seconds"] = time.time() - start
    if is_rank_0():
        summary = {k: v for k, v in metrics.items() if k != "predictions"}
        logger.info("%s: %s", args.task, json.dumps(summary, sort_keys=True))
        os.makedirs(os.path.dirname(output), exist_ok=True)
        with open(output, "w") as f:
            json.dump({"task": args.task, **metrics}, f, indent=1)
        print(json.dumps({"task": args.task, **summary}, sort_keys=True))
    return metrics


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
