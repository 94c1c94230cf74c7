"""SuperGLUE and CLUE finetuning data (spec section 9.3): readers, cloze patterns, metrics, prediction
files.  See docs/superglue.md.

============================  =================================================================
``dataset.SuperGlueDataset``  the entry point: ``SuperGlueDataset(config, split, tokenizer, for_train)``
``registry``                  task name -> reader, pattern, labels, metrics, output conventions
``processors/``               one reader per task (files -> ``InputExample``)
``pvp/``                      patterns and verbalizers (``InputExample`` -> GLM sample)
``metrics``                   accuracy, F1, MultiRC EM, ReCoRD EM/F1
``predictions``               submission files ``<task>-<split>.jsonl``
============================  =================================================================
"""
