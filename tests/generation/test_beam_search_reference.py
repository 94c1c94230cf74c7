"""Seq2seq decoding reproduces the original's seq2seq evaluator (generation/beam_search.json).

Every recorded case (66 settings: beams 1/2/4/5, length penalty 0/0.7/1/1.5, no-repeat-ngram 0/3,
min target length 0/5, two settings where --out-seq-length and --tgt-seq-length differ; batch sizes 1
and 4; 858 cases) is decoded through ``seq2seq_decode_config`` + ``glm.generation.generate`` on the
recorded input tensors with the public ``glm_bert`` checkpoint.  Checked per case: the generated
tokens (the original's finalize rows), the best hypothesis' score, the number of decoding steps
(= model calls) and the prediction text.  The inputs themselves are rebuilt by our Seq2SeqDataset.
"""

import dataclasses
import json

import pytest
import torch

from tests.helpers import parse_config
from glm.generation import beam_search_block, generate
from generate_samples import build_generation_model
from tasks.eval_utils import seq2seq_decode_config
from tasks.seq2seq.dataset import build_dataset
from tasks.seq2seq.outputs import prediction_text
from tests.conftest import shared_dir
from data_utils.tokenizers import configure_tokenizer

REFERENCE = shared_dir() / "glm_reference" / "generation" / "beam_search.json"
SCORE_TOL = 1e-4


def _setting_names():
    # Read at collection time so that each setting is its own test; without the reference set the
    # (single) placeholder is skipped by the reference_dir fixture.
    if not REFERENCE.is_file():
        return ["missing"]
    return [s["name"] for s in json.loads(REFERENCE.read_text())["settings"]]


@pytest.fixture(scope="module")
def recorded(reference_dir):
    return json.loads((reference_dir / "generation" / "beam_search.json").read_text())


@pytest.fixture(scope="module")
def glm_bert(recorded, reference_dir):
    """The model and tokenizer the recording used, loaded once for every setting."""
    checkpoint = reference_dir / recorded["model"]["checkpoint"]
    cfg = parse_config(recorded["model"]["model_argv"] + ["--load-pretrained", str(checkpoint)])
    tokenizer, cfg = configure_tokenizer(cfg)
    model = build_generation_model(cfg)
    for name, expected in recorded["tokenizer"]["command_ids"].items():
        assert tokenizer.get_command(name).Id == expected, name
    assert cfg.model.vocab_size == recorded["model"]["config"]["vocab_size"]
    return model, tokenizer


class CallCounter:
    """Counts the model calls of a decode (the KV-cache wrapper embeds the input ids once per call)."""

    def __init__(self, model):
        self.calls = 0
        self.handle = model.word_embeddings.register_forward_hook(self._count)

    def _count(self, *_):
        self.calls += 1

    def close(self):
        self.handle.remove()


def case_args(setting, batch_size):
    return parse_config(setting["argv"][str(batch_size)])   # --data-dir is not read here


def case_inputs(case):
    return (torch.tensor(case["input_ids"]), torch.tensor(case["position_ids"]),
            torch.tensor(case["attention_mask"]))


def assert_finalize_row(ids, recorded_row, eop, pad, label):
    """The original's finalize row is the hypothesis, then ``eop`` if it ended on one, then padding."""
    assert recorded_row[:len(ids)] == ids, label
    assert set(recorded_row[len(ids):]) <= {eop, pad}, label


@pytest.mark.parametrize("setting_name", _setting_names())
def test_seq2seq_decoding_matches_original_evaluator(setting_name, recorded, glm_bert):
    model, tokenizer = glm_bert
    setting = next(s for s in recorded["settings"] if s["name"] == setting_name)
    eop, pad = tokenizer.get_command("eop").Id, tokenizer.get_command("pad").Id
    cases = [c for c in recorded["cases"] if c["setting"] == setting_name]
    assert len(cases) == 13   # 10 items at batch size 1, 3 batches at batch size 4
    for case in cases:
        label = case["id"]
        cfg = case_args(setting, case["batch_size"])
        config = seq2seq_decode_config(cfg, tokenizer)
        counter = CallCounter(model)
        try:
            ids, scores = generate(model, *case_inputs(case), config)
        finally:
            counter.close()
        for row, recorded_row in zip(ids, case["finalize_ids"]):
            assert_finalize_row(row, recorded_row, eop, pad, label)
        assert [[t for t in row if t not in (eop, pad)] for row in ids] == case["output_ids"], label
        assert counter.calls == case["steps"], label
        texts = [prediction_text(cfg, tokenizer, row) for row in ids]
        assert texts == case["prediction_text"], label
        if setting["num_beams"] > 1:
            assert scores == pytest.approx(case["scores"], abs=SCORE_TOL), label
        else:
            # One beam decodes greedily; the beam path with one beam gives the same tokens and the
            # original's score (sum of log-probs / max(n, 1) ** length_penalty).
            assert scores is None
            beam_ids, beam_scores = beam_one(model, case, config)
            assert beam_ids == ids, label
            assert beam_scores == pytest.approx(case["scores"], abs=SCORE_TOL), label


@torch.no_grad()
def beam_one(model, case, config):
    from glm.generation.kv_cache import KVCacheModel

    tokens, position_ids, sep = case_inputs(case)
    cached = KVCacheModel(model, max_memory_length=0)
    logits, *mems = cached(tokens, position_ids, sep)
    config = dataclasses.replace(config, num_beams=1, top_k=0)
    return beam_search_block(cached, logits[:, -1], mems, position_ids[:, 0, -1], int(position_ids[0, 1, -1]) + 1,
                             config)


def test_recorded_inputs_are_what_our_dataset_builds(recorded, glm_bert, tmp_path):
    """The recorded evaluator inputs are the original Seq2SeqDataset's test items; ours builds the same."""
    _, tokenizer = glm_bert
    dataset_info = recorded["dataset"]
    (tmp_path / "test.source").write_text("".join(t + "\n" for t in dataset_info["texts"]), encoding="utf-8")
    (tmp_path / "test.target").write_text("".join(t + "\n" for t in dataset_info["targets"]), encoding="utf-8")
    cfg = parse_config(recorded["model"]["model_argv"] + [
        "--task", dataset_info["task"], "--data-dir", str(tmp_path), "--src-seq-length",
        str(dataset_info["src_seq_length"]), "--tgt-seq-length", "24"])
    _, cfg = configure_tokenizer(cfg)
    dataset = build_dataset(cfg, "test", tokenizer)
    assert len(dataset) == len(dataset_info["items"])
    for i, expected in enumerate(dataset_info["items"]):
        item = dataset[i]
        assert item["uid"] == expected["uid"]
        assert item["text"].tolist() == expected["text"], i
        assert item["position_id"].tolist() == expected["position_id"], i
        assert int(item["attention_mask"]) == expected["attention_mask"], i
    for case in recorded["cases"]:
        assert case["input_ids"] == [dataset_info["items"][i]["text"] for i in case["item_indices"]], case["id"]
