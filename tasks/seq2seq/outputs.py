"""From generated ids to the text that is scored, and the prediction files of a test run.

The decoder (``glm.generation``) returns ids; :func:`prediction_text` turns one beam-search result
into the string the metrics compare with ``example.meta["ref"]``, :func:`blank_prediction_text`
rebuilds a blank-infilling text, and :func:`write_prediction_files` writes what the original wrote
next to ``test_results.json`` (``<file>.hyps`` / ``.refs``, or the SQuAD answer files).
"""

import json

from ..inputs import command_id
from .metrics import squad_answers
from .registry import SQUAD, get_task
from .retokenize import blank_fix_tokenization
from .squad import squad_decode


def strip_special(tokenizer, ids):
    """Drop ``eop`` and ``pad`` ids (beam search pads finished hypotheses with them)."""
    drop = {command_id(tokenizer, "eop"), command_id(tokenizer, "pad")}
    return [int(i) for i in ids if int(i) not in drop]


def prediction_text(config, tokenizer, generated_ids, example=None):
    """The text of one generated sequence: ``eop``/``pad`` removed, then decoded -- for extractive
    SQuAD with a BERT vocabulary mapped back onto the context's characters (:func:`squad_decode`,
    needs the ``example``)."""
    ids = strip_special(tokenizer, generated_ids)
    spec = get_task(config.task.task)
    model_type = config.data.tokenizer_model_type or ""
    is_bert = config.data.tokenizer_type == "BertWordPieceTokenizer" or model_type.startswith("bert")
    if spec.scoring == SQUAD and is_bert and example is not None:
        return squad_decode(example, ids, tokenizer)
    return tokenizer.DecodeIds(ids)


def blank_prediction_text(tokenizer, source_ids, generated_ids, mask_id):
    """A blank-infilling result as text: the source (an evaluation item's ``text``, ending in ``[sop]``)
    with its i-th mask replaced by the i-th generated span.  Spans are separated by ``sop`` in
    ``generated_ids`` (the decoder feeds one at each switch); padding is dropped; the text is then
    re-tokenised as the original did (:func:`blank_fix_tokenization`)."""
    sop, pad = command_id(tokenizer, "sop"), command_id(tokenizer, "pad")
    spans = [[]]
    for token in strip_special(tokenizer, generated_ids):
        if token == sop:
            spans.append([])
        else:
            spans[-1].append(token)
    output, span = [], 0
    for token in (int(t) for t in source_ids):
        if token == mask_id:
            if span < len(spans):
                output += spans[span]
            span += 1
        elif token != pad:
            output.append(token)
    return blank_fix_tokenization(tokenizer.DecodeIds(output[:-1]))   # [:-1]: the trailing [sop]


def _one_line(text):
    # A prediction with a newline would shift every later line of the line-aligned files.
    return " ".join(text.splitlines())


def write_prediction_files(task, predictions, examples, output_file):
    """Write a test run's predictions as the original did.

    Tasks scored as SQuAD (``TaskSpec.scoring``): ``output_file`` = ``{question id: answer}`` JSON (``N/A`` written as ``""``, the first
    non-empty window answer wins) and ``output_file.refs`` = one ``{"id", "pred", "gold"}`` JSON line
    per example.  Other tasks: ``output_file.hyps`` and ``output_file.refs`` (``meta["ref"]``), one
    line per example; a task whose row says ``writes_source`` (``squad_generation``) also
    ``output_file.source`` (context + `` Answer: ...``).
    """
    spec = get_task(task)
    if spec.scoring == SQUAD:
        answers = squad_answers(predictions, examples)
        with open(output_file, "w", encoding="utf-8") as f:
            json.dump(answers, f)
        with open(f"{output_file}.refs", "w", encoding="utf-8") as f:
            for prediction, example in zip(predictions, examples):
                f.write(json.dumps({"id": example.idx, "pred": prediction, "gold": example.meta["answers"]}) + "\n")
        return
    with open(f"{output_file}.hyps", "w", encoding="utf-8") as f:
        f.writelines(_one_line(prediction) + "\n" for prediction in predictions)
    with open(f"{output_file}.refs", "w", encoding="utf-8") as f:
        f.writelines(_one_line(example.meta["ref"]) + "\n" for example in examples)
    if spec.writes_source:
        with open(f"{output_file}.source", "w", encoding="utf-8") as f:
            f.writelines(_one_line(example.text_a) + " Answer: " + example.meta["answer"] + "\n"
                         for example in examples)
