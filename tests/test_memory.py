"""The memory plan (glm/memory.py, memory_plan.py): its arithmetic, its agreement with measured peaks,
the smallest layout, and the 10B single-GPU recipe (docs/memory.md)."""

import json
import os
import sys

import pytest

from glm.memory import Devices, GiB, parameter_counts, parse_size, plan, smallest_layout
from tests.helpers import parse_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import bench_memory  # noqa: E402  (bench/ is a folder of scripts, reached from the root)

BASE = ["--block-lm", "--num-layers", "12", "--hidden-size", "768", "--num-attention-heads", "12",
        "--seq-length", "512", "--batch-size", "4"]
TEN_B = ["--block-lm", "--num-layers", "48", "--hidden-size", "4096", "--num-attention-heads", "64",
         "--max-position-embeddings", "1024", "--seq-length", "512"]


def config(*flags, **updates):
    return parse_config([*BASE, *flags], **dict(dict(vocab_size=30592), **updates))


def zero(stage, offload=False, precision="bf16"):
    section = {"stage": stage}
    if offload:
        section["offload_optimizer"] = {"device": "cpu"}
        if stage == 3:
            section["offload_param"] = {"device": "cpu"}
    return {"zero_optimization": section, precision: {"enabled": True}}


def test_parameter_count_matches_the_model():
    import torch
    from glm.training.model_setup import build_model
    cfg = parse_config(["--block-lm", "--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "4",
                        "--max-position-embeddings", "64", "--seq-length", "64"], vocab_size=300)
    model = build_model(cfg, on_meta=True, dtype=torch.float32)
    assert parameter_counts(cfg)["total"] == sum(p.numel() for p in model.parameters())


def test_parse_size():
    assert parse_size("40GB") == 40 * GiB
    assert parse_size("80G") == 80 * GiB
    assert parse_size("512MB") == 512 * 2 ** 20
    with pytest.raises(ValueError):
        parse_size("lots")


def test_fp32_plain_engine_terms():
    p = plan(config())
    n = parameter_counts(config())["total"]
    assert p.parameters == pytest.approx(4 * n)
    assert p.gradients == pytest.approx(4 * n)
    assert p.optimizer == pytest.approx(8 * n)          # Adam's two moments
    assert p.total > p.parameters + p.optimizer + p.gradients  # the activations outweigh the gradients here


def test_zero_stages_partition_optimizer_gradients_parameters():
    plans = {s: plan(config("--deepspeed", deepspeed_config_dict=zero(s)), Devices(8)) for s in range(4)}
    n = parameter_counts(config())["total"]
    assert plans[0].optimizer == pytest.approx(12 * n)       # fp32 master weights + two moments
    assert plans[1].optimizer == pytest.approx(12 * n / 8)
    assert plans[1].gradients == pytest.approx(2 * n)
    assert plans[2].gradients == pytest.approx(2 * n / 8)
    # ZeRO-3 under DeepSpeed's default live limits (1e9 elements): a model this small stays gathered whole
    # beside its partition (measured: bench/bench_memory.py); a small reuse distance keeps only the working set.
    assert plans[3].parameters == pytest.approx(2 * n / 8 + 2 * n)
    frugal = zero(3)
    frugal["zero_optimization"].update(stage3_max_reuse_distance=0, stage3_max_live_parameters=0,
                                       reduce_bucket_size=5e6)  # ZeRO-3 holds its reduce bucket all along
    frugal_plan = plan(config("--deepspeed", deepspeed_config_dict=frugal), Devices(8))
    assert frugal_plan.parameters < plans[2].parameters / 2
    # The gradients peak while the activations are gone, so ZeRO-2 lowers the peak only when they outweigh them.
    assert frugal_plan.total < plans[2].total <= plans[1].total < plans[0].total


def test_offload_moves_the_optimizer_to_the_host():
    kept = plan(config("--deepspeed", deepspeed_config_dict=zero(2)), Devices(2))
    offloaded = plan(config("--deepspeed", deepspeed_config_dict=zero(2, offload=True)), Devices(2))
    assert offloaded.optimizer == 0 and kept.host == 0
    assert offloaded.host >= kept.optimizer * 2            # both ranks' partitions, plus fp32 gradients
    assert offloaded.total < kept.total


def test_tensor_parallel_splits_the_weights():
    one = plan(config(), Devices(2))
    two = plan(config("--model-parallel-size", "2", model_parallel_size=2), Devices(2))
    assert two.tensor_parallel == 2 and two.data_parallel == 1 and one.data_parallel == 2
    assert 0.45 < two.parameters / one.parameters < 0.6    # LayerNorms and position tables stay whole


def test_lora_prompt_and_frozen_transformer_train_less():
    full = plan(config("--fp16"))
    lora = plan(config("--fp16", "--lora-rank", "8"))
    frozen = plan(config("--fp16", "--freeze-transformer"))
    assert lora.trainable_total == 12 * 8 * (768 + 3 * 768 + 768 + 768 + 768 + 4 * 768 + 4 * 768 + 768)
    assert lora.optimizer < full.optimizer / 50 and lora.gradients < full.gradients / 50
    assert frozen.trainable_total == 0
    prompt = plan(config("--freeze-transformer", "--continuous-prompt", "--num-prompt-tokens", "4",
                         "--prompt-func", "mlp"))
    assert prompt.trainable_total == 4 * 768 + 2 * (768 * 768 + 768)


def test_checkpointing_shrinks_activations():
    assert plan(config("--checkpoint-activations")).activations < plan(config()).activations / 4


def test_smallest_layout_prefers_the_simplest_that_fits():
    small = config()
    updates, fitting = smallest_layout(small, Devices(1, 80 * GiB))
    assert updates["deepspeed"] is False and fitting.tensor_parallel == 1 and not fitting.checkpoint_activations
    big = parse_config([*TEN_B, "--batch-size", "4", "--bf16"], vocab_size=50304)
    updates, fitting = smallest_layout(big, Devices(8, 40 * GiB))
    assert fitting.fits and fitting.total <= 40 * GiB
    assert plan(big, Devices(8, 40 * GiB)).fits is False
    assert smallest_layout(big, Devices(1, 8 * GiB)) == (None, None)


def test_ten_b_lora_recipe_fits_one_80gb_gpu():
    recipe = os.path.join(ROOT, "config_tasks", "config_blocklm_10B_lora_1gpu.json")
    with open(recipe) as f:
        json_config = json.load(f)
    cfg = parse_config([*TEN_B, "--lora-rank", "8", "--checkpoint-activations", "--bf16", "--deepspeed",
                        "--deepspeed_config", recipe], vocab_size=50304, cuda=True)
    assert cfg.parallel.deepspeed_config_dict == json_config
    p = plan(cfg, Devices(1, 80 * GiB))
    assert p.precision == "bf16" and p.fits and p.parameters == pytest.approx(2 * p.parameters_total)
    # ...and full finetuning of the same model on the same GPU does not fit.
    full = parse_config([*TEN_B, "--checkpoint-activations", "--bf16", "--deepspeed", "--deepspeed_config", recipe],
                        vocab_size=50304, cuda=True)
    assert plan(full, Devices(1, 80 * GiB)).fits is False


def test_command_line(capsys):
    import memory_plan
    code = memory_plan.main([os.path.join(ROOT, "config_tasks", "model_blocklm_10B.sh"), "--gpus", "8",
                             "--gpu-memory", "40GB", "--bf16", "--fit"])
    out = capsys.readouterr().out
    assert code == 0
    assert "9,880.7M parameters" in out and "does NOT fit" in out and "smallest layout that fits" in out


@pytest.mark.parametrize("shape", bench_memory.QUICK, ids=lambda s: bench_memory.describe(s)[0])
def test_plan_agrees_with_the_measured_peak(shape):
    """A fresh process trains the shape for three steps; its peak resident set above the imports is
    within 15% of the plan (bench/bench_memory.py prints the whole table)."""
    measured = bench_memory.measure(tuple(shape), timeout=120)
    predicted = bench_memory.predicted(shape).total
    assert abs(predicted - measured) / measured < 0.15, (predicted / 2 ** 20, measured / 2 ** 20)


def test_a_multiple_choice_sample_is_planned_as_its_choices():
    """The finetuning driver's workload: a multiple-choice sample runs one sequence per choice, the
    multi-token cloze head projects its answer tokens, a classification head nothing."""
    import torch
    from glm.memory import PRETRAINING, Workload
    from glm.model import GLMForMultiTokenCloze, GLMForSequenceClassification, GLMModel
    from glm.training.model_setup import build_model
    from tasks.finetune import memory_workload
    cfg = parse_config(["--block-lm", "--num-layers", "1", "--hidden-size", "32", "--num-attention-heads", "4",
                        "--max-position-embeddings", "64", "--seq-length", "64", "--batch-size", "2"], vocab_size=300)
    model = build_model(cfg, on_meta=True, dtype=torch.float32)
    logit_mask = torch.zeros(3, 64)
    logit_mask[:, 40:48] = 1
    samples = [{"text": torch.zeros(2, 64, dtype=torch.long), "logit_mask": logit_mask[:2]},
               {"text": torch.zeros(3, 64, dtype=torch.long), "logit_mask": logit_mask}]  # sorted by choices
    cloze = memory_workload(GLMForMultiTokenCloze(model), samples)
    assert cloze == Workload(sequences_per_sample=3, projected_fraction=8 / 64, whole_vocabulary=True)
    classification = memory_workload(GLMForSequenceClassification(model, 32, 0.1, "cls"), samples)
    assert classification == Workload(sequences_per_sample=3, projected_fraction=0.0)
    assert memory_workload(model, samples) is PRETRAINING  # a generative task keeps the defaults
    assert isinstance(model, GLMModel)
    planned = {name: plan(cfg, workload=w).total for name, w in
               (("lm", PRETRAINING), ("cloze", cloze), ("classification", classification))}
    assert planned["cloze"] > 2 * planned["lm"] and planned["classification"] < planned["cloze"]


@pytest.mark.slow
def test_plan_agrees_with_the_measured_peak_of_a_cloze_head():
    """A multi-token cloze head with four choices per sample: its peak within 15% of the plan made with
    the workload the finetuning driver reads off the samples (the language-model plan was 39% low)."""
    shape, head, choices = bench_memory.HEADS[0]
    measured, workload = bench_memory.measure(tuple(shape), head=head, choices=choices, timeout=180)
    predicted = bench_memory.predicted(shape, head=head, workload=workload).total
    assert workload["sequences_per_sample"] == choices
    assert abs(predicted - measured) / measured < 0.15, (predicted / 2 ** 20, measured / 2 ** 20)


def test_command_line_refuses_no_choices(capsys):
    import memory_plan
    with pytest.raises(SystemExit) as stop:
        memory_plan.main(["--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "4", "--choices", "0"])
    assert stop.value.code == 2
    assert "--choices must be at least 1" in capsys.readouterr().err
