"""Tiny data files, in each task's public format, for the tasks of multi-task pretraining."""

import json
from pathlib import Path

MNLI_HEADER = "index\tgenre\tsentence1\tsentence2\tgold_label"
MNLI_ROWS = ["0\tfiction\tThe cat sat on the mat.\tA cat is sitting.\tentailment",
             "1\tfiction\tThe sky is green.\tThe sky is blue.\tcontradiction",
             "2\tgovernment\tHe went home early.\tHe was tired.\tneutral"]
RACE_PASSAGES = {
    "train/middle/1.txt": {"id": "middle1.txt", "article": "Tom has a dog .\nThe dog is  brown . It likes to run .",
                           "questions": ["What color is the dog?", "Tom's dog likes to _ ."],
                           "options": [["black", "brown", "white", "red"], ["sleep", "eat", "run", "swim"]],
                           "answers": ["B", "C"]},
    "train/high/2.txt": {"id": "high2.txt", "article": "The river floods every spring.",
                         "questions": ["When does the river flood?"],
                         "options": [["in winter", "in summer", "in spring", "never"]], "answers": ["C"]},
    "dev/middle/3.txt": {"id": "middle3.txt", "article": "Anna reads a book every night.",
                         "questions": ["What does Anna do every night?"],
                         "options": [["sings", "reads", "cooks", "dances"]], "answers": ["B"]},
}
SQUAD = {"version": "v2.0", "data": [{"title": "Paris", "paragraphs": [{
    "context": "Paris is the capital of France. It lies on the Seine.",
    "qas": [{"id": "q1", "question": "What is the capital of France?",
             "answers": [{"text": "Paris", "answer_start": 0}], "is_impossible": False},
            {"id": "q2", "question": "What is the capital of Mars?", "answers": [], "is_impossible": True},
            {"id": "q3", "question": "Which river flows through Paris?",
             "answers": [{"text": "the Seine", "answer_start": 44}], "is_impossible": False}]}]}]}


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def write_task_files(root):
    """Write every multi-task task under ``root`` in the original's directory names; returns ``root``."""
    root = Path(root)
    mnli = "\n".join([MNLI_HEADER] + MNLI_ROWS) + "\n"
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        _write(root / "MNLI" / name, mnli)
    _write(root / "MNLI" / "test_matched.tsv", "index\tgenre\tsentence1\tsentence2\n0\tfiction\tA b.\tC d.\n")
    cola = "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tThey drank the pub.\n"
    _write(root / "CoLA" / "train.tsv", cola)
    _write(root / "CoLA" / "dev.tsv", cola)
    _write(root / "CoLA" / "test.tsv", "index\tsentence\n0\tBill whistled past the house.\n")
    sst = "sentence\tlabel\na gorgeous , witty film \t1\nthe plot is a mess \t0\n"
    _write(root / "SST-2" / "train.tsv", sst)
    _write(root / "SST-2" / "dev.tsv", sst)
    # MRPC ships with a byte-order mark and quote characters that are text, not quoting.
    mrpc = ("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
            "1\t1\t2\tHe said \"yes\" to the offer.\tHe accepted the offer.\n"
            "0\t3\t4\tThe stock rose.\tRain is expected today.\n")
    _write(root / "MRPC" / "train.tsv", mrpc)
    _write(root / "MRPC" / "dev.tsv", mrpc)
    qqp = ("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
           "0\t1\t2\tHow do I learn Python?\tWhat is the best way to learn Python?\t1\n"
           "1\t3\t4\tWhy is the sky blue?\tHow tall is Everest?\t0\n")
    _write(root / "QQP" / "train.tsv", qqp)
    _write(root / "QQP" / "dev.tsv", qqp)
    qnli = ("index\tquestion\tsentence\tlabel\n"
            "0\tWhat is the capital of France?\tParis is the capital of France.\tentailment\n"
            "1\tWho wrote Hamlet?\tThe weather is nice.\tnot_entailment\n")
    _write(root / "QNLI" / "train.tsv", qnli)
    _write(root / "QNLI" / "dev.tsv", qnli)
    agnews = ('"3","Wall St. Bears Claw Back","Short-sellers are\\seeing green again."\n'
              '"2","Team wins cup","The home team won the final\\ on Sunday."\n')
    for name in ("train.csv", "test.csv"):
        _write(root / "Agnews" / name, agnews)
    yahoo = '"5","Why is my computer slow?","It crashes\\nall the time.","Buy more memory."\n' \
            '"6","Who won the match?","","The home team did."\n'
    for name in ("train.csv", "test.csv"):
        _write(root / "Yahoo" / name, yahoo)
    polarity = '"1","The food was cold.\\nNever again."\n"2","Great pizza, friendly staff."\n'
    full = '"5","Amazing place!"\n"1","Awful service."\n"3","It was fine."\n'
    for name in ("train.csv", "test.csv"):
        _write(root / "yelp_review_polarity_csv" / name, polarity)
        _write(root / "yelp_review_full_csv" / name, full)
    for name in ("train-v2.0.json", "dev-v2.0.json"):
        _write(root / "SQuAD" / name, json.dumps(SQUAD))
    for relative, record in RACE_PASSAGES.items():
        _write(root / "RACE" / relative, json.dumps(record))
    return root
