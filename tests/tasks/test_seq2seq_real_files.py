"""The seq2seq pipeline end to end on real-world-shaped files: finetune a tiny GLM a few dozen steps,
decode the test split, write the prediction files, score -- and check every number against an
independent recomputation.

* Summaries (``cnn_dm`` layout): CRLF line ends and, in the test files, a byte-order mark (as a
  Windows editor saves them), a long article cut at ``--src-seq-length``, Unicode punctuation (curly
  quotes, dashes, ellipsis, accents, a U+2028 line separator and a stray carriage return inside a
  line), PTB escapes, ``<S_SEP>`` sentence markers, an empty line pair and a one-word line.  The written
  ``test.jsonl.hyps``/``.refs`` have one line per test example, in order (each hypothesis equals that
  example decoded on its own); the driver's ROUGE equals rouge-score on those lines (ROUGE-L in the
  original driver's order), ``scripts/evaluate_seq2seq.sh`` equals rouge-score in the standard order.
* SQuAD v1.1 layout (``squad_v1``, the dev file with a byte-order mark): several answers per question
  (duplicates and variants, as in the official dev set), Unicode punctuation in the context and in an
  answer, a question not seen in training, and a question whose long answer straddles every window
  boundary, so it has no window and no prediction.  The official EM/F1
  (every question, unanswered 0) and the original's (answered questions only) equal an independent
  implementation of the SQuAD v1.1 evaluation run on the written answer file.
"""

import json
import re
import string
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from rouge_score import rouge_scorer

import finetune_glm
from tests.helpers import parse_config
from glm.generation import generate
from generate_samples import build_generation_model
from tasks.eval_utils import seq2seq_decode_config
from tasks.seq2seq.dataset import build_dataset
from tasks.seq2seq.metrics import postprocess_prediction, postprocess_reference
from tasks.seq2seq.outputs import prediction_text
from tests.tasks.conftest import TINY_BERT_GLM
from data_utils.tokenizers import configure_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ["--batch-size", "2", "--lr", "1e-2", "--warmup", "0.05", "--hidden-dropout", "0", "--attention-dropout",
            "0", "--eval-epoch", "1000", "--seed", "3", "--log-interval", "1000", "--overwrite"]

# ------------------------------------------------------------------------------------------ summaries
LONG_ARTICLE = (
    "Engineers at the power station said on Friday that the new turbines \u2014 built in just \u201ceighteen "
    "months\u201d \u2013 would produce enough electricity for half a million homes\u2026 The work to connect them to "
    "the national grid would be finished before winter ,\r when demand is highest , and the caf\u00e9 owners nearby "
    "were na\u00efve about the noise .")
SUMMARY_PAIRS = [
    (LONG_ARTICLE, "New turbines will power half a million homes . <S_SEP> Grid link due before winter ."),
    ("Rain .", "Heavy rain fell over the whole city today ."),
    ("", ""),
    ("The mayor -LRB- a former teacher -RRB- said `` we could n't wait '' for the\u2028new library to open .",
     "The mayor could n't wait for the new library to open ."),
]
UNSEEN = ("Fishermen reported that the catch this season was the smallest in years .",
          "Small catch for fishermen this season .")
TEST_PAIRS = SUMMARY_PAIRS + [UNSEEN]
# The references as written to test.jsonl.refs: detokenized, then as the BERT tokenizer decodes them.
EXPECTED_REFS = ["new turbines will power half a million homes . [SEP] grid link due before winter .",
                 "heavy rain fell over the whole city today .",
                 "",
                 "the mayor couldn ' t wait for the new library to open .",
                 "small catch for fishermen this season ."]
SUMMARY_LENGTHS = ["--src-seq-length", "48", "--tgt-seq-length", "24"]
SUMMARY_DECODING = ["--num-beams", "2", "--length-penalty", "0.7", "--no-repeat-ngram-size", "3"]


def write_crlf(path, lines, bom=False):
    path.write_bytes(("\ufeff" if bom else "").encode("utf-8") + "".join(line + "\r\n" for line in lines).encode("utf-8"))


@pytest.fixture(scope="module")
def summary_run(tiny_pretrained, tmp_path_factory):
    root = tmp_path_factory.mktemp("summaries")
    data = root / "data"
    data.mkdir()
    for split, pairs in (("train", SUMMARY_PAIRS), ("val", SUMMARY_PAIRS[:2]), ("test", TEST_PAIRS)):
        write_crlf(data / f"{split}.source", [source for source, _ in pairs], bom=split == "test")
        write_crlf(data / f"{split}.target", [target for _, target in pairs], bom=split == "test")
    task_flags = ["--task", "cnn_dm", "--data-dir", str(data)] + SUMMARY_LENGTHS + SUMMARY_DECODING
    argv = TINY_BERT_GLM + ["--finetune", *task_flags, "--load-pretrained", str(tiny_pretrained), "--epochs", "40",
                            "--eval-batch-size", "3", "--summary-dir", str(root / "out"), "--experiment-name", "e2e",
                            "--save", str(root / "save"), "--save-epoch", "40", *TRAINING]
    results = finetune_glm.main(argv)
    return results, root / "out" / "runs" / "e2e", root / "save" / "e2e", TINY_BERT_GLM + task_flags


def read_lines(path):
    text = path.read_text(encoding="utf-8")
    assert "\r" not in text   # CRLF input must not leak carriage returns into the line-aligned files
    return text.split("\n")[:-1]


@pytest.mark.slow
def test_summary_files_align_with_the_test_examples(summary_run):
    _, run_dir, saved, flags = summary_run
    hyps, refs = read_lines(run_dir / "test.jsonl.hyps"), read_lines(run_dir / "test.jsonl.refs")
    assert len(hyps) == len(refs) == len(TEST_PAIRS)
    assert refs == EXPECTED_REFS
    # Each hypothesis is its own example decoded alone (the run decoded 3 at a time).
    cfg = parse_config(flags + ["--load-pretrained", str(saved), "--seq-length", "48"])
    tokenizer, cfg = configure_tokenizer(cfg)
    model = build_generation_model(cfg)
    dataset = build_dataset(cfg, "test", tokenizer)
    config = seq2seq_decode_config(cfg, tokenizer)
    alone = []
    for i in range(len(dataset)):
        item = dataset[i]
        ids, _ = generate(model, torch.as_tensor(item["text"])[None], torch.as_tensor(item["position_id"])[None],
                          torch.as_tensor([int(item["attention_mask"])]), config)
        alone.append(prediction_text(cfg, tokenizer, ids[0], dataset.example_list[i]))
    assert hyps == alone
    # The memorised training examples come back word for word (the empty one as an empty line).
    assert [hyps[i] for i in (0, 1, 2, 3)] == EXPECTED_REFS[:4]
    # The long article was cut to fit --src-seq-length: source + sop.
    assert len(dataset[0]["text"]) == 48 + 1
    assert len(tokenizer.EncodeAsIds(" " + dataset.example_list[0].text_a).tokenization) > 48


@pytest.mark.slow
def test_summary_scores_equal_rouge_score_on_the_written_files(summary_run):
    results, run_dir, _, _ = summary_run
    hyps, refs = read_lines(run_dir / "test.jsonl.hyps"), read_lines(run_dir / "test.jsonl.refs")
    processed = [(postprocess_reference(r), postprocess_prediction(h)) for h, r in zip(hyps, refs)]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    standard = [scorer.score(ref, hyp) for ref, hyp in processed]
    swapped = [scorer.score(hyp, ref) for ref, hyp in processed]

    def mean(scores, kind):
        return sum(s[kind].fmeasure for s in scores) / len(scores)

    # In-training / test_results figures: the original driver's order for rouge-l.
    assert results["test"]["rouge-1"] == pytest.approx(mean(standard, "rouge1"))
    assert results["test"]["rouge-2"] == pytest.approx(mean(standard, "rouge2"))
    assert results["test"]["rouge-l"] == pytest.approx(mean(swapped, "rougeLsum"))
    assert 0.5 < results["test"]["rouge-1"] < 1.0   # the memorised examples score, the others do not
    written = json.loads((run_dir / "test_results.json").read_text())
    assert written["test"] == pytest.approx(results["test"])
    # Final scoring of the files: the standard order, x100.
    out = subprocess.run(["bash", str(ROOT / "scripts" / "evaluate_seq2seq.sh"), str(run_dir / "test.jsonl.hyps"),
                          str(run_dir / "test.jsonl.refs")], env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
                         capture_output=True, text=True, check=True)
    script = json.loads(out.stdout)
    assert script["rouge1"] == pytest.approx(round(100 * mean(standard, "rouge1"), 2))
    assert script["rougeLsum"] == pytest.approx(round(100 * mean(standard, "rougeLsum"), 2))


# ---------------------------------------------------------------------------------------------- SQuAD
CONTEXT = ("The town council met on Tuesday \u2014 for the first time since May \u2014 and promised to rebuild the old "
           "stone bridge over the river before the spring floods arrive. Residents called the plan \u201clong "
           "overdue\u201d; the bridge, built in 1887, carried 4,000 cars a day until it was closed in March.")
QUESTIONS = [
    ("q-when", "When did the council meet?", ["Tuesday", "on Tuesday", "Tuesday"]),
    # The first answer is 16 tokens long and straddles the boundary of every window at
    # --src-seq-length 36: this question has no window, hence no prediction.
    ("q-what", "What did the council promise?",
     ["to rebuild the old stone bridge over the river before the spring floods arrive", "rebuild the old stone bridge"]),
    ("q-year", "When was the bridge built?", ["1887", "in 1887"]),
    ("q-cars", "How many cars used the bridge each day?", ["4,000", "4,000 cars"]),
    ("q-view", "How did residents describe the plan?", ["\u201clong overdue\u201d", "long overdue"]),
    ("q-month", "In which month was the bridge closed?", ["March", "in March"]),   # dev only
]


def squad_v11_document(questions):
    qas = [{"answers": [{"answer_start": CONTEXT.index(a), "text": a} for a in answers], "question": question,
            "id": qid} for qid, question, answers in questions]
    return {"version": "1.1", "data": [{"title": "Bridge", "paragraphs": [{"context": CONTEXT, "qas": qas}]}]}


@pytest.fixture(scope="module")
def squad_run(tiny_pretrained, tmp_path_factory):
    root = tmp_path_factory.mktemp("squad")
    data = root / "data"
    data.mkdir()
    (data / "train-v1.1.json").write_text(json.dumps(squad_v11_document(QUESTIONS[:-1])), encoding="utf-8")
    (data / "dev-v1.1.json").write_text(json.dumps(squad_v11_document(QUESTIONS), ensure_ascii=False),
                                        encoding="utf-8-sig")
    argv = TINY_BERT_GLM + ["--finetune", "--task", "squad_v1", "--data-dir", str(data), "--src-seq-length", "36",
                            "--tgt-seq-length", "12", "--load-pretrained", str(tiny_pretrained), "--epochs", "30",
                            "--num-beams", "2", "--eval-batch-size", "4", "--summary-dir", str(root / "out"),
                            "--experiment-name", "squad", *TRAINING]
    results = finetune_glm.main(argv)
    return results, root / "out" / "runs" / "squad", data / "dev-v1.1.json"


def official_normalize(text):
    """SQuAD v1.1 evaluation: lower case, ASCII punctuation and articles removed, white space collapsed."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def official_f1(prediction, truth):
    predicted, gold = official_normalize(prediction).split(), official_normalize(truth).split()
    same = sum((Counter(predicted) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def official_evaluate(dataset_path, answers, answered_only=False):
    """(EM, F1) x100 as the SQuAD v1.1 evaluation script defines them; ``answered_only`` averages over
    the answered questions only (the original GLM driver's figure)."""
    exact = f1 = total = 0
    for article in json.loads(Path(dataset_path).read_text(encoding="utf-8-sig"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa["id"] not in answers:
                    total += 0 if answered_only else 1
                    continue
                total += 1
                truths = [a["text"] for a in qa["answers"]]
                prediction = answers[qa["id"]]
                exact += max(float(official_normalize(prediction) == official_normalize(t)) for t in truths)
                f1 += max(official_f1(prediction, t) for t in truths)
    return 100.0 * exact / total, 100.0 * f1 / total


@pytest.mark.slow
def test_squad_v11_official_and_original_figures(squad_run):
    results, run_dir, dev_file = squad_run
    answers = json.loads((run_dir / "test.jsonl").read_text(encoding="utf-8"))
    windows = [json.loads(line) for line in (run_dir / "test.jsonl.refs").read_text(encoding="utf-8").splitlines()]
    # One line per window, in order; the question without a window is absent everywhere.
    assert [w["id"] for w in windows] == sorted((w["id"] for w in windows), key=[q[0] for q in QUESTIONS].index)
    assert {w["id"] for w in windows} == set(answers) == {"q-when", "q-year", "q-cars", "q-view", "q-month"}
    for qid, answer in answers.items():
        window_answers = [w["pred"] for w in windows if w["id"] == qid and w["pred"].replace(" ", "").lower() != "n/a"]
        assert answer == (window_answers[0] if window_answers else "")
    # Several gold answers per question reach the metric.
    assert next(w for w in windows if w["id"] == "q-when")["gold"] == ["Tuesday", "on Tuesday", "Tuesday"]
    test = results["test"]
    assert test["questions_without_window"] == 1
    em, f1 = official_evaluate(dev_file, answers)
    assert (test["EM"], test["F1"]) == (pytest.approx(em), pytest.approx(f1))
    em_answered, f1_answered = official_evaluate(dev_file, answers, answered_only=True)
    assert (test["EM_original"], test["F1_original"]) == (pytest.approx(em_answered), pytest.approx(f1_answered))
    assert test["EM"] == pytest.approx(test["EM_original"] * 5 / 6)
    assert test["F1"] > 0   # the memorised answers score
