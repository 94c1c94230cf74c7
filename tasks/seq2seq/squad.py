"""SQuAD-format tasks: question generation, extractive QA as generation, and CMRC (spec section 9.4).

All three read the SQuAD JSON layout (``{"data": [{"paragraphs": [{"context": str, "qas": [{"id",
"question", "answers": [{"text", "answer_start"}]}]}]}]}``) and differ in what goes where:

=====================  =========================================================  ===========
task                   source (part A, before padding)                            target
=====================  =========================================================  ===========
``squad_generation``   ``[ENC] context " Question:" [mask] " Answer: answer"``     question
``squad``/``squad_v1`` ``[ENC] " question" [mask] "." " context-window"``          answer
``cmrc``               ``[ENC] "问题：question答案：" [MASK] context``              answer
=====================  =========================================================  ===========

Extractive SQuAD cuts each context into overlapping windows (one example per window); a window that
does not contain the answer is trained to say ``N/A`` (SQuAD 2.0), or dropped (``squad_v1``).
"""

import os

from ..jsonl import TaskDataError
from .char_offsets import wordpiece_offsets
from .example import InputExample
from .files import check_split, read_json, split_path
from .retokenize import squad_fix_tokenization
from .summarization import decoded_reference

NO_ANSWER = "N/A"
# The original CMRC reader gave test questions this answer (test files carry none); the decoder never
# sees it, but it is the reference of such examples.
PLACEHOLDER_ANSWER = "FAKE_ANSWER"


def squad_questions(path):
    """Yield ``(context, qa, where)`` for every question of a SQuAD-format file, checking the fields
    the readers use; ``where`` names the file and question for error messages."""
    document = read_json(path)
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list):
        raise TaskDataError(f"{path}: expected a SQuAD file, an object with a 'data' list of articles")
    for a, article in enumerate(articles):
        for p, paragraph in enumerate(article.get("paragraphs", []) if isinstance(article, dict) else []):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                raise TaskDataError(f"{path}: data[{a}].paragraphs[{p}] has no 'context' string")
            for q, qa in enumerate(paragraph.get("qas", [])):
                where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}] (id {qa.get('id')!r})"
                if not isinstance(qa.get("question"), str):
                    raise TaskDataError(f"{where}: no 'question' string")
                answers = qa.get("answers", [])
                if not isinstance(answers, list) or not all(isinstance(x, dict) and isinstance(x.get("text"), str)
                                                           for x in answers):
                    raise TaskDataError(f"{where}: 'answers' must be a list of {{'text': str, ...}}")
                yield context, qa, where


def _distinct_answers(qa):
    """The question's answer texts without repeats, in file order (the original used a set, whose
    order changes from run to run)."""
    return list(dict.fromkeys(answer["text"] for answer in qa.get("answers", [])))


class SquadGenerationFormat:
    """``squad_generation``: ``{train,dev,test}.json``; one example per distinct answer of each
    question.  The answer is part of the source; the question is the target and the reference."""

    def __init__(self, spec, data_dir, tokenizer):
        self.spec, self.data_dir, self.tokenizer = spec, data_dir, tokenizer

    def examples(self, split):
        path = split_path(self.data_dir, self.spec.split_stems, split, ".json")
        examples, origins = [], []
        for context, qa, where in squad_questions(path):
            answers = _distinct_answers(qa)
            if not answers:
                raise TaskDataError(f"{where}: question generation needs an answer to ask about")
            for answer in answers:
                meta = {"answer": answer, "question": qa["question"],
                        "ref": decoded_reference(self.tokenizer, qa["question"])}
                examples.append(InputExample(guid=f"{split}-{len(examples)}", text_a=context, meta=meta))
                origins.append(where)
        return examples, origins

    def source_tokens(self, example, mask_id, max_length, ids):
        """``[ENC] context " Question:" [mask] " Answer: answer"``.  A context too long for the source
        keeps a window centred on the first occurrence of the answer (its start, if not found)."""
        encode = self.tokenizer.EncodeAsIds
        answer = example.meta["answer"]
        context = encode(example.text_a.rstrip() + " Question:").tokenization
        answer_tokens = encode(" Answer: " + answer).tokenization
        room = max_length - len(answer_tokens) - 2
        if len(context) > room:
            room = max(room, 0)
            start = _find_sublist(context, encode(" " + answer).tokenization)
            start = 0 if start is None else max(start - room // 2, 0)
            context = context[start:start + room]
        return [ids.enc] + context + [mask_id] + answer_tokens

    @staticmethod
    def target_text(example):
        return example.meta["question"]


class CmrcFormat(SquadGenerationFormat):
    """``cmrc`` (CMRC 2018, Chinese): ``{train,dev,test}.json``; one example per distinct answer; the
    answer is the target.  A question without answers gets the placeholder answer in the test split
    (as in the original, whose test files carry none) and no example otherwise."""

    def examples(self, split):
        path = split_path(self.data_dir, self.spec.split_stems, split, ".json")
        examples, origins = [], []
        for context, qa, where in squad_questions(path):
            answers = _distinct_answers(qa) or ([PLACEHOLDER_ANSWER] if split == "test" else [])
            for answer in answers:
                meta = {"answer": answer, "question": qa["question"],
                        "ref": decoded_reference(self.tokenizer, answer)}
                examples.append(InputExample(guid=f"{split}-{len(examples)}", text_a=context, meta=meta))
                origins.append(where)
        return examples, origins

    def source_tokens(self, example, mask_id, max_length, ids):
        """``[ENC] "问题：q答案：" [MASK] context``, the context cut to fit.  A question that leaves no
        room for the context is cut to a quarter of the source (the original meant to, but crashed)."""
        encode = self.tokenizer.EncodeAsIds
        question = encode("问题：" + example.meta["question"].strip() + "答案：").tokenization
        if max_length - len(question) - 2 <= 0:
            question = question[:max_length // 4]
        room = max_length - len(question) - 2
        context = encode(example.text_a.rstrip()).tokenization
        return [ids.enc] + question + [mask_id] + context[:room]

    @staticmethod
    def target_text(example):
        return example.meta["answer"].strip()


class SquadExtractiveFormat:
    """``squad`` (SQuAD 2.0: ``train-v2.0.json``, ``dev-v2.0.json``; ``squad_v1`` reads the ``-v1.1``
    files, :class:`SquadV1ExtractiveFormat`); the dev file serves as both dev and test split.

    Each context is encoded once and cut into windows of ``src - 3 - len(" question")`` tokens every
    ``src // 2`` tokens, stopping after the first window that reaches the end.  A window's text is
    the decoded window; its answer is the question's first answer if that (decoded) occurs in the
    window, else ``N/A`` -- and such windows are skipped for ``squad_v1``.  ``meta`` keeps what
    scoring needs: the full context, its ids and (BERT) their character offsets, all gold answers.
    After :meth:`examples`, ``questions`` holds ``{question id: gold answer texts}`` for *every*
    question of the file (``["N/A"]`` without answers), windows or not: the official evaluation
    averages over all of them.
    """

    VERSION = "v2.0"                  # the file names' version
    KEEP_UNANSWERED_WINDOWS = True    # SQuAD 2.0 trains windows without the answer to say N/A

    def __init__(self, spec, data_dir, tokenizer, max_src_length, use_offsets):
        self.spec, self.data_dir, self.tokenizer = spec, data_dir, tokenizer
        self.max_src_length, self.use_offsets = max_src_length, use_offsets

    def path(self, split):
        check_split(split)
        return os.path.join(self.data_dir or "", f"{'train' if split == 'train' else 'dev'}-{self.VERSION}.json")

    def examples(self, split):
        encode, decode = (lambda text: self.tokenizer.EncodeAsIds(text).tokenization), self.tokenizer.DecodeIds
        examples, origins, offsets_of = [], [], {}
        self.questions = {}
        for context, qa, where in squad_questions(self.path(split)):
            if context not in offsets_of:   # questions of one paragraph share its encoding
                context_tokens = encode(context)
                offsets = wordpiece_offsets(self.tokenizer, context, context_tokens) if self.use_offsets else None
                offsets_of = {context: (context_tokens, offsets)}
            context_tokens, offsets = offsets_of[context]
            question_tokens = encode(" " + qa["question"])
            length = self.max_src_length - 3 - len(question_tokens)
            if length <= 0:
                raise TaskDataError(f"{where}: the question takes {len(question_tokens)} tokens and leaves no room "
                                    f"for the context in --src-seq-length {self.max_src_length}")
            answers = [answer["text"] for answer in qa["answers"]] or [NO_ANSWER]
            self.questions[qa.get("id")] = answers
            gold = decode(encode(answers[0]))
            for start in range(0, len(context_tokens), self.max_src_length // 2):
                window = context_tokens[start:start + length]
                text = decode(window)
                answer = answers[0] if gold and gold in text else NO_ANSWER
                if not self.KEEP_UNANSWERED_WINDOWS and answer == NO_ANSWER:
                    continue
                meta = {"context": context, "context_tokens": context_tokens, "token_to_char": offsets,
                        "answer": answer, "answers": answers, "question": qa["question"], "ref": answer}
                examples.append(InputExample(guid=f"{split}-{len(examples)}", text_a=text, meta=meta,
                                             idx=qa.get("id")))
                origins.append(where)
                if len(window) < length:
                    break
        return examples, origins

    def source_tokens(self, example, mask_id, max_length, ids):
        """``[ENC] " question" [mask] "." " window"``, the window cut to fit."""
        encode = self.tokenizer.EncodeAsIds
        question = encode(" " + example.meta["question"].strip()).tokenization
        window = encode(" " + example.text_a.rstrip()).tokenization
        room = max_length - len(question) - 3
        if room <= 0:
            raise TaskDataError(f"{example.guid}: the question leaves no room for the context")
        return [ids.enc] + question + [mask_id, self.tokenizer.TokenToId(".")] + window[:room]

    @staticmethod
    def target_text(example):
        return example.meta["answer"].strip()


class SquadV1ExtractiveFormat(SquadExtractiveFormat):
    """``squad_v1``: the SQuAD 1.1 files; a window without the answer is dropped (every question
    has one)."""
    VERSION = "v1.1"
    KEEP_UNANSWERED_WINDOWS = False


def squad_decode(example, prediction, tokenizer):
    """The answer text of generated ids ``prediction`` (``eop``/``pad`` already removed).

    ``N/A`` stays ``N/A``.  Ids that occur in the context's ids are replaced by the context's own
    characters (BERT output is lower-cased and spaced); otherwise the decoded text with BERT's
    spacing undone (:func:`squad_fix_tokenization`).
    """
    prediction = list(prediction)
    text = tokenizer.DecodeIds(prediction)
    if not prediction or text.replace(" ", "").lower() == NO_ANSWER.lower():
        return text
    context_tokens = example.meta.get("context_tokens")
    offsets = example.meta.get("token_to_char")
    if context_tokens is not None and offsets is not None:
        start = _find_sublist(context_tokens, prediction)
        if start is not None:
            first, last = offsets[start], offsets[start + len(prediction) - 1]
            return example.meta["context"][first[0]:last[1]]
    return squad_fix_tokenization(text)


def _find_sublist(items, pattern):
    """Index of the first occurrence of ``pattern`` in ``items`` (``None`` if absent or empty)."""
    items, pattern = list(items), list(pattern)
    if not pattern:
        return None
    for i in range(len(items) - len(pattern) + 1):
        if items[i] == pattern[0] and items[i:i + len(pattern)] == pattern:
            return i
    return None
