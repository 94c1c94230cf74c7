"""Seq2seq metrics: ROUGE with the original's post-processing, and SQuAD exact match / F1.

ROUGE (the ``rouge-score`` package, Porter stemming, F-measure averaged over examples, in [0, 1]):
predictions and references are first split into sentences at ``[SEP]`` and re-tokenised
(:func:`tasks.seq2seq.retokenize.fix_tokenization`); a predicted sentence of four words or fewer is
dropped, and so is one whose distinct words were already seen in earlier kept sentences for more than
``duplicate_rate`` (0.7) of them -- beam search likes to repeat itself.  The sentences are joined with
newlines, which is what ``rougeLsum`` splits on.  The original reported ``rouge-1``, ``rouge-2`` and,
as ``rouge-l``, the summary-level ``rougeLsum`` (:data:`ORIGINAL_ROUGE_NAMES`).

Which text is the reference matters for ``rougeL``/``rougeLsum`` only (ROUGE-1/2 F are symmetric):
the original finetuning driver's metric callback called ``scorer.score(prediction, reference)``,
i.e. scored the *reference* as the candidate, and that number chose its best checkpoint and filled
its ``test_results``.  :func:`rouge_metric` (the in-training / finetuning metric) reproduces that
(``reference_first=False``); the file scoring of ``scripts/evaluate_seq2seq.sh``
(:func:`rouge_from_files`), which stands in for the ``files2rouge`` of the published tables, keeps
the standard order (``reference_first=True``, the default).

Two line-aligned files (``test.jsonl.hyps`` / ``.refs``) are scored on the command line by
``scripts/seq2seq_rouge.py`` (through ``scripts/evaluate_seq2seq.sh``).
"""

import functools
import logging

from .. import answer_match
from ..jsonl import TaskDataError
from .files import read_lines
from .retokenize import PTB_RULES, RETOKENIZERS, fix_tokenization

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
# The metric names of the original finetune driver and the rouge-score type each one reported.
ORIGINAL_ROUGE_NAMES = {"rouge-1": "rouge1", "rouge-2": "rouge2", "rouge-l": "rougeLsum"}
MIN_SENTENCE_WORDS = 5
DUPLICATE_RATE = 0.7


# ------------------------------------------------------------------------------------ ROUGE post-processing
def postprocess_reference(text, dataset=PTB_RULES):
    """A reference ready for ROUGE: ``[SEP]``-separated sentences re-tokenised, one per line."""
    return "\n".join(fix_tokenization(sentence, dataset) for sentence in text.strip().split("[SEP]"))


def postprocess_prediction(text, dataset=PTB_RULES, duplicate_rate=DUPLICATE_RATE):
    """A prediction ready for ROUGE: ``[SEP]``-separated sentences re-tokenised, short ones
    (< :data:`MIN_SENTENCE_WORDS` words) dropped, then near-repeats (:func:`remove_duplicates`)."""
    sentences = [fix_tokenization(sentence, dataset) for sentence in text.strip().split("[SEP]")]
    sentences = [s for s in sentences if len(s.split()) >= MIN_SENTENCE_WORDS]
    if duplicate_rate and duplicate_rate < 1:
        sentences = remove_duplicates(sentences, duplicate_rate)
    return "\n".join(sentences)


def remove_duplicates(sentences, duplicate_rate=DUPLICATE_RATE):
    """Keep a sentence unless more than ``duplicate_rate`` of its distinct (lower-cased) words occurred
    in the sentences before it -- kept or not, as in the original."""
    kept, seen = [], set()
    for sentence in sentences:
        words = set(sentence.lower().split())
        if words and len(words & seen) / len(words) <= duplicate_rate:
            kept.append(sentence)
        seen |= words
    return kept


# ------------------------------------------------------------------------------------------------- ROUGE
def _scorer(rouge_types, split_summaries):
    from rouge_score import rouge_scorer   # imported here: only scoring needs the package

    # rouge-score logs "Using default tokenizer." through absl at INFO for every scorer it builds.
    logging.getLogger("absl").setLevel(logging.WARNING)

    return rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=True, split_summaries=split_summaries)


def rouge_scores(predictions, references, dataset=PTB_RULES, duplicate_rate=DUPLICATE_RATE, split_summaries=False,
                 rouge_types=ROUGE_TYPES, reference_first=True):
    """Mean ROUGE F-measures (in [0, 1]) of ``predictions`` against ``references`` (raw strings, as
    decoded), after the post-processing above.  ``dataset``: the re-tokenisation, one of
    ``cnn_dm`` (PTB rules, BERT models), ``gigaword``, ``cnn_dm_org`` (none); see
    :func:`tasks.seq2seq.retokenize.retokenizer_for`.  ``split_summaries=True`` lets rouge-score also
    split sentences with NLTK for ``rougeLsum`` (needs NLTK's ``punkt`` data installed).
    ``reference_first=False`` swaps the roles as the original finetuning driver did
    (``score(prediction, reference)``); it changes ``rougeL``/``rougeLsum`` only.
    Returns ``{rouge type: score}``."""
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("no predictions to score")
    if dataset not in RETOKENIZERS:
        raise ValueError(f"unknown re-tokenisation {dataset!r}; expected one of {', '.join(RETOKENIZERS)}")
    scorer = _scorer(rouge_types, split_summaries)
    totals = dict.fromkeys(rouge_types, 0.0)
    for prediction, reference in zip(predictions, references):
        target = postprocess_reference(reference, dataset)
        candidate = postprocess_prediction(prediction, dataset, duplicate_rate)
        if not reference_first:
            target, candidate = candidate, target
        try:
            scores = scorer.score(target, candidate)
        except LookupError as e:   # NLTK data for split_summaries
            raise RuntimeError(f"split_summaries needs NLTK's sentence splitter data: {e}") from None
        for name in rouge_types:
            totals[name] += scores[name].fmeasure
    return {name: total / len(predictions) for name, total in totals.items()}


def rouge_metric(predictions, labels, examples, metric="rouge-1", duplicate_rate=DUPLICATE_RATE, dataset=PTB_RULES):
    """The original metric callback: one of :data:`ORIGINAL_ROUGE_NAMES` over ``examples``'
    ``meta["ref"]`` (``labels`` is unused, kept for the callback signature), computed as the original
    finetuning driver did, with the prediction in the reference's role (``reference_first=False``):
    its ``rouge-l`` chose the best checkpoint."""
    del labels
    rouge_type = ORIGINAL_ROUGE_NAMES[metric]
    references = [example.meta["ref"] for example in examples]
    return rouge_scores(predictions, references, dataset, duplicate_rate, rouge_types=(rouge_type,),
                        reference_first=False)[rouge_type]


def rouge_metric_dict(dataset=PTB_RULES):
    """``{"rouge-1": f, "rouge-2": f, "rouge-l": f}`` with ``f(predictions, labels, examples)``, the
    metrics the original driver registered for the ROUGE tasks."""
    return {name: functools.partial(rouge_metric, metric=name, dataset=dataset) for name in ORIGINAL_ROUGE_NAMES}


def read_prediction_lines(path):
    """One prediction/reference per line (the ``.hyps`` / ``.refs`` files), read as the split files
    are (:func:`tasks.seq2seq.files.read_lines`: ``\n`` or ``\r\n`` ends a line, a byte-order mark
    is dropped)."""
    return read_lines(path, "file")


def rouge_from_files(hyps_path, refs_path, dataset=PTB_RULES, duplicate_rate=DUPLICATE_RATE, split_summaries=False):
    """ROUGE of a ``test.jsonl.hyps`` file against its ``test.jsonl.refs`` (line-aligned), the
    references in the reference role (the standard order, as ``files2rouge``)."""
    hyps, refs = read_prediction_lines(hyps_path), read_prediction_lines(refs_path)
    if len(hyps) != len(refs):
        longer = hyps_path if len(hyps) > len(refs) else refs_path
        raise TaskDataError(f"{longer}:{min(len(hyps), len(refs)) + 1}: no matching line in the other file "
                            f"({len(hyps)} hypotheses in {hyps_path}, {len(refs)} references in {refs_path})")
    return rouge_scores(hyps, refs, dataset, duplicate_rate, split_summaries)


# ------------------------------------------------------------------------------------------------- SQuAD
def normalize_answer(text):
    """SQuAD normalisation: lower case, accents stripped, punctuation and articles removed, white
    space collapsed."""
    return answer_match.normalize_answer(text, accents=False)


def exact_match_score(prediction, ground_truth):
    """1 if the normalised strings are equal, else 0."""
    return answer_match.exact_match_score(prediction, ground_truth, accents=False)


def f1_score(prediction, ground_truth):
    """Bag-of-words F1 of the normalised strings."""
    return answer_match.f1_score(prediction, ground_truth, accents=False)


def _is_no_answer(text):
    return text.lower().replace(" ", "") == "n/a"


def squad_answers(predictions, examples):
    """``{question id: answer}``: the windows of one question (same ``example.idx``) give one answer,
    the first window's prediction that is not ``N/A``; ``""`` when every window said ``N/A`` -- the
    answer file a test run writes (:func:`tasks.seq2seq.outputs.write_prediction_files`)."""
    predictions, examples = list(predictions), list(examples)
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions but {len(examples)} examples")
    answers = {}
    for example, prediction in zip(examples, predictions):
        text = "" if _is_no_answer(prediction) else prediction
        if answers.get(example.idx, "") == "":
            answers[example.idx] = text
    return answers


def squad_evaluate(predictions, labels, examples, metric):
    """The original GLM SQuAD score in percent, averaged over the questions that have at least one
    window (a question whose windows all miss the gold answer has no example in ``squad_v1`` and is
    left out): the question's answer is that of :func:`squad_answers` (``N/A`` if empty); a question
    without gold answers (``meta["answers"] == ["N/A"]``) scores 1 exactly when the answer is
    ``N/A``, otherwise ``metric`` takes the best over the gold answers."""
    del labels
    examples = list(examples)
    return _original_squad_score(squad_answers(predictions, examples), examples, metric)


def _original_squad_score(answers, examples, metric):
    """:func:`squad_evaluate` on answers already chosen by :func:`squad_answers`."""
    if not answers:
        raise ValueError("no predictions to score")
    gold_of = {example.idx: example.meta["answers"] for example in examples}
    total = 0.0
    for question, answer in answers.items():
        answer, gold = answer or "N/A", gold_of[question]
        if list(gold) == ["N/A"]:
            total += float(answer == "N/A")
        elif gold:
            total += max(metric(answer, truth) for truth in gold)
    return 100.0 * total / len(answers)


squad_exact_match = functools.partial(squad_evaluate, metric=exact_match_score)
squad_f1 = functools.partial(squad_evaluate, metric=f1_score)
SQUAD_METRICS = {"EM": squad_exact_match, "F1": squad_f1}


def official_squad_scores(answers, questions):
    """``(EM, F1)`` in percent as the official SQuAD evaluation computes them: averaged over *every*
    question of the file (``questions``: ``{id: gold answer texts}``, ``["N/A"]`` for a SQuAD 2.0
    question without answer), a question missing from ``answers`` scoring 0; normalisation without
    stripping accents; the best over the gold answers; a no-answer question scores 1 exactly when
    the answer is empty."""
    if not questions:
        raise ValueError("no questions to score")
    exact = f1 = 0.0
    for question, gold in questions.items():
        if question not in answers:
            continue   # unanswered: 0
        answer = answers[question]
        if list(gold) == ["N/A"]:
            exact += float(answer == "")
            f1 += float(answer == "")
        elif gold:
            exact += max(answer_match.exact_match_score(answer, truth) for truth in gold)
            f1 += max(answer_match.f1_score(answer, truth) for truth in gold)
    return 100.0 * exact / len(questions), 100.0 * f1 / len(questions)


# What a SQuAD evaluation reports: the official figures, the original GLM driver's, and the number of
# questions of the file that had no window (and so no prediction).
SQUAD_REPORT_NAMES = ("EM", "F1", "EM_original", "F1_original", "questions_without_window")


def squad_report(predictions, examples, questions):
    """``{"EM", "F1"}``: :func:`official_squad_scores` over every question of ``questions``;
    ``{"EM_original", "F1_original"}``: the original's figures (:data:`SQUAD_METRICS`: answered
    questions only, accents stripped); ``questions_without_window``: questions of the file without
    any example (for ``squad_v1``, those whose context windows all miss the first gold answer)."""
    examples = list(examples)
    answers = squad_answers(predictions, examples)
    exact, f1 = official_squad_scores(answers, questions)
    windowed = {example.idx for example in examples}
    return {"EM": exact, "F1": f1,
            "EM_original": _original_squad_score(answers, examples, exact_match_score) if examples else 0.0,
            "F1_original": _original_squad_score(answers, examples, f1_score) if examples else 0.0,
            "questions_without_window": float(sum(question not in windowed for question in questions))}
