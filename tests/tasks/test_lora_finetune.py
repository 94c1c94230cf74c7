"""LoRA finetuning end to end through ``finetune_glm.py``: every finetuning family (SuperGLUE cloze
single- and multi-token, the classification head, P-tuning alongside, seq2seq) trains adapters only;
the best weights are written merged in the original layout (read by change_mp.py, generation and
the Hugging Face export) or as the adapter alone; 2 tensor-parallel processes train as one."""

import math
import os

import pytest
import torch

import finetune_glm
from glm.checkpoint import CheckpointError
from glm.checkpoint.change_mp import change_model_parallel
from glm.checkpoint.io import load_checkpoint_file
from glm.model.lora import LORA_TARGETS
from tests.distributed.launcher import run_distributed
from tests.helpers import glm_batch
from tests.tasks.conftest import TINY_BERT_GLM
from tests.tasks.test_superglue_finetune import write_copa, write_rte

LORA = ["--lora-rank", "4", "--lora-alpha", "8"]
FIT = ["--lr", "1e-2", "--warmup", "0.05", "--hidden-dropout", "0", "--attention-dropout", "0", "--seed", "5"]


def superglue_argv(task, data, out, weights, *extra):
    return TINY_BERT_GLM + ["--finetune", "--task", task, "--data-dir", str(data), "--seq-length", "64",
                            "--load-pretrained", str(weights), "--summary-dir", str(out), "--experiment-name", task,
                            "--overwrite", "--log-interval", "1000", "--epochs", "2", "--batch-size", "2",
                            "--eval-epoch", "1", "--eval-valid", "--save", str(out / "save"), *FIT, *LORA, *extra]


def _best_module(save, task):
    return load_checkpoint_file(str(save / task / "best" / "mp_rank_00_model_states.pt"))["module"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora_data")
    (root / "rte").mkdir()
    (root / "copa").mkdir()
    return {"rte": write_rte(root / "rte"), "copa": write_copa(root / "copa")}


CASES = {
    "rte_cloze": ("rte", ["--cloze-eval"]),
    "copa_multi_token_cloze": ("copa", ["--cloze-eval"]),
    "rte_classification_head": ("rte", ["--pool-token", "start"]),
    "rte_p_tuning": ("rte", ["--cloze-eval", "--continuous-prompt", "--num-prompt-tokens", "3", "--prompt-init"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_superglue_family_trains_adapters_and_saves_merged_weights(case, data, tiny_pretrained, tmp_path):
    task, extra = CASES[case]
    results = finetune_glm.main(superglue_argv(task, data[task], tmp_path, tiny_pretrained, *extra))
    assert all(math.isfinite(v) for v in results["dev"].values())
    base = load_checkpoint_file(str(tiny_pretrained / "1" / "mp_rank_00_model_states.pt"))["module"]
    best = _best_module(tmp_path / "save", task)
    assert not any(".lora." in key for key in best)
    best = {k.removeprefix("model."): v for k, v in best.items()}  # the classification head nests the GLM
    # The original layout: every pretrained tensor, plus the new parts of the task (head, prompt encoder).
    assert set(base) <= set(best)
    new = set(best) - set(base)
    assert bool(new) == (case in ("rte_classification_head", "rte_p_tuning"))
    assert all(not k.startswith(("transformer.", "word_embeddings.")) for k in new), new
    # The adapters changed the weights they sit on, and nothing else of the backbone.
    changed = {k for k in base if not torch.equal(base[k], best[k])}
    assert changed and all(k.endswith(("query_key_value.weight", "dense.weight", "dense_h_to_4h.weight",
                                       "dense_4h_to_h.weight")) for k in changed), changed


@pytest.mark.slow
def test_adapter_only_save_holds_the_trainable_tensors(data, tiny_pretrained, tmp_path):
    finetune_glm.main(superglue_argv("rte", data["rte"], tmp_path, tiny_pretrained, "--cloze-eval",
                                     "--lora-save", "adapter", "--lora-targets", "query_key_value,dense"))
    best = _best_module(tmp_path / "save", "rte")
    assert best and all(".lora." in key for key in best)
    assert {k.rsplit(".", 3)[-3] for k in best} == {"query_key_value", "dense"}


@pytest.mark.slow
def test_seq2seq_trains_adapters(task_data_dir, tiny_pretrained, tmp_path):
    argv = TINY_BERT_GLM + ["--finetune", "--task", "cnn_dm", "--data-dir", str(task_data_dir / "seq2seq" / "cnn_dm"),
                            "--src-seq-length", "48", "--tgt-seq-length", "10", "--load-pretrained",
                            str(tiny_pretrained), "--summary-dir", str(tmp_path), "--experiment-name", "s2s",
                            "--overwrite", "--epochs", "1", "--batch-size", "2", "--save", str(tmp_path / "save"),
                            *FIT, *LORA]
    results = finetune_glm.main(argv)
    assert results
    saved = [p for p in (tmp_path / "save" / "s2s").rglob("mp_rank_00_model_states.pt") if "best" not in p.parts]
    assert saved
    # The resumable checkpoint keeps the adapters (a resume needs them) next to the frozen base.
    module = load_checkpoint_file(str(saved[0]))["module"]
    assert any(".lora." in k for k in module)


def _tp_worker(rank, world, argv, expected_dev):
    # get_args caps --model-parallel-size at the launcher's WORLD_SIZE: say what run_distributed started.
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    results = finetune_glm.main(argv + ["--model-parallel-size", str(world)])
    assert results["dev"] == pytest.approx(expected_dev, abs=1e-6)


@pytest.mark.slow
def test_two_tensor_parallel_ranks_train_like_one_and_the_result_reshards(data, tiny_pretrained, tmp_path):
    """Two tensor-parallel ranks finetune with adapters as one process does; their merged best,
    re-cut to one shard by change_mp.py, equals the single-process one and is a plain checkpoint
    in the original layout that generation and the Hugging Face export read."""
    one_out, two_out = tmp_path / "one", tmp_path / "two"
    one = finetune_glm.main(superglue_argv("rte", data["rte"], one_out, tiny_pretrained, "--cloze-eval"))
    run_distributed(_tp_worker, 2, superglue_argv("rte", data["rte"], two_out, tiny_pretrained, "--cloze-eval"),
                    one["dev"])
    best = two_out / "save" / "rte" / "best"
    assert (best / "mp_rank_01_model_states.pt").exists()
    change_model_parallel(str(best), 1, output_dir=str(tmp_path / "weights"), log=lambda *a: None)
    got = load_checkpoint_file(str(tmp_path / "weights" / "mp_rank_00_model_states.pt"))["module"]
    want = _best_module(one_out / "save", "rte")
    base = load_checkpoint_file(str(tiny_pretrained / "1" / "mp_rank_00_model_states.pt"))["module"]
    assert set(got) == set(want) == set(base)
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=1e-4, msg=key)
    # Generation and the Hugging Face export read the merged weights like any checkpoint.
    from glm.checkpoint.hf_export import export_to_hf
    from generate_samples import build_generation_model, parse_args
    weights = tmp_path / "weights"
    cfg, _ = parse_args(TINY_BERT_GLM + ["--load-pretrained", str(weights), "--seq-length", "64"])
    from data_utils.tokenizers import configure_tokenizer
    _, cfg = configure_tokenizer(cfg)
    model = build_generation_model(cfg, "cpu")
    assert not any(p.is_meta for p in model.parameters())
    export_to_hf(str(weights), str(tmp_path / "hf"), num_attention_heads=4, log=lambda *a: None)
    assert (tmp_path / "hf" / "config.json").exists()
    plain = torch.load(str(tmp_path / "hf" / "pytorch_model.bin"), weights_only=True)
    assert not any("lora" in k for k in plain)


# -- loading: merged weights under --lora-rank, adapter files through --load-adapter --------------------

def eval_argv(data, out, name, *weights):
    """Evaluate RTE (cloze, dev included) with the given weight flags, no training."""
    return TINY_BERT_GLM + ["--finetune", "--task", "rte", "--data-dir", str(data), "--seq-length", "64",
                            "--summary-dir", str(out), "--experiment-name", name, "--overwrite", "--log-interval",
                            "1000", "--epochs", "0", "--batch-size", "2", "--eval-valid", "--cloze-eval", *FIT,
                            *weights]


@pytest.fixture(scope="module")
def lora_runs(data, tiny_pretrained, tmp_path_factory):
    """The same LoRA finetune (one epoch, a resumable checkpoint at its end, so the best weights are
    those of the resumable checkpoint) saved merged and adapter-only: ``{"merged": folder, "adapter":
    folder}`` (``<folder>/rte``) and the evaluation of the merged best (``"merged_dev"``)."""
    root = tmp_path_factory.mktemp("lora_runs")
    runs = {}
    for mode in ("merged", "adapter"):
        finetune_glm.main(superglue_argv("rte", data["rte"], root / mode, tiny_pretrained, "--cloze-eval",
                                         "--lora-save", mode, "--save-epoch", "1", "--epochs", "1"))
        runs[mode] = root / mode / "save" / "rte"
    runs["merged_dev"] = finetune_glm.main(eval_argv(data["rte"], root, "merged-eval", "--load-pretrained",
                                                     str(runs["merged"] / "best")))["dev"]
    return runs


def _finetuned_model(*weights):
    """The model finetune_glm.py evaluates for these weight flags, built by the same steps (load the
    pretrained weights, then the LoRA weights, then --load unless it was taken as the base)."""
    from data_utils.tokenizers import configure_tokenizer
    from glm.checkpoint import load_model_state
    from glm.training.model_setup import build_model
    from tasks.finetune import load_lora_weights, load_pretrained
    from tests.helpers import parse_config
    _, cfg = configure_tokenizer(parse_config(TINY_BERT_GLM + ["--seq-length", "64", *FIT, *weights]))
    model = build_model(cfg, on_meta=bool(cfg.task.load_pretrained))
    if cfg.task.load_pretrained:
        load_pretrained(model, cfg.task.load_pretrained)
    merged_base, cfg = load_lora_weights(cfg, model)
    if not merged_base and cfg.checkpoint.load:
        load_model_state(model, cfg.checkpoint.load)
    return model.eval()


def _outputs(model):
    ids, positions, sep = glm_batch(batch=2, length=16, vocab=30592, max_seq=128, seed=4)
    with torch.no_grad():
        return model(ids, positions, sep)[0]


@pytest.mark.slow
def test_load_of_merged_weights_under_lora_rank_starts_fresh_adapters(lora_runs, data, tmp_path, capsys):
    merged_best = str(lora_runs["merged"] / "best")
    # The merged weights are the base, the fresh adapters (B = 0) change nothing: bit for bit.
    reference = _outputs(_finetuned_model("--load-pretrained", merged_best))
    assert torch.equal(_outputs(_finetuned_model(*LORA, "--load", merged_best)), reference)
    dev = finetune_glm.main(eval_argv(data["rte"], tmp_path, "eval", *LORA, "--load", merged_best))["dev"]
    assert "holds no LoRA adapters (merged weights): loaded as the base weights" in capsys.readouterr().out
    assert dev == lora_runs["merged_dev"]
    # Training: the same base, new adapters from iteration 0; the frozen base is what --load held.
    argv = superglue_argv("rte", data["rte"], tmp_path, merged_best, "--cloze-eval", "--epochs", "1", "--save-epoch",
                          "1")
    argv[argv.index("--load-pretrained")] = "--load"
    finetune_glm.main(argv)
    printed = capsys.readouterr().out
    assert "holds no LoRA adapters" in printed and "resumed" not in printed
    resumable = [p for p in (tmp_path / "save" / "rte").glob("*/mp_rank_00_model_states.pt") if p.parent.name != "best"]
    (saved,) = resumable
    module = load_checkpoint_file(str(saved))["module"]
    base = load_checkpoint_file(os.path.join(merged_best, "mp_rank_00_model_states.pt"))["module"]
    assert any(".lora." in k for k in module)
    for key, value in base.items():
        assert torch.equal(module[key], value), key


@pytest.mark.slow
def test_load_of_a_checkpoint_with_adapters_still_loads_them(lora_runs, data, tiny_pretrained, tmp_path, capsys):
    """The resumable checkpoint (base + adapters, the tracker's) is the merged best of the same epoch."""
    run = str(lora_runs["merged"])
    reference = _outputs(_finetuned_model("--load-pretrained", str(lora_runs["merged"] / "best")))
    adapted = _outputs(_finetuned_model(*LORA, "--load", run))
    assert (adapted - _outputs(_finetuned_model("--load-pretrained", str(tiny_pretrained)))).abs().max() > 1e-3
    torch.testing.assert_close(adapted, reference, rtol=1e-5, atol=1e-5)
    dev = finetune_glm.main(eval_argv(data["rte"], tmp_path, "eval", *LORA, "--load", run))["dev"]
    assert "holds no LoRA adapters" not in capsys.readouterr().out
    assert dev == lora_runs["merged_dev"]
    # As pretrained weights such a checkpoint is refused with the two ways to use it.
    tag = (lora_runs["merged"] / "latest_checkpointed_iteration.txt").read_text().strip()
    with pytest.raises(CheckpointError, match="holds LoRA adapters besides its weights.*--load-adapter"):
        _finetuned_model(*LORA, "--load-pretrained", os.path.join(run, tag))


@pytest.mark.slow
def test_load_adapter_evaluates_like_the_merged_model(lora_runs, data, tiny_pretrained, tmp_path, capsys):
    adapter_file = load_checkpoint_file(str(lora_runs["adapter"] / "best" / "mp_rank_00_model_states.pt"))
    assert adapter_file["lora"] == {"rank": 4, "alpha": 8.0, "targets": sorted(LORA_TARGETS)}
    # The settings come from the file: no --lora-* flags needed.
    adapted = _outputs(_finetuned_model("--load-pretrained", str(tiny_pretrained), "--load-adapter",
                                        str(lora_runs["adapter"])))
    merged = _outputs(_finetuned_model("--load-pretrained", str(lora_runs["merged"] / "best")))
    base = _outputs(_finetuned_model("--load-pretrained", str(tiny_pretrained)))
    assert (merged - base).abs().max() > 1e-3  # the adapters matter
    # W x + s B (A x) against (W + s B A) x: the same up to float32 rounding.
    torch.testing.assert_close(adapted, merged, rtol=1e-5, atol=1e-5)
    dev = finetune_glm.main(eval_argv(data["rte"], tmp_path, "eval", "--load-pretrained", str(tiny_pretrained),
                                      "--load-adapter", str(lora_runs["adapter"])))["dev"]
    assert "loaded LoRA adapters (rank 4, alpha 8, on " in capsys.readouterr().out
    assert dev == lora_runs["merged_dev"]
    # Training on from the loaded adapters: the run knows their settings (its adapter save records them).
    argv = superglue_argv("rte", data["rte"], tmp_path / "on", tiny_pretrained, "--cloze-eval", "--epochs", "1",
                          "--lora-save", "adapter", "--load-adapter", str(lora_runs["adapter"]))
    start = argv.index(LORA[0])
    del argv[start:start + len(LORA)]  # no --lora-* flags: the settings come from the file
    finetune_glm.main(argv)
    trained_on = load_checkpoint_file(str(tmp_path / "on" / "save" / "rte" / "best" / "mp_rank_00_model_states.pt"))
    assert trained_on["lora"] == adapter_file["lora"] and set(trained_on["module"]) == set(adapter_file["module"])
    # Flags that contradict the file are refused rather than silently overridden.
    with pytest.raises(CheckpointError, match="contradict"):
        finetune_glm.main(eval_argv(data["rte"], tmp_path, "eval2", "--load-pretrained", str(tiny_pretrained),
                                    "--lora-rank", "4", "--lora-alpha", "16", "--load-adapter", str(lora_runs["adapter"])))


def _generation_model(*weights):
    from data_utils.tokenizers import configure_tokenizer
    from generate_samples import build_generation_model, parse_args
    cfg, _ = parse_args(TINY_BERT_GLM + ["--seq-length", "64", *weights])
    _, cfg = configure_tokenizer(cfg)
    return build_generation_model(cfg, "cpu")


@pytest.mark.slow
def test_load_adapter_generates_like_the_merged_model(lora_runs, tiny_pretrained, tmp_path):
    adapted = _generation_model("--load-pretrained", str(tiny_pretrained), "--load-adapter", str(lora_runs["adapter"]))
    merged = _generation_model("--load-pretrained", str(lora_runs["merged"] / "best"))
    base = _generation_model("--load-pretrained", str(tiny_pretrained))
    out_adapted, out_merged, out_base = (_outputs(m) for m in (adapted, merged, base))
    assert (out_merged - out_base).abs().max() > 1e-3  # the adapters matter
    # W x + s B (A x) against (W + s B A) x: the same up to float32 rounding.
    torch.testing.assert_close(out_adapted, out_merged, rtol=1e-5, atol=1e-5)
    # The program itself, greedy decoding: the same text.
    import generate_samples
    contexts = tmp_path / "contexts.txt"
    contexts.write_text("the river of the city is [MASK] and the king spoke .\n")
    outputs = []
    for name, weights in (("adapted", ["--load-pretrained", str(tiny_pretrained), "--load-adapter",
                                       str(lora_runs["adapter"])]),
                          ("merged", ["--load-pretrained", str(lora_runs["merged"] / "best")])):
        output = tmp_path / f"{name}.jsonl"
        assert generate_samples.main(TINY_BERT_GLM + ["--seq-length", "64", "--out-seq-length", "24", "--top-k", "1",
                                                      "--device", "cpu", "--input-file", str(contexts),
                                                      "--output-file", str(output), *weights]) == 0
        outputs.append(output.read_text())
    assert outputs[0] == outputs[1] and "glm_output" in outputs[0]


# -- LoRA under DeepSpeed ZeRO -----------------------------------------------------------------------------

ZERO_STEPS = 6
#: fp32 on both engines, the same AdamW, the same clipping: DeepSpeed's flattened buffers may only change
#: the order of the gradient-norm reduction, so the losses and weights must agree to float32 rounding.
#: Observed: 0 (bit for bit) for ZeRO-1, 2 and 3 on one rank and ZeRO-2 and 3 on two (the printout).
ZERO_TOLERANCE = 1e-5


def _lora_engine(cfg):
    from glm.learning_rates import get_learning_rate_scheduler
    from glm.model.lora import add_lora_from_config
    from glm.training.engines import build_engine
    from glm.training.model_setup import build_model, build_optimizer
    from glm.training.seed import set_random_seed
    set_random_seed(cfg.training.seed)
    model = build_model(cfg, torch.device("cpu"))
    add_lora_from_config(model, cfg)
    return build_engine(cfg, model, lambda m: build_optimizer(cfg, m), lambda opt: get_learning_rate_scheduler(opt, cfg),
                        torch.device("cpu"))


def _train_lora(engine, rank, world):
    from glm.training.losses import language_model_loss
    from tests.training.synthetic import SyntheticLoader

    def weights():
        with engine.whole_parameters():  # ZeRO-3 keeps partitions only
            return {k: v.detach().clone() for k, v in engine.module.state_dict().items()}

    before = weights()
    batches = iter(SyntheticLoader(2, rank, world, fixed_sep=12))
    losses = [engine.train_batch([next(batches)], language_model_loss).loss for _ in range(ZERO_STEPS)]
    return losses, before, weights()


def _optimizer_fp32_elements(optimizer):
    """The fp32 master elements DeepSpeed's ZeRO optimizer holds on this rank."""
    flats = getattr(optimizer, "single_partition_of_fp32_groups", None)   # ZeRO-1/2
    if flats is None:
        flats = optimizer.fp32_partitioned_groups_flat                     # ZeRO-3
    return sum(flat.numel() for flat in flats), len(flats)


def _zero_lora_worker(rank, world, folder, stages):
    import json as json_module

    from glm import mpu
    from tests.distributed.test_engines_distributed import NO_DROPOUT
    from tests.training.synthetic import tiny_config
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    mpu.initialize_model_parallel(1)
    flags = (*NO_DROPOUT, "--batch-size", "2", *LORA, "--lr", "1e-2", "--weight-decay", "0.1", "--clip-grad", "0.5")
    plain_losses, _, plain = _train_lora(_lora_engine(tiny_config(*flags)), rank, world)
    for stage in stages:
        config = {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1, "gradient_clipping": 0.5,
                  "zero_optimization": {"stage": stage}, "zero_allow_untested_optimizer": True,
                  "steps_per_print": 10 ** 9}
        path = os.path.join(folder, f"zero{stage}-rank{rank}.json")
        with open(path, "w") as f:
            json_module.dump(config, f)
        engine = _lora_engine(tiny_config(*flags, "--deepspeed", "--deepspeed_config", path))
        trainable = {name for name, p in engine.module.named_parameters() if p.requires_grad}
        assert trainable and all(".lora." in name for name in trainable), trainable
        # DeepSpeed's optimizer holds the adapters' fp32 partitions and nothing of the frozen backbone.
        held, groups = _optimizer_fp32_elements(engine.optimizer)
        adapters = sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel()
                       for p in engine.module.parameters() if p.requires_grad)
        assert adapters <= held * world < adapters + 64 * groups * world, (stage, held, adapters)
        losses, before, after = _train_lora(engine, rank, world)
        changed = {k for k in after if not torch.equal(before[k], after[k])}
        assert changed == {k for k in after if ".lora." in k}, (stage, changed)
        loss_difference = max(abs(a - b) for a, b in zip(losses, plain_losses))
        weight_difference = max((after[k] - plain[k]).abs().max().item() for k in after)
        print(f"LoRA ZeRO-{stage} on {world} rank(s) vs plain engine over {ZERO_STEPS} updates: max |loss "
              f"difference| {loss_difference:.2e}, max |weight difference| {weight_difference:.2e}")
        assert loss_difference < ZERO_TOLERANCE and weight_difference < ZERO_TOLERANCE, stage


@pytest.mark.slow
@pytest.mark.parametrize("world,stages", [(1, (1, 2, 3)), (2, (2, 3))], ids=["one-rank", "two-ranks"])
def test_lora_under_deepspeed_zero_trains_only_adapters_like_the_plain_engine(world, stages, tmp_path):
    """ZeRO-1, 2 and 3 (one rank; ZeRO-2 and 3 also on two) against the plain engine, in one launch each."""
    pytest.importorskip("deepspeed")
    run_distributed(_zero_lora_worker, world, str(tmp_path), stages)
