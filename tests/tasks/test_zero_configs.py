"""config_tasks/zero_*.sh parse into valid flags and name missing path variables; evaluate_lm.sh
runs end to end on a tiny checkpoint."""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import parse_config
from data_utils.tokenizers import configure_tokenizer

ROOT = Path(__file__).resolve().parents[2]
ZERO_CONFIGS = sorted((ROOT / "config_tasks").glob("zero_*.sh"))
ENV = {"DATA_ROOT": "/tmp/glm-data", "PATH": "/usr/bin:/bin"}


def source(config, expression, env):
    return subprocess.run(["bash", "-c", f'source "{config}" && printf "%s" "{expression}"'],
                          env=env, capture_output=True, text=True)


def test_the_original_zero_shot_configs_exist():
    assert {p.name for p in ZERO_CONFIGS} >= {"zero_lambada.sh", "zero_lambada_uni.sh", "zero_wikitext.sh",
                                              "zero_lm.sh"}


@pytest.mark.parametrize("config", ZERO_CONFIGS, ids=lambda p: p.name)
def test_zero_config_parses(config):
    out = source(config, "--task $TASK_NAME --valid-data $DATA_PATH $EVALUATE_ARGS", ENV)
    assert out.returncode == 0, out.stderr
    cfg = parse_config(["--finetune"] + shlex.split(out.stdout))
    assert cfg.task.task in ("lambda", "wikitext", "language_model")
    assert cfg.data.valid_data[0].startswith("/tmp/glm-data/")
    assert cfg.task.unidirectional == config.name.endswith("_uni.sh")
    missing = source(config, "$DATA_PATH", {"PATH": "/usr/bin:/bin"})
    assert missing.returncode != 0 and "DATA_ROOT" in missing.stderr


@pytest.mark.slow
def test_evaluate_lm_script_on_a_tiny_checkpoint(tmp_path, task_data_dir):
    import torch
    from glm.checkpoint import save_model_checkpoint
    from glm.training.model_setup import build_model

    shape = ["--block-lm", "--num-layers", "1", "--hidden-size", "16", "--num-attention-heads", "2",
             "--max-position-embeddings", "64", "--tokenizer-type", "BertWordPieceTokenizer",
             "--tokenizer-model-type", "bert-base-uncased"]
    cfg = parse_config(shape + ["--seq-length", "32"])
    _, cfg = configure_tokenizer(cfg)
    torch.manual_seed(0)
    save_model_checkpoint(str(tmp_path / "ckpt" / "tiny"), "1", {"module": build_model(cfg).state_dict()})
    model_config = tmp_path / "model_tiny.sh"
    model_config.write_text(f'MODEL_TYPE="tiny"\nMODEL_ARGS="{" ".join(shape)} '
                            '--load-pretrained ${CHECKPOINT_PATH}/tiny"\n')
    (tmp_path / "data" / "lambada").mkdir(parents=True)
    (tmp_path / "data" / "lambada" / "lambada_test.jsonl").write_text(
        (task_data_dir / "lm" / "lambada.jsonl").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                               "MASTER_PORT")}
    env.update(CHECKPOINT_PATH=str(tmp_path / "ckpt"), DATA_ROOT=str(tmp_path / "data"), SUMMARY_DIR=str(tmp_path),
               PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}", OMP_NUM_THREADS="1",
               MASTER_PORT=str(29500 + os.getpid() % 1000))
    out = subprocess.run(["bash", "scripts/evaluate_lm.sh", str(model_config), "config_tasks/zero_lambada.sh",
                          "--seq-length", "32", "--eval-batch-size", "2"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / "runs" / "zero-lambada-tiny" / "test_results.json").read_text())
    assert result["examples"] == 2 and result["task"] == "lambda"
