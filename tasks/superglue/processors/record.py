"""ReCoRD: a news passage, a cloze query with ``@placeholder``, and the passage's entities as the
candidate answers.

Evaluation examples carry every entity and every gold answer (label ``"1"``, scored with EM/F1 over
the gold answers).  Training examples (and the dev set when it validates during training) are one
per gold answer: that answer first (label ``"0"``) followed by at most 9 other entities, shuffled
with ``random.Random(42)`` (one generator per file, as the original) when there are more.
"""

import random

from ..examples import InputExample, punctuation_standardization as standardize
from ..samples import classification_sample
from .base import SuperGlueProcessor, field, read_json_lines

SHUFFLE_SEED = 42
MAX_TRAIN_CANDIDATES = 10  # the gold answer plus 9 negatives


class RecordProcessor(SuperGlueProcessor):
    """ReCoRD reader; ``meta`` holds ``candidates`` (entity strings) and ``answers``."""

    def get_labels(self):
        return ["0", "1"]

    @property
    def variable_num_choices(self):
        return True

    def create_examples(self, path, set_type, for_train=False):
        shuffler = random.Random(SHUFFLE_SEED)
        examples = []
        for _, where, record in read_json_lines(path):
            idx = field(record, "idx", where)
            passage = field(record, "passage", where)
            text = standardize(field(passage, "text", where))
            # Entity offsets are inclusive and refer to the text before @highlight is rewritten.
            entities = sorted({standardize(text[field(e, "start", where):field(e, "end", where) + 1])
                               for e in field(passage, "entities", where)})
            text = text.replace("@highlight\n", "- ")  # the GPT-3 paper's rendering of highlights
            for question_json in field(record, "qas", where):
                question = standardize(field(question_json, "query", where))
                question_idx = field(question_json, "idx", where)
                answers = list(dict.fromkeys(standardize(field(a, "text", where))
                                             for a in question_json.get("answers", [])))
                if set_type == "train" or for_train:
                    examples += self._training_examples(text, question, idx, question_idx, entities, answers,
                                                        set_type, shuffler)
                else:
                    meta = {"passage_idx": idx, "question_idx": question_idx, "candidates": entities,
                            "answers": answers}
                    examples.append(InputExample(guid=f"{set_type}-p{idx}-q{question_idx}", text_a=text,
                                                 text_b=question, label="1", meta=meta, idx=question_idx,
                                                 num_choices=len(entities)))
        return examples

    @staticmethod
    def _training_examples(text, question, idx, question_idx, entities, answers, set_type, shuffler):
        examples = []
        for answer_idx, answer in enumerate(answers):
            negatives = [entity for entity in entities if entity not in answers]
            if len(negatives) > MAX_TRAIN_CANDIDATES - 1:
                shuffler.shuffle(negatives)
                negatives = negatives[:MAX_TRAIN_CANDIDATES - 1]
            meta = {"passage_idx": idx, "question_idx": question_idx, "candidates": [answer] + negatives,
                    "answers": [answer]}
            examples.append(InputExample(guid=f"{set_type}-p{idx}-q{question_idx}-a{answer_idx}", text_a=text,
                                         text_b=question, label="0", meta=meta,
                                         idx=[idx, question_idx, answer_idx], num_choices=len(negatives) + 1))
        return examples

    def encode(self, example, tokenizer, config):
        """Non-cloze: one ``[CLS] passage [SEP] query entity [eos]`` row per candidate."""
        # The query and each entity are tokenized apart and their ids joined, as in the original.
        passage = tokenizer.EncodeAsIds(example.text_a).tokenization
        query = tokenizer.EncodeAsIds(example.text_b).tokenization
        rows = [self.encode_pair_ids(tokenizer, passage, query + tokenizer.EncodeAsIds(candidate).tokenization, config)
                for candidate in example.meta["candidates"]]
        return classification_sample(rows, self.label_index(example), example.guid, config)

    def format_predictions(self, predictions, examples):
        """``{"idx": question idx, "label": the chosen entity string}``."""
        return [{"idx": example.idx, "label": example.meta["candidates"][prediction]}
                for prediction, example in zip(predictions, examples)]
