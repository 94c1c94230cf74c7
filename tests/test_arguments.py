"""Tests of glm.arguments: the original flags and defaults, derivations, DeepSpeed JSON precedence,
the resolved-config dump, and that docs/flags.md is generated from the current parser."""

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

from glm.arguments import (DEEPSPEED_FLAGS, DeepSpeedConfigOverrideWarning, build_parser,
                           get_args, resolve_distributed_env)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GLM_SHARED_DIR") or REPO.parent / "shared")
SPEC = SHARED / "spec" / "glm_reference_spec.md"

LAUNCHER_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No launcher variables from the host leak into (or out of) a test."""
    for key in list(os.environ):
        if key in LAUNCHER_KEYS or key.startswith(("OMPI_COMM_WORLD_", "SLURM_")):
            monkeypatch.delenv(key)
    for key in LAUNCHER_KEYS:  # also restore keys a test (e.g. --deepspeed_mpi) sets
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def _option_strings(parser=None):
    parser = parser or build_parser()
    return {s for a in parser._actions for s in a.option_strings}


def _spec_section_8():
    if not SPEC.exists():
        pytest.skip(f"spec not found at {SPEC}")
    text = SPEC.read_text(encoding="utf-8")
    return text[text.index("## 8. Arguments"):text.index("## 9. Finetuning")]


# ---------------------------------------------------------------------------------------------------
# Flags and defaults
# ---------------------------------------------------------------------------------------------------

# (dest, original default) -- several per group of spec section 8.
ORIGINAL_DEFAULTS = [
    # model
    ("transformer_xl", False), ("attention_dropout", 0.1), ("num_attention_heads", 16), ("hidden_size", 1024),
    ("intermediate_size", None), ("num_layers", 24), ("layernorm_epsilon", 1e-5), ("hidden_dropout", 0.1),
    ("output_dropout", 0.1), ("max_position_embeddings", 512), ("vocab_size", 30522),
    ("make_vocab_size_divisible_by", 128), ("cpu_optimizer", False), ("cpu_torch_adam", False),
    # fp16
    ("fp16", False), ("hysteresis", 2), ("loss_scale", None), ("loss_scale_window", 1000), ("min_scale", 1),
    ("attention_scale", 1.0), ("fp32_allreduce", False),
    # training
    ("experiment_name", "glm"), ("batch_size", 4), ("gradient_accumulation_steps", 1), ("weight_decay", 0.01),
    ("checkpoint_activations", False), ("checkpoint_num_layers", 1), ("epochs", None), ("clip_grad", 1.0),
    ("train_iters", 0), ("label_smoothing", 0.0), ("log_interval", 100), ("summary_dir", ""), ("seed", 1234),
    ("lr_decay_iters", None), ("lr_decay_style", "linear"), ("lr_decay_ratio", 0.1), ("lr", 1e-4),
    ("warmup", 0.01), ("save", None), ("save_epoch", 1), ("save_interval", 5000), ("load", None),
    ("no_load_lr_scheduler", False), ("finetune", False), ("distributed_backend", "nccl"), ("DDP_impl", "torch"),
    ("local_rank", None),
    # blocklm objective
    ("block_lm", False), ("masked_lm", False), ("bert_prob", 0.5), ("gpt_infill_prob", 0.5), ("gpt_min_ratio", 0.5),
    ("gap_sentence_prob", 0.0), ("gap_sentence_ratio", 0.15), ("avg_block_length", 3), ("short_seq_prob", 0.0),
    ("single_span_prob", 0.0), ("task_mask", False), ("block_mask_prob", 0.0), ("context_mask_ratio", 0.0),
    # evaluation
    ("eval_batch_size", None), ("eval_iters", 100), ("eval_interval", 1000), ("eval_epoch", 1),
    ("eval_seq_length", None), ("eval_max_preds_per_seq", None), ("overlapping_eval", 32),
    # generation
    ("temperature", 1.0), ("top_p", 0.0), ("top_k", 0), ("out_seq_length", 256), ("num_beams", 1),
    ("length_penalty", 0.0), ("no_repeat_ngram_size", 0), ("min_tgt_length", 0), ("select_topk", False),
    ("blank_maskratio", 0.1),
    # data
    ("model_parallel_size", 1), ("train_data", None), ("valid_data", None), ("test_data", None), ("delim", ","),
    ("text_key", "sentence"), ("split", "1000,1,1"), ("loader_scatter", None), ("num_workers", 2),
    ("tokenizer_model_type", None), ("tokenizer_path", "tokenizer.model"),
    ("tokenizer_type", "BertWordPieceTokenizer"), ("seq_length", 512), ("mem_length", 0),
    ("non_sentence_start", 0.0), ("multi_task_ratio", 0.0), ("multi_task_data", None),
    # finetune
    ("task", None), ("load_pretrained", None), ("pool_token", "cls"), ("segment_length", 0),
    ("loss_func", "cross_entropy"), ("block_lm_ratio", 0.0), ("pattern_id", 0), ("adam_beta1", 0.9),
    ("adam_beta2", 0.999), ("adam_eps", 1e-8), ("optimizer", "adam"), ("num_prompt_tokens", 0),
    ("prompt_func", "lstm"), ("prefix_prompt", 0), ("mask_pad_token", False),
    # DeepSpeed
    ("deepspeed", False), ("deepspeed_config", None), ("deepscale", False), ("deepscale_config", None),
    ("deepspeed_mpi", False),
]


@pytest.mark.parametrize("dest,default", ORIGINAL_DEFAULTS, ids=[d for d, _ in ORIGINAL_DEFAULTS])
def test_original_defaults(dest, default):
    raw = build_parser().parse_args([])
    assert getattr(raw, dest) == default
    assert type(getattr(raw, dest)) is type(default)


def test_new_flags_defaults_and_marking():
    args = build_parser().parse_args([])
    assert (args.bf16, args.attention_backend, args.lr_schedule_compat, args.max_nan_steps, args.tensorboard) == \
        (False, "auto", False, 10, False)
    new = {a.option_strings[0] for a in build_parser()._actions if (a.help or "").startswith("(new)")}
    assert new == {"--bf16", "--attention-backend", "--lr-schedule-compat", "--max-nan-steps", "--tensorboard",
                   "--compile", "--corpus-registry", "--unsafe-unpickle", "--no-save-on-interrupt",
                   "--print-config", "--distributed-timeout-minutes", "--lora-rank", "--lora-alpha",
                   "--lora-dropout", "--lora-targets", "--lora-save", "--load-adapter"}
    assert (args.lora_rank, args.lora_alpha, args.lora_dropout, args.lora_save) == (0, None, 0.0, "merged")


def test_every_flag_has_help_and_help_renders():
    parser = build_parser()
    missing = [a.option_strings for a in parser._actions if a.option_strings and not a.help]
    assert not missing
    assert "--lr-decay-style" in parser.format_help()  # argparse %-formats help: must not raise


def test_every_flag_of_spec_section_8_is_registered():
    flags = set(re.findall(r"`(--[A-Za-z][\w-]*)`", _spec_section_8()))
    assert len(flags) > 150
    assert flags - _option_strings() == set()


def test_every_starred_flag_is_registered():
    starred = {"--num-attention-heads", "--hidden-size", "--num-layers", "--max-position-embeddings",
               "--block-lm", "--task-mask", "--tokenizer-model-type", "--tokenizer-type", "--fix-command-token",
               "--load-pretrained", "--cloze-eval"}
    if SPEC.exists():
        assert set(re.findall(r"`(--[\w-]+)`\s*★", _spec_section_8())) == starred
    assert starred <= _option_strings()


def test_flag_count_original_deepspeed_new():
    # Spec section 15: "168 flags in arguments.py plus DeepSpeed's".
    actions = [a for a in build_parser()._actions if a.option_strings and a.dest != "help"]
    new = [a for a in actions if a.help.startswith("(new)")]
    deepspeed = [a for a in actions if a.option_strings[0] in DEEPSPEED_FLAGS]
    assert len(deepspeed) == 5
    assert len(actions) - len(new) - len(deepspeed) == 168


def test_choices():
    parser = build_parser()
    choices = {a.dest: tuple(a.choices) for a in parser._actions if a.choices}
    assert choices["lr_decay_style"] == ("constant", "linear", "cosine", "exponential")
    assert choices["DDP_impl"] == ("local", "torch", "none")
    assert choices["pool_token"] == ("start", "pad", "cls")
    assert choices["loss_func"] == ("cross_entropy", "hinge", "generative", "mix")
    assert choices["optimizer"] == ("adam", "adafactor")
    assert choices["prompt_func"] == ("lstm", "mlp", "none")
    assert set(choices["tokenizer_type"]) == {"CharacterLevelTokenizer", "SentencePieceTokenizer",
                                              "BertWordPieceTokenizer", "GPT2BPETokenizer", "ChineseSPTokenizer"}
    assert choices["attention_backend"] == ("auto", "sdpa", "reference", "explicit", "flex")


def test_reference_argvs_parse():
    """Every argv recorded with the original in glm_reference/*.json parses here."""
    files = sorted((SHARED / "glm_reference").glob("*/*.json")) if SHARED.exists() else []
    if not files:
        pytest.skip("reference vectors not available")
    argvs = []

    def collect(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "argv" and isinstance(value, list):
                    argvs.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    for path in files:
        collect(json.loads(path.read_text(encoding="utf-8")))
    assert len(argvs) > 50
    parser = build_parser()
    for argv in argvs:
        # Entries like "(cloze_eval=False)" annotate attributes the harness set after parsing.
        parser.parse_args([item for item in argv if not re.fullmatch(r"\(.*\)", item)])


def test_parsing_semantics_of_the_original():
    args = get_args(["--num-attention-head", "4", "--pattern-id", "3", "--pattern-id", "0",
                     "--train-data", "wikibook", "cc-news", "--valid-data"])
    assert args.num_attention_heads == 4  # unambiguous prefixes are accepted (argparse default)
    assert args.pattern_id == 0  # last occurrence wins (ds_finetune_superglue.sh relies on it)
    assert args.train_data == ["wikibook", "cc-news"] and args.valid_data == []


@pytest.mark.parametrize("argv,needle", [
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["--lazy-loader"], "unrecognized arguments: --lazy-loader"),  # config/ds_block_base.sh's bug
    (["--lr-decay-style", "polynomial"], "invalid choice: 'polynomial'"),
    (["--fp16", "--bf16"], "--fp16 and --bf16 are mutually exclusive"),
])
def test_errors_exit_with_message(argv, needle, capsys):
    with pytest.raises(SystemExit) as info:
        get_args(argv)
    assert info.value.code == 2
    assert needle in capsys.readouterr().err


def test_import_without_deepspeed_or_torch():
    code = (
        "import sys\n"
        "sys.modules['deepspeed'] = None\n"  # makes any import of deepspeed fail
        "sys.modules['torch'] = None\n"
        "import glm.arguments as a\n"
        "args = a.get_args(['--deepspeed', '--fp16'])\n"
        "assert args.deepspeed and args.fp16 and args.cuda is False\n"
        "assert '--deepspeed_mpi' in a.build_parser().format_help()\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_KEYS}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_deepspeed_flags_match_deepspeed_add_config_arguments():
    deepspeed = pytest.importorskip("deepspeed")
    theirs = deepspeed.add_config_arguments(argparse.ArgumentParser())
    ours = {a.option_strings[0]: a for a in build_parser()._actions if a.option_strings}
    for action in theirs._actions:
        if not action.option_strings or action.dest == "help":
            continue
        mine = ours[action.option_strings[0]]
        assert (mine.dest, mine.default, mine.type, mine.nargs, mine.const) == \
            (action.dest, action.default, action.type, action.nargs, action.const)


# ---------------------------------------------------------------------------------------------------
# Derived values
# ---------------------------------------------------------------------------------------------------


def test_derived_single_process():
    args = get_args([])
    assert (args.rank, args.world_size, args.local_rank) == (0, 1, None)
    assert args.model_parallel_size == 1
    assert args.dynamic_loss_scale is True
    assert args.eval_batch_size == 4
    assert isinstance(args.cuda, bool)


def test_derived_loss_scale_fp32_and_eval_batch():
    args = get_args(["--loss-scale", "128", "--fp32-layernorm", "--fp32-embedding", "--fp32-allreduce",
                     "--batch-size", "8"])
    assert args.dynamic_loss_scale is False
    assert not (args.fp32_layernorm or args.fp32_embedding or args.fp32_allreduce)  # cleared without --fp16
    assert args.eval_batch_size == 8
    args = get_args(["--fp16", "--fp32-layernorm", "--eval-batch-size", "16", "--batch-size", "8"])
    assert args.fp32_layernorm is True and args.fp32_embedding is False
    assert args.eval_batch_size == 16


@pytest.mark.parametrize("env,expected", [
    ({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}, (3, 8, 1)),
    ({"OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_SIZE": "6", "OMPI_COMM_WORLD_LOCAL_RANK": "2"}, (5, 6, 2)),
    ({"SLURM_PROCID": "2", "SLURM_NTASKS": "4", "SLURM_LOCALID": "0"}, (2, 4, 0)),
    # torch launchers win over MPI/SLURM variables that may also be present
    ({"RANK": "1", "WORLD_SIZE": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, (1, 2, None)),
    ({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"},
     (1, 2, None)),
], ids=["torchrun", "openmpi", "slurm", "rank-first", "mpi-before-slurm"])
def test_derived_rank_world_from_env(env, expected, clean_env):
    place = resolve_distributed_env(env)
    assert (place["rank"], place["world_size"], place["local_rank"]) == expected
    for key, value in env.items():
        clean_env.setenv(key, value)
    args = get_args(["--model-parallel-size", "4"])
    assert (args.rank, args.world_size, args.local_rank) == expected
    assert args.model_parallel_size == min(4, expected[1])


def test_explicit_local_rank_wins_and_new_spelling(clean_env):
    clean_env.setenv("RANK", "1")
    clean_env.setenv("WORLD_SIZE", "2")
    clean_env.setenv("LOCAL_RANK", "1")
    assert get_args(["--local_rank=0"]).local_rank == 0  # the deepspeed launcher's spelling
    assert get_args(["--local-rank=1"]).local_rank == 1  # recent torch launchers' spelling


def test_invalid_env_rank_is_an_error(clean_env, capsys):
    clean_env.setenv("RANK", "4")
    clean_env.setenv("WORLD_SIZE", "4")
    with pytest.raises(SystemExit):
        get_args([])
    assert "RANK=4 is outside" in capsys.readouterr().err


def test_deepspeed_mpi_uses_mpi4py(clean_env):
    class FakeComm:  # rank 3 of 4, two ranks per host
        def Get_rank(self):
            return 3

        def Get_size(self):
            return 4

        def bcast(self, value, root=0):
            return "node0"

        def allgather(self, value):
            return ["node0", "node0", "node1", "node1"]

    fake = types.ModuleType("mpi4py")
    fake.MPI = types.SimpleNamespace(COMM_WORLD=FakeComm())
    clean_env.setitem(sys.modules, "mpi4py", fake)
    args = get_args(["--deepspeed_mpi", "--model-parallel-size", "8"])
    assert (args.rank, args.world_size, args.local_rank, args.model_parallel_size) == (3, 4, 1, 4)
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"]) == ("3", "4", "1")
    assert os.environ["MASTER_ADDR"] == "node0"


def test_deepspeed_mpi_without_mpi4py_is_a_clear_error(clean_env):
    clean_env.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(RuntimeError, match="--deepspeed_mpi needs the mpi4py package"):
        get_args(["--deepspeed_mpi"])


# ---------------------------------------------------------------------------------------------------
# DeepSpeed JSON
# ---------------------------------------------------------------------------------------------------


def _write(tmp_path, payload, name="ds.json"):
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload), encoding="utf-8")
    return str(path)


DS_CONFIG = {
    "train_micro_batch_size_per_gpu": 16,
    "gradient_accumulation_steps": 2,
    "gradient_clipping": 0.5,
    "fp16": {"enabled": True, "loss_scale": 0},
    "optimizer": {"type": "Adam", "params": {"lr": 4e-4, "weight_decay": 0.1, "betas": [0.9, 0.98]}},
}


def test_deepspeed_json_overrides_flags_with_warnings(tmp_path):
    path = _write(tmp_path, DS_CONFIG)
    with pytest.warns(DeepSpeedConfigOverrideWarning) as record:
        args = get_args(["--deepspeed", "--deepspeed_config", path, "--batch-size", "8", "--lr", "1e-3",
                         "--clip-grad", "2.0"])
    assert (args.batch_size, args.gradient_accumulation_steps, args.lr, args.weight_decay) == (16, 2, 4e-4, 0.1)
    assert (args.fp16, args.clip_grad, args.eval_batch_size) == (True, 0.5, 16)
    messages = [str(w.message) for w in record]
    assert len(messages) == 6, messages
    by_flag = {re.search(r"overrides (--[\w-]+)", m).group(1): m for m in messages}
    assert set(by_flag) == {"--batch-size", "--gradient-accumulation-steps", "--lr", "--weight-decay", "--fp16",
                            "--clip-grad"}
    assert "train_micro_batch_size_per_gpu=16" in by_flag["--batch-size"]
    assert "--batch-size 8 (given on the command line)" in by_flag["--batch-size"]
    assert "(its default)" in by_flag["--weight-decay"]
    assert all(path in m and "original GLM applied this override silently" in m for m in messages)


def test_deepspeed_json_in_agreement_is_silent(tmp_path):
    path = _write(tmp_path, {"train_micro_batch_size_per_gpu": 4, "optimizer": {"params": {"lr": 1e-4}},
                             "gradient_clipping": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        args = get_args(["--deepspeed", "--deepspeed_config", path])
    assert (args.batch_size, args.gradient_accumulation_steps, args.lr) == (4, 1, 1e-4)


def test_deepspeed_json_without_accumulation_resets_it_to_one(tmp_path):
    path = _write(tmp_path, {"train_micro_batch_size_per_gpu": 4})
    with pytest.warns(DeepSpeedConfigOverrideWarning, match="gradient_accumulation_steps=1 overrides"):
        args = get_args(["--deepspeed", "--deepspeed_config", path, "--gradient-accumulation-steps", "4"])
    assert args.gradient_accumulation_steps == 1


def test_deepspeed_json_precision(tmp_path, capsys):
    path = _write(tmp_path, {"fp16": {"enabled": False}})
    with pytest.warns(DeepSpeedConfigOverrideWarning, match="fp16.enabled=False overrides --fp16 True"):
        args = get_args(["--deepspeed", "--deepspeed_config", path, "--fp16", "--fp32-layernorm"])
    assert args.fp16 is False and args.fp32_layernorm is False
    path = _write(tmp_path, {"bf16": {"enabled": True}}, "bf16.json")
    with pytest.warns(DeepSpeedConfigOverrideWarning, match="bf16.enabled=True"):
        assert get_args(["--deepspeed", "--deepspeed_config", path]).bf16 is True
    with pytest.raises(SystemExit), pytest.warns(DeepSpeedConfigOverrideWarning):
        get_args(["--deepspeed", "--deepspeed_config", path, "--fp16"])
    assert "mutually exclusive" in capsys.readouterr().err


def test_deepspeed_json_needs_deepspeed_flag(tmp_path):
    path = _write(tmp_path, DS_CONFIG)
    with pytest.warns(DeepSpeedConfigOverrideWarning, match="ignored because --deepspeed is not set"):
        args = get_args(["--deepspeed_config", path, "--batch-size", "8"])
    assert (args.batch_size, args.lr) == (8, 1e-4)


def test_deepscale_config_is_a_fallback(tmp_path):
    path = _write(tmp_path, {"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 3})
    with pytest.warns(DeepSpeedConfigOverrideWarning):
        assert get_args(["--deepspeed", "--deepscale_config", path]).gradient_accumulation_steps == 3


def test_deepspeed_warnings_only_on_rank_zero(tmp_path, clean_env):
    clean_env.setenv("RANK", "1")
    clean_env.setenv("WORLD_SIZE", "2")
    path = _write(tmp_path, DS_CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        args = get_args(["--deepspeed", "--deepspeed_config", path])
    assert args.batch_size == 16


@pytest.mark.parametrize("content,needle", [
    (None, "DeepSpeed config file not found: {path}"),
    ('{\n  "train_micro_batch_size_per_gpu": 4,\n  "fp16": {"enabled": true,}\n}',
     "DeepSpeed config file {path} is not valid JSON: Expecting property name enclosed in double quotes at "
     "line 3, column 28"),
    ("[1, 2]", "DeepSpeed config file {path} must hold a JSON object"),
], ids=["missing", "invalid", "not-an-object"])
def test_deepspeed_json_errors_name_the_file(tmp_path, capsys, content, needle):
    path = str(tmp_path / "missing.json") if content is None else _write(tmp_path, content)
    with pytest.raises(SystemExit) as info:
        get_args(["--deepspeed", "--deepspeed_config", path])
    assert info.value.code == 2
    assert needle.format(path=path) in capsys.readouterr().err


def test_deepspeed_json_bad_value_types(tmp_path, capsys):
    path = _write(tmp_path, {"train_micro_batch_size_per_gpu": "auto"})
    with pytest.raises(SystemExit):
        get_args(["--deepspeed", "--deepspeed_config", path])
    assert f"DeepSpeed config file {path}: train_micro_batch_size_per_gpu has the unusable value 'auto'" in \
        capsys.readouterr().err
    path = _write(tmp_path, {"fp16": {"enabled": "true"}}, "fp16.json")
    with pytest.raises(SystemExit):
        get_args(["--deepspeed", "--deepspeed_config", path])
    assert "fp16.enabled has the unusable value 'true'" in capsys.readouterr().err


def test_argv_none_reads_sys_argv_and_extended_parser(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pretrain_glm.py", "--num-layers", "2", "--block-lm"])
    args = get_args()
    assert args.num_layers == 2 and args.block_lm
    parser = build_parser()
    parser.add_argument("--my-tool-flag", type=int, default=7)
    args = get_args(["--my-tool-flag", "9", "--batch-size", "3"], parser=parser)
    assert (args.my_tool_flag, args.eval_batch_size) == (9, 3)


# ---------------------------------------------------------------------------------------------------
# Generated documentation
# ---------------------------------------------------------------------------------------------------


def test_flag_docs_are_up_to_date():
    script = REPO / "scripts" / "gen_flag_docs.py"
    spec = importlib.util.spec_from_file_location("gen_flag_docs", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render(build_parser())
    docs = REPO / "docs" / "flags.md"
    assert docs.exists(), "docs/flags.md missing: run python scripts/gen_flag_docs.py"
    assert docs.read_text(encoding="utf-8") == expected, "docs/flags.md is stale: run python scripts/gen_flag_docs.py"
    # One table per group, every flag listed.
    for group in ("model", "fp16", "train", "blocklm", "validation", "Text generation", "data", "finetune",
                  "DeepSpeed"):
        assert f"\n## {group}\n" in expected
    for flag in _option_strings():
        if flag not in ("-h", "--help"):
            assert f"`{flag}`" in expected, flag
