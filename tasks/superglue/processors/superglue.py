"""Readers of the sentence-pair and choice tasks of SuperGLUE: RTE (and its AX-b/AX-g diagnostics),
CB, BoolQ, WiC, COPA and MultiRC.  WSC and ReCoRD, which need more repair work, have their own
modules."""

from ..examples import InputExample, punctuation_standardization as standardize
from ..samples import classification_sample
from ..errors import TaskDataError
from .base import SuperGlueProcessor, field, read_json_lines


def _int_idx(value, where, fallback=None):
    """The example id as an int; string ids are converted (RTE falls back to the line number)."""
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        if fallback is None:
            raise TaskDataError(f"{where}: idx {value!r} is not an integer") from None
        return fallback


class RteProcessor(SuperGlueProcessor):
    """RTE: ``premise`` -> ``text_a``, ``hypothesis`` -> ``text_b``."""

    HYPOTHESIS, PREMISE = "hypothesis", "premise"

    def get_labels(self):
        return ["entailment", "not_entailment"]

    def create_examples(self, path, set_type, for_train=False):
        examples = []
        for line_index, where, record in read_json_lines(path):
            idx = _int_idx(field(record, "idx", where), where, fallback=line_index)
            examples.append(InputExample(
                guid=f"{set_type}-{idx}", text_a=standardize(field(record, self.PREMISE, where)),
                text_b=standardize(field(record, self.HYPOTHESIS, where)),
                label=self.checked_label(record.get("label"), where), idx=idx))
        return examples


class AxGProcessor(RteProcessor):
    """AX-g (Winogender diagnostic): RTE format, one file ``AX-g.jsonl`` for train and test."""

    def split_file(self, split):
        return "AX-g.jsonl" if split in ("train", "test") else super().split_file(split)


class AxBProcessor(RteProcessor):
    """AX-b (broad-coverage diagnostic): ``sentence1``/``sentence2`` in ``AX-b.jsonl``."""

    HYPOTHESIS, PREMISE = "sentence2", "sentence1"

    def split_file(self, split):
        return "AX-b.jsonl" if split in ("train", "test") else super().split_file(split)


class CbProcessor(RteProcessor):
    """CommitmentBank: RTE format with three labels."""

    def get_labels(self):
        return ["entailment", "contradiction", "neutral"]


class BoolQProcessor(SuperGlueProcessor):
    """BoolQ: ``passage`` -> ``text_a``, ``question`` -> ``text_b``; labels ``"false"``/``"true"``."""

    def get_labels(self):
        return ["false", "true"]

    def create_examples(self, path, set_type, for_train=False):
        examples = []
        for _, where, record in read_json_lines(path):
            idx = field(record, "idx", where)
            label = str(record["label"]).lower() if "label" in record else None
            examples.append(InputExample(
                guid=f"{set_type}-{idx}", text_a=standardize(field(record, "passage", where)),
                text_b=standardize(field(record, "question", where)),
                label=self.checked_label(label, where), idx=idx))
        return examples


class WicProcessor(SuperGlueProcessor):
    """WiC: two sentences and the target ``word`` (in ``meta``)."""

    def get_labels(self):
        return ["false", "true"]

    def create_examples(self, path, set_type, for_train=False):
        examples = []
        for _, where, record in read_json_lines(path):
            idx = _int_idx(field(record, "idx", where), where)
            # The original maps any falsy or missing label to "false"; a missing one in a training file is
            # refused instead (it would train as "false"), and test lines stay unlabelled (index 0 alike).
            label = ("true" if record["label"] else "false") if "label" in record else None
            examples.append(InputExample(
                guid=f"{set_type}-{idx}", text_a=standardize(field(record, "sentence1", where)),
                text_b=standardize(field(record, "sentence2", where)), label=self.checked_label(label, where),
                idx=idx,
                meta={"word": field(record, "word", where)}))
        return examples

    def get_classifier_input(self, example):
        return f"{example.meta['word']}: {example.text_a}", example.text_b


class CopaProcessor(SuperGlueProcessor):
    """COPA: premise in ``text_a``; ``choice1``, ``choice2`` and ``question`` (cause/effect) in
    ``meta``.  Training data is doubled with mirrored examples (choices swapped, label flipped,
    guid + ``m``), as the original did.  The premise and choices are kept raw here (the patterns
    use them as they are; the classification encoding standardises punctuation itself)."""

    def get_labels(self):
        return [0, 1]

    def create_examples(self, path, set_type, for_train=False):
        examples = []
        for _, where, record in read_json_lines(path):
            idx = field(record, "idx", where)
            question = field(record, "question", where)
            if question not in ("cause", "effect"):
                raise TaskDataError(f"{where}: question must be 'cause' or 'effect', got {question!r}")
            meta = {"choice1": field(record, "choice1", where), "choice2": field(record, "choice2", where),
                    "question": question}
            examples.append(InputExample(guid=f"{set_type}-{idx}", text_a=field(record, "premise", where),
                                         label=self.checked_label(record.get("label"), where), meta=meta,
                                         idx=idx))
        if set_type == "train":
            examples += [self.mirror(example) for example in examples]
        return examples

    @staticmethod
    def mirror(example):
        """The same question with the choices swapped (the mirror keeps the default ``idx``)."""
        meta = {"choice1": example.meta["choice2"], "choice2": example.meta["choice1"],
                "question": example.meta["question"]}
        return InputExample(guid=example.guid + "m", text_a=example.text_a,
                            label=1 if example.label == 0 else 0, meta=meta)

    def encode(self, example, tokenizer, config):
        """One ``[CLS] premise because|so [SEP] choice [eos]`` row per choice."""
        joiner = "because" if example.meta["question"] == "cause" else "so"
        premise = f"{standardize(example.text_a)} {joiner}"
        rows = [self.encode_pair(tokenizer, premise, standardize(example.meta[key]), config)
                for key in ("choice1", "choice2")]
        return classification_sample(rows, self.label_index(example), example.guid, config)


class MultiRcProcessor(SuperGlueProcessor):
    """MultiRC: one example per answer option (``text_a`` passage, ``text_b`` question, the answer
    and its passage/question/answer ids in ``meta``); labels 0/1.  Metrics regroup the answers of a
    question through ``meta``."""

    def get_labels(self):
        return [0, 1]

    def create_examples(self, path, set_type, for_train=False):
        examples = []
        for _, where, record in read_json_lines(path):
            passage_idx = field(record, "idx", where)
            passage = field(record, "passage", where)
            text = standardize(field(passage, "text", where))
            for question_json in field(passage, "questions", where):
                question = standardize(field(question_json, "question", where))
                question_idx = field(question_json, "idx", where)
                for answer_json in field(question_json, "answers", where):
                    answer_idx = field(answer_json, "idx", where)
                    meta = {"passage_idx": passage_idx, "question_idx": question_idx, "answer_idx": answer_idx,
                            "answer": standardize(field(answer_json, "text", where))}
                    examples.append(InputExample(
                        guid=f"{set_type}-p{passage_idx}-q{question_idx}-a{answer_idx}", text_a=text,
                        text_b=question, label=self.checked_label(answer_json.get("label"), where), meta=meta,
                        idx=[passage_idx, question_idx, answer_idx]))
        return examples

    def get_classifier_input(self, example):
        return example.text_a, " ".join([example.text_b, "answer:", example.meta["answer"]])

    def format_predictions(self, predictions, examples):
        """One record per passage: ``{"idx", "passage": {"questions": [{"idx", "answers": [{"idx",
        "label"}]}]}}``, passages and questions in order of first appearance."""
        labels, passages = self.get_labels(), {}
        for prediction, example in zip(predictions, examples):
            questions = passages.setdefault(example.meta["passage_idx"], {})
            answers = questions.setdefault(example.meta["question_idx"], [])
            answers.append({"idx": example.meta["answer_idx"], "label": labels[prediction]})
        return [{"idx": passage_idx,
                 "passage": {"questions": [{"idx": q, "answers": a} for q, a in questions.items()]}}
                for passage_idx, questions in passages.items()]
