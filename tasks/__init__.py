"""Downstream tasks: zero-shot evaluation and finetuning datasets (spec section 9).

``tasks.inputs`` holds the one GLM input builder every task shares; ``tasks.language_model``
(LAMBADA, WikiText-103, line-per-document perplexity) and ``tasks.multichoice`` (zero-shot multiple
choice) build on it.  ``tasks.registry`` finds the family and the row of a ``--task`` in the family
tables (``tasks.superglue.registry``, ``tasks.seq2seq.registry``, ``tasks.zero_shot``);
``finetune_glm.py`` dispatches through it.
"""
