"""EleutherAI's lm-evaluation-harness with GLM registered as the model ``glm`` (needs ``pip install lm-eval``).

    python lm_eval_glm.py --model glm \\
        --model_args pretrained=CHECKPOINT_DIR,num_attention_heads=16,tokenizer=bert --tasks lambada_openai
    python lm_eval_glm.py --model glm --model_args pretrained=HF_FOLDER --tasks arc_easy   # our export

Every argument is lm_eval's own (``lm_eval --help``); the ``--model_args`` keys of ``glm`` are in
docs/evaluation.md.  The adapter is :mod:`tasks.lm_eval_backend`; this program only registers it and hands
the command line to lm_eval.
"""

import sys

import tasks.lm_eval_backend  # noqa: F401,E402  (registers the model "glm")


def main(argv=None):
    from lm_eval.__main__ import cli_evaluate

    if argv is not None:
        sys.argv = [sys.argv[0]] + list(argv)
    cli_evaluate()


if __name__ == "__main__":
    main()
