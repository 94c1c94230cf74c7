"""Evaluation metrics of the SuperGLUE/CLUE tasks, with the original's scales.

Every metric takes ``(predictions, labels, examples)``: per-example label indices in dataset order
and the matching :class:`~tasks.superglue.examples.InputExample` list.  Scales follow the original
(the README's numbers were produced with them): accuracy and ReCoRD EM/F1 in percent, F1 scores
and MultiRC EM as fractions.
"""

from ..answer_match import exact_match_score, f1_score, normalize_answer  # noqa: F401 (normalize_answer re-exported)


def accuracy(predictions, labels, examples=None):
    """Percentage of predictions equal to their label."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    return 100.0 * sum(p == l for p, l in zip(predictions, labels)) / max(len(predictions), 1)


def _f1_of_class(predictions, labels, positive):
    true_positive = sum(p == positive and l == positive for p, l in zip(predictions, labels))
    wrong = sum((p == positive) != (l == positive) for p, l in zip(predictions, labels))
    # sklearn's zero_division default: a class never predicted nor present scores 0.
    return 2.0 * true_positive / (2 * true_positive + wrong) if true_positive or wrong else 0.0


def f1(predictions, labels, examples=None):
    """Binary F1 of class 1 (as ``sklearn.metrics.f1_score``), a fraction."""
    return _f1_of_class(predictions, labels, 1)


def f1_macro(predictions, labels, examples=None):
    """Unweighted mean of the per-class F1 over the classes that occur in labels or predictions."""
    classes = sorted(set(labels) | set(predictions))
    return sum(_f1_of_class(predictions, labels, c) for c in classes) / max(len(classes), 1)


def multirc_em(predictions, labels, examples):
    """Fraction of questions whose answers are all predicted right (answers grouped by the
    passage and question ids in ``meta``)."""
    questions = {}
    for prediction, label, example in zip(predictions, labels, examples):
        key = (example.meta["passage_idx"], example.meta["question_idx"])
        questions.setdefault(key, []).append(prediction == label)
    return sum(all(right) for right in questions.values()) / max(len(questions), 1)


# ---------------------------------------------------------------------------------------- ReCoRD
def _best_over_answers(score, predictions, examples):
    """Mean (in percent) over examples of the best ``score`` of the chosen entity against any gold
    answer; an example without gold answers scores 0."""
    if len(predictions) != len(examples):
        raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
    total = 0.0
    for prediction, example in zip(predictions, examples):
        chosen = example.meta["candidates"][prediction]
        total += max((score(chosen, answer) for answer in example.meta["answers"]), default=0.0)
    return 100.0 * total / max(len(predictions), 1)


def record_exact_match(predictions, labels, examples):
    """ReCoRD EM: the chosen entity equals a gold answer (normalised), in percent."""
    return _best_over_answers(exact_match_score, predictions, examples)


def record_f1(predictions, labels, examples):
    """ReCoRD F1: best token F1 of the chosen entity against the gold answers, in percent."""
    return _best_over_answers(f1_score, predictions, examples)
