"""LoRA finetuning end to end through ``finetune_glm.py``: every finetuning family (SuperGLUE cloze
single- and multi-token, the classification head, P-tuning alongside, seq2seq) trains adapters only;
the best weights are written merged in the original layout (read by change_mp.py, generation and
the Hugging Face export) or as the adapter alone; 2 tensor-parallel processes train as one."""

import math
import os

import pytest
import torch

import finetune_glm
from glm.checkpoint.change_mp import change_model_parallel
from glm.checkpoint.io import load_checkpoint_file
from tests.distributed.launcher import run_distributed
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
