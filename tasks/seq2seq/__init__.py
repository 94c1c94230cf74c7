"""Seq2seq finetuning data and metrics (spec section 9.4).

=====================  ===================================================================
module                 contents
=====================  ===================================================================
``registry``           the task table: one ``TaskSpec`` row per ``--task`` (the only module
                       that names tasks; the others receive the row)
``dataset``            the datasets (``Seq2SeqDataset``, ``CustomizationDataset``,
                       ``ExtractionDataset``, ``BlankLMDataset``) and ``build_dataset``
``summarization``      CNN/DM, Gigaword and XSum readers and source packing
``squad``              SQuAD-format readers (question generation, extractive QA, CMRC),
                       ``squad_decode``
``layout``             the item layouts, built with :mod:`tasks.inputs`
``files``              split file names per task, readers with file:line errors
``example``            ``InputExample``
``detokenizers``       undoing the corpora's PTB/HTML escapes before tokenisation
``retokenize``         PTB-style re-tokenisation of decoded text before scoring
``char_offsets``       character offsets of BERT pieces (SQuAD answers from the context)
``metrics``            ROUGE with the original post-processing, SQuAD EM/F1, file scoring
``outputs``            turning generated ids into prediction text; prediction files
=====================  ===================================================================

Training, decoding and the driver live elsewhere (``finetune_glm.py``, ``glm.generation``).
"""
