"""Downstream tasks: zero-shot evaluation and finetuning datasets (spec section 9).

``tasks.inputs`` holds the one GLM input builder every task shares; ``tasks.language_model``
(LAMBADA, WikiText-103, line-per-document perplexity) and ``tasks.multichoice`` (zero-shot multiple
choice) build on it.  ``finetune_glm.py`` dispatches ``--task`` to them.
"""
