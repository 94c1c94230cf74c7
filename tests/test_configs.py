"""Every shell config parses into valid flags; missing path variables are named in the error."""

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.helpers import parse_config

ROOT = Path(__file__).resolve().parents[1]
PRETRAIN_CONFIGS = sorted((ROOT / "config").glob("ds_*.sh"))
MODEL_CONFIGS = sorted((ROOT / "config_tasks").glob("model_blocklm_*.sh"))
ENV = {"SAVE_PATH": "/tmp/glm-save", "CHECKPOINT_PATH": "/tmp/glm-ckpt", "PATH": "/usr/bin:/bin"}


def source(config, variable, env=ENV):
    out = subprocess.run(["bash", "-c", f'source "{config}" && printf "%s" "${variable}"'],
                         env=env, capture_output=True, text=True)
    return out


def test_there_is_a_config_per_recipe_and_model():
    assert {p.name for p in PRETRAIN_CONFIGS} >= {
        "ds_block_base.sh", "ds_block_large.sh", "ds_blockta_large.sh", "ds_block_large_chinese.sh",
        "ds_block_10B.sh", "ds_block_10B_longer.sh", "ds_block_10B_chinese.sh", "ds_block_10B_chinese_longer.sh"}
    assert len(MODEL_CONFIGS) == 10


@pytest.mark.parametrize("config", PRETRAIN_CONFIGS, ids=lambda p: p.name)
def test_pretraining_config_flags_parse(config, recwarn):
    out = source(config, "gpt_options")
    assert out.returncode == 0, out.stderr
    argv = shlex.split(out.stdout)
    cfg = parse_config(argv)
    assert cfg.objective.block_lm and cfg.parallel.deepspeed and cfg.precision.fp16
    assert cfg.checkpoint.save == "/tmp/glm-save"
    json_path = argv[argv.index("--deepspeed_config") + 1]
    config_json = json.loads(Path(json_path).read_text())
    # The JSON wins for the micro batch, as in the original (and the parser says so).
    assert cfg.training.batch_size == config_json["train_micro_batch_size_per_gpu"]
    assert cfg.training.lr == config_json["optimizer"]["params"]["lr"]


@pytest.mark.parametrize("config", MODEL_CONFIGS, ids=lambda p: p.name)
def test_model_config_flags_parse(config):
    out = source(config, "MODEL_ARGS")
    assert out.returncode == 0, out.stderr
    cfg = parse_config(shlex.split(out.stdout))
    assert cfg.objective.block_lm and cfg.task.load_pretrained.startswith("/tmp/glm-ckpt/")


def test_missing_save_path_is_named():
    out = source(ROOT / "config" / "ds_block_large.sh", "gpt_options", env={"PATH": "/usr/bin:/bin"})
    assert out.returncode != 0 and "SAVE_PATH" in out.stderr


def test_missing_checkpoint_path_is_named():
    out = source(ROOT / "config_tasks" / "model_blocklm_large.sh", "MODEL_ARGS", env={"PATH": "/usr/bin:/bin"})
    assert out.returncode != 0 and "CHECKPOINT_PATH" in out.stderr


def test_launcher_scripts_are_valid_bash():
    for script in ("ds_pretrain_nvidia.sh", "pretrain_torchrun.sh", "pretrain_slurm.sbatch"):
        assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)]).returncode == 0


TASK_CONFIGS = sorted((ROOT / "config_tasks").glob("task_*.sh")) + sorted((ROOT / "config_tasks").glob("seq_*.sh"))
TASK_ENV = {"DATA_ROOT": "/tmp/glm-data", "MODEL_TYPE": "tiny", "PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize("config", TASK_CONFIGS, ids=lambda p: p.name)
def test_finetuning_task_config_flags_parse(config):
    import finetune_glm

    out = subprocess.run(["bash", "-c", f'source "{config}" && printf "%s" "--task $TASK_NAME --data-dir $DATA_PATH '
                          '$TRAIN_ARGS $COMMON_ARGS ${TASK_ARGS:-}"'], env=TASK_ENV, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cfg = parse_config(["--finetune"] + shlex.split(out.stdout))
    family = finetune_glm.task_family(cfg)
    assert family == ("superglue" if config.name.startswith("task_") else "seq2seq")
    assert cfg.data.data_dir.startswith("/tmp/glm-data/")
    if family == "seq2seq":
        assert cfg.task.src_seq_length and cfg.task.tgt_seq_length and cfg.training.epochs
    missing = subprocess.run(["bash", "-c", f'source "{config}" && echo "$DATA_PATH"'],
                             env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert missing.returncode != 0 and "DATA_ROOT" in missing.stderr


def _fake_launcher(tmp_path, name):
    """A stand-in for torchrun/deepspeed that prints the command line it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text('#!/bin/bash\nprintf "%s\\n" "$@"\n')
    (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "CHECKPOINT_PATH": "/tmp/glm-ckpt", "DATA_ROOT": "/tmp/glm-data",
            "SAVE_PATH": "/tmp/glm-save"}


@pytest.mark.parametrize("script,launcher", [("ds_finetune_superglue.sh", "deepspeed"),
                                             ("finetune_superglue.sh", "torchrun")])
def test_superglue_launchers_honour_the_task_pattern(tmp_path, script, launcher):
    """The original 10B script appended --pattern-id 0 after the task's flags; ours keeps the task's."""
    out = subprocess.run(["bash", str(ROOT / "scripts" / script), str(ROOT / "config_tasks" / "model_blocklm_10B.sh"),
                          str(ROOT / "config_tasks" / "task_cb.sh"), "--seed", "7"],
                         env=_fake_launcher(tmp_path, launcher), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    argv = out.stdout.split()
    argv = argv[argv.index("finetune_glm.py") + 1:]
    cfg = parse_config(argv)
    assert cfg.task.pattern_id == 3 and cfg.task.task == "cb" and cfg.training.seed == 7
    assert cfg.data.data_dir == "/tmp/glm-data/CB" and cfg.checkpoint.save == "/tmp/glm-save"
    assert cfg.task.cloze_eval and cfg.checkpoint.finetune


def test_finetuning_launchers_are_valid_bash():
    for script in ("finetune_common.sh", "finetune_superglue.sh", "ds_finetune_superglue.sh",
                   "ds_finetune_superglue_prompt.sh", "finetune_seq2seq.sh", "ds_finetune_seq2seq.sh",
                   "finetune_blank.sh", "evaluate_seq2seq.sh"):
        assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)]).returncode == 0


@pytest.mark.parametrize("positions,expected", [("128", "128"), ("1024", "512")])
def test_multichoice_launcher_fits_seq_length_to_the_model(tmp_path, positions, expected):
    """Issue 20, case 14: evaluate_multichoice.sh passed --seq-length 512 to a 128-position model."""
    model_config = tmp_path / "model.sh"
    model_config.write_text(f'MODEL_TYPE="tiny"\nMODEL_ARGS="--block-lm --num-layers 2 --max-position-embeddings '
                            f'{positions} --load-pretrained /tmp/glm-ckpt"\n')
    env = dict(_fake_launcher(tmp_path, "torchrun"), DATA_PATH="/tmp/mc/*.jsonl")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "evaluate_multichoice.sh"), str(model_config)],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    argv = out.stdout.split()
    assert argv[argv.index("--seq-length") + 1] == expected and "--overwrite" not in argv


def test_the_test_script_names_a_stale_extension_build_lock(tmp_path):
    """scripts/test.sh warns about a DeepSpeed JIT-build lock left by an interrupted run (every later build
    would wait on it); its check is run here on its own, without installing or running the suite."""
    import subprocess
    script = (ROOT / "scripts" / "test.sh").read_text()
    check = script[script.index("EXTENSIONS="):script.index("\nfi\n") + 4]
    (tmp_path / "cpu_adam").mkdir()
    old, fresh = tmp_path / "cpu_adam" / "lock", tmp_path / "fresh_lock_dir" / "lock"
    fresh.parent.mkdir()
    old.touch()
    fresh.touch()
    os.utime(old, (old.stat().st_atime - 7200, old.stat().st_mtime - 7200))
    out = subprocess.run(["bash", "-c", check], env=dict(os.environ, TORCH_EXTENSIONS_DIR=str(tmp_path)),
                         capture_output=True, text=True)
    assert out.returncode == 0
    assert str(old) in out.stderr and "interrupted build" in out.stderr
    assert str(fresh) not in out.stderr
