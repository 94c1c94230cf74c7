"""Blank filling on ``glm_bert`` reproduces the original's interactive generation (generation.pt):
blanks, generated ids, printed output and every model call (inputs, positions, masks, memory
lengths, top-10 logits, logsumexp)."""

import pytest
import torch

from data_utils.tokenizers import configure_tokenizer
from tests.helpers import parse_config
from glm.generation import DecodeConfig, KVCacheModel, fill_text
from generate_samples import build_generation_model, samples_line

TOL = 1e-4


class Recorder(torch.nn.Module):
    """Wraps the model and records every call the decoder makes (not a GLMModel itself, so the
    decoder calls it as given)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.calls = []

    def forward(self, input_ids, position_ids, attention_mask, *mems, **kw):
        out = self.model(input_ids, position_ids, attention_mask, *mems, **kw)
        logits = out[0][:, -1]
        self.calls.append(dict(input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask,
                               mem_length_in=mems[0].size(1) if mems else 0, mem_length_out=out[1].size(1),
                               logits=logits))
        return out


@pytest.fixture(scope="module")
def vectors(reference_dir):
    return torch.load(reference_dir / "generation" / "generation.pt", weights_only=True)


def setup(run, reference_dir):
    checkpoint = str(reference_dir / "bert_model" / "checkpoints" / "glm_bert")
    argv = [checkpoint if a.startswith("<work>") else a for a in run["argv"]]
    cfg = parse_config(argv)
    tokenizer, cfg = configure_tokenizer(cfg)
    model = build_generation_model(cfg)
    return cfg, tokenizer, model


@pytest.mark.parametrize("cache", ["memory", "kv"])
@pytest.mark.parametrize("name", ["no_task_mask", "task_mask"])
def test_generation_matches_original(name, cache, vectors, reference_dir):
    """``memory``: the model's hidden-state memory (the original's calls); ``kv``: the key/value cache
    the decoder uses by default (same calls, memory lengths and logits)."""
    run = vectors[name]
    cfg, tokenizer, model = setup(run, reference_dir)
    assert cfg.data.seq_length + cfg.model.mem_length - 1 == run["args_mem_length"]
    assert model.transformer.max_memory_length == run["args_mem_length"]
    assert cfg.model.vocab_size == run["vocab_size"] and cfg.data.eod_token == run["eod_token"]
    for cname, cid in run["command_ids"].items():
        assert tokenizer.get_command(cname).Id == cid
    config = DecodeConfig.from_config(cfg, tokenizer)
    samples = ""
    for expected in run["results"]:
        recorder = Recorder(model if cache == "memory" else KVCacheModel(model))
        result = fill_text(recorder, tokenizer, expected["context"], config, task_mask=cfg.objective.task_mask,
                           seq_length=cfg.data.seq_length)
        assert result.context_ids == expected["context_ids"].tolist()
        assert len(result.blanks) == len(expected["blanks"])
        for got, want in zip(result.blanks, expected["blanks"]):
            assert got.mask_position == want["mask_position"]
            assert got.mask_token == want["mask_token"]
            assert got.generated_ids == want["generated_ids"].tolist()
            assert got.generated_text == want["generated_text"]
            assert list(config.end_ids) == list(want["end_tokens"])
        assert result.final_token_ids == expected["final_token_ids"].tolist()
        assert result.output_text == expected["glm_output_text"]
        assert len(recorder.calls) == len(expected["model_calls"])
        for k, (got, want) in enumerate(zip(recorder.calls, expected["model_calls"])):
            assert torch.equal(got["input_ids"], want["input_ids"]), k
            assert torch.equal(got["position_ids"], want["position_ids"]), k
            assert torch.equal(got["attention_mask"], want["attention_mask"]), k
            assert got["mem_length_in"] == want["mem_length_in"], k
            assert got["mem_length_out"] == want["mem_length_out"], k
            values, indices = got["logits"].topk(10, dim=-1)
            assert (values - want["last_logits_top10_values"]).abs().max() < TOL, k
            assert torch.equal(indices, want["last_logits_top10_indices"]), k
            lse = torch.logsumexp(got["logits"], dim=-1)
            assert (lse - want["last_logits_logsumexp"]).abs().max() < TOL, k
            if "last_logits_full" in want:
                assert (got["logits"] - want["last_logits_full"]).abs().max() < TOL
        samples += samples_line(result)
    assert samples == run["samples_file_text"]
