"""ROUGE with the original post-processing, checked against rouge-score called directly, and SQuAD
EM/F1 on hand-computed cases."""

import json
from types import SimpleNamespace

import pytest
from rouge_score import rouge_scorer

from tasks.jsonl import TaskDataError
from tasks.seq2seq import metrics
from tasks.seq2seq.metrics import (postprocess_prediction, postprocess_reference, remove_duplicates, rouge_from_files,
                                   rouge_metric, rouge_metric_dict, rouge_scores, squad_exact_match, squad_f1)


def direct(reference, prediction, rouge_type):
    scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=True)
    return scorer.score(reference, prediction)[rouge_type].fmeasure


def test_hand_checked_rouge():
    scores = rouge_scores(["one two three four five"], ["one two three four six"], dataset="cnn_dm_org")
    assert scores["rouge1"] == pytest.approx(0.8)      # 4 of 5 unigrams either way
    assert scores["rouge2"] == pytest.approx(0.75)     # 3 of 4 bigrams
    assert scores["rougeL"] == pytest.approx(0.8)      # LCS of 4
    assert scores["rougeLsum"] == pytest.approx(0.8)
    assert rouge_scores(["the cats were running home"], ["the cat was running home"],
                        dataset="cnn_dm_org")["rouge1"] == pytest.approx(0.8)   # stemming: cats ~ cat


def test_rouge_equals_rouge_score_on_the_postprocessed_texts():
    predictions = ["the cat sat on the mat today [SEP] the dog ran away from home fast [SEP] too short",
                   "he said \" it ' s over \" and left the room [SEP] he said it is over and left"]
    references = ["the cat sat on the mat [SEP] a dog ran home", "he said `` it 's over '' and left"]
    processed = [("the cat sat on the mat\na dog ran home",
                  "the cat sat on the mat today\nthe dog ran away from home fast"),
                 ("he said `` it 's over '' and left", "he said `` it 's over '' and left the room")]
    assert [postprocess_reference(r) for r in references] == [p[0] for p in processed]
    assert [postprocess_prediction(p) for p in predictions] == [p[1] for p in processed]
    scores = rouge_scores(predictions, references, dataset="cnn_dm")
    for rouge_type in metrics.ROUGE_TYPES:
        expected = sum(direct(ref, pred, rouge_type) for ref, pred in processed) / 2
        assert scores[rouge_type] == pytest.approx(expected), rouge_type


def test_prediction_postprocessing_rules():
    # sentences of four words or fewer go
    assert postprocess_prediction("a b c d [SEP] the cat sat on the mat") == "the cat sat on the mat"
    # > 70% of the distinct words already seen: dropped; 5/8 = 62.5%: kept
    text = "the cat sat on the mat [SEP] the cat sat on the mat again [SEP] the cat sat on a big red mat"
    assert postprocess_prediction(text) == "the cat sat on the mat\nthe cat sat on a big red mat"
    assert postprocess_prediction(text, duplicate_rate=1) == text.replace(" [SEP] ", "\n")
    # the words of dropped sentences count as seen too (the original's history)
    # ("a b c f z": 4/5 seen thanks to the dropped sentence's "f"; 3/5 without it)
    assert remove_duplicates(["a b c d e", "a b c d e f", "a b c f z"]) == ["a b c d e"]
    # references are split and re-tokenised but never filtered
    assert postprocess_reference("ok [SEP] it ' s fine", "cnn_dm") == "ok\nit 's fine"


def test_rouge_metric_callbacks_use_the_original_names():
    examples = [SimpleNamespace(meta={"ref": "the quick brown fox jumps high"})]
    predictions = ["the quick brown fox jumped over"]
    both = rouge_scores(predictions, ["the quick brown fox jumps high"])
    assert rouge_metric(predictions, None, examples, metric="rouge-l") == pytest.approx(both["rougeLsum"])
    callbacks = rouge_metric_dict("cnn_dm")
    assert list(callbacks) == ["rouge-1", "rouge-2", "rouge-l"]
    assert callbacks["rouge-2"](predictions, None, examples) == pytest.approx(both["rouge2"])


# Summary-level ROUGE-L (rougeLsum) of one prediction sentence P = "cat dog hen pig cat" against the
# reference sentences R1 = "cat pig", R2 = "cat hen" (every longest common subsequence below is unique):
# * standard order, score(reference, prediction): each reference sentence takes the union of its LCS
#   with the prediction sentences, clipped by token counts.  R1 ~ P: "cat pig" (2 hits), R2 ~ P:
#   "cat hen" (P has a second "cat": 2 hits) -> 4 hits; recall 4/4, precision 4/5, F = 8/9.
# * the original driver's order, score(prediction, reference): P takes the union of its LCS with
#   R1 ("cat pig": P positions 0, 3) and R2 ("cat hen": positions 0, 2) = positions {0, 2, 3}
#   -> 3 hits; recall 3/5, precision 3/4, F = 2 * 0.6 * 0.75 / 1.35 = 2/3.
# A one-sentence pair "one two three four five" / "one two three four six" has an LCS of 4 of 5 either
# way: 0.8 in both orders.  ROUGE-1 F (unigram overlap 4: P 4/5, R 4/4) is 8/9 in both orders.
ORDER_PREDICTIONS = ["cat dog hen pig cat", "one two three four five"]
ORDER_REFERENCES = ["cat pig [SEP] cat hen", "one two three four six"]


def test_rouge_l_in_both_orders_hand_checked():
    standard = rouge_scores(ORDER_PREDICTIONS, ORDER_REFERENCES, dataset="cnn_dm_org")
    swapped = rouge_scores(ORDER_PREDICTIONS, ORDER_REFERENCES, dataset="cnn_dm_org", reference_first=False)
    assert standard["rougeLsum"] == pytest.approx((8 / 9 + 0.8) / 2)
    assert swapped["rougeLsum"] == pytest.approx((2 / 3 + 0.8) / 2)
    for symmetric in ("rouge1", "rouge2"):
        assert standard[symmetric] == pytest.approx(swapped[symmetric]), symmetric
    assert standard["rouge1"] == pytest.approx((8 / 9 + 0.8) / 2)
    # the same numbers straight from rouge-score, each order as the original called it
    assert direct("cat pig\ncat hen", "cat dog hen pig cat", "rougeLsum") == pytest.approx(8 / 9)
    assert direct("cat dog hen pig cat", "cat pig\ncat hen", "rougeLsum") == pytest.approx(2 / 3)


def test_in_training_metric_uses_the_original_order_and_files_the_standard_one(tmp_path):
    """The finetuning callbacks (best checkpoint, test_results) score as the original driver did;
    the file scoring of evaluate_seq2seq.sh keeps the reference as the reference."""
    examples = [SimpleNamespace(meta={"ref": ref}) for ref in ORDER_REFERENCES]
    callbacks = rouge_metric_dict("cnn_dm_org")
    assert callbacks["rouge-l"](ORDER_PREDICTIONS, None, examples) == pytest.approx((2 / 3 + 0.8) / 2)
    assert callbacks["rouge-1"](ORDER_PREDICTIONS, None, examples) == pytest.approx((8 / 9 + 0.8) / 2)
    hyps, refs = tmp_path / "test.jsonl.hyps", tmp_path / "test.jsonl.refs"
    hyps.write_text("".join(p + "\n" for p in ORDER_PREDICTIONS))
    refs.write_text("".join(r + "\n" for r in ORDER_REFERENCES))
    assert rouge_from_files(hyps, refs, "cnn_dm_org")["rougeLsum"] == pytest.approx((8 / 9 + 0.8) / 2)


def test_rouge_input_errors():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="re-tokenisation"):
        rouge_scores(["a"], ["a"], dataset="bert")


def _rouge_script():
    """scripts/seq2seq_rouge.py, the command line of rouge_from_files."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "scripts" / "seq2seq_rouge.py"
    spec = importlib.util.spec_from_file_location("seq2seq_rouge", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rouge_from_files_and_cli(tmp_path, capsys):
    script = _rouge_script()
    hyps, refs = tmp_path / "test.jsonl.hyps", tmp_path / "test.jsonl.refs"
    hyps.write_text("one two three four five\nthe cat sat on the mat\n")
    refs.write_text("one two three four six\nthe cat sat on the mat\n")
    scores = rouge_from_files(hyps, refs)
    assert scores["rouge1"] == pytest.approx((0.8 + 1.0) / 2)
    assert script.main([str(hyps), str(refs)]) == 0
    assert json.loads(capsys.readouterr().out) == {k: round(100 * v, 2) for k, v in scores.items()}
    refs.write_text("one two three four six\n")
    with pytest.raises(TaskDataError, match=r"test.jsonl.hyps:2: no matching line"):
        rouge_from_files(hyps, refs)
    assert script.main([str(hyps), str(tmp_path / "missing.refs")]) == 1
    assert "missing.refs: file not found" in capsys.readouterr().err


def test_evaluate_seq2seq_script(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    (tmp_path / "h").write_text("one two three four five\n")
    (tmp_path / "r").write_text("one two three four six\n")
    out = subprocess.run(["bash", str(root / "scripts" / "evaluate_seq2seq.sh"), str(tmp_path / "h"),
                          str(tmp_path / "r"), "--retokenize", "cnn_dm_org"],
                         env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}, capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout)["rouge1"] == 80.0


# ------------------------------------------------------------------------------------------------- SQuAD
def test_answer_normalisation():
    assert metrics.normalize_answer("The  Caf\u00e9, Inc.") == "cafe inc"
    assert metrics.exact_match_score("the Cat!", "cat") == 1.0
    assert metrics.f1_score("cat sat", "the cat ran") == pytest.approx(0.5)
    assert metrics.f1_score("a", "the") == 0.0


def _example(qid, answers):
    return SimpleNamespace(idx=qid, meta={"answers": answers})


def test_squad_em_f1_with_windows_and_no_answer_questions():
    examples = [_example("q1", ["seventeen"]), _example("q1", ["seventeen"]),   # two windows of q1
                _example("q2", ["N/A"]), _example("q2", ["N/A"]),
                _example("q3", ["N/A"]),
                _example("q4", ["red car", "blue car"])]
    predictions = ["N/A", "Seventeen.", "n / a", "N/A", "foo", "the red car park"]
    # q1: first non-N/A window answer "Seventeen." -> EM 1; q2: only N/A -> 1; q3: 0;
    # q4: EM 0, F1 = best of (red car park vs red car: P 2/3, R 1) = 0.8
    assert squad_exact_match(predictions, None, examples) == pytest.approx(100 * 2 / 4)
    assert squad_f1(predictions, None, examples) == pytest.approx(100 * (1 + 1 + 0 + 0.8) / 4)


def test_squad_no_answer_predicted_for_an_answerable_question():
    assert squad_f1(["N/A"], None, [_example("q", ["x y"])]) == 0.0
    assert squad_exact_match(["x"], None, [_example("q", [])]) == 0.0   # no gold answers at all


def test_squad_report_official_and_original_figures():
    """A question without any window has no prediction: the official evaluation scores it 0 over
    every question of the file, the original averaged over the answered questions only."""
    examples = [_example("q1", ["Seventeen", "seventeen years"]), _example("q1", ["Seventeen", "seventeen years"]),
                _example("q2", ["the red car"])]
    predictions = ["N/A", "seventeen", "red cars"]
    questions = {"q1": ["Seventeen", "seventeen years"], "q2": ["the red car"], "q3": ["blue"], "q4": ["green"]}
    report = metrics.squad_report(predictions, examples, questions)
    # q1: "seventeen" (second window) = first gold -> EM 1, F1 1; q2: "red cars" vs "red car": EM 0,
    # F1 = 2 * (1/2 * 1/2) / 1 = 0.5; q3, q4: no window, no prediction.
    assert report["questions_without_window"] == 2
    assert report["EM"] == pytest.approx(100 * 1 / 4)
    assert report["F1"] == pytest.approx(100 * 1.5 / 4)
    assert report["EM_original"] == pytest.approx(100 * 1 / 2)
    assert report["F1_original"] == pytest.approx(100 * 1.5 / 2)
    assert tuple(report) == metrics.SQUAD_REPORT_NAMES


def test_official_squad_scores_keep_accents_and_score_no_answer_questions():
    # The official normalisation keeps accents (the original GLM's stripped them).
    assert metrics.official_squad_scores({"q": "cafe"}, {"q": ["Café"]}) == (0.0, 0.0)
    assert squad_exact_match(["cafe"], None, [_example("q", ["Café"])]) == 100.0
    # SQuAD 2.0 no-answer question: 1 exactly when the answer is empty (our N/A is written as "").
    assert metrics.official_squad_scores({"a": "", "b": "x"}, {"a": ["N/A"], "b": ["N/A"]}) == (50.0, 50.0)
    with pytest.raises(ValueError, match="no questions"):
        metrics.official_squad_scores({}, {})
