"""generate_samples.py (interactive and batch), scripts/generate_block.sh, and bad input."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data_utils import prepare_tokenizer
from tests.helpers import parse_config
from glm.generation import DecodeConfig, GenerationInputError, encode_context, fill_blanks, prepare_context_text
from generate_samples import build_generation_model, parse_args, run_interactive
from tests.helpers import tiny_glm
from data_utils.tokenizers import configure_tokenizer

ROOT = Path(__file__).resolve().parents[2]
MODEL_CONFIGS = sorted((ROOT / "config_tasks").glob("model_blocklm_*.sh"))
BERT = ["--block-lm", "--tokenizer-type", "BertWordPieceTokenizer", "--tokenizer-model-type", "bert-large-uncased"]


@pytest.fixture(scope="module")
def bert_tokenizer():
    return prepare_tokenizer(parse_config(BERT))


@pytest.fixture(scope="module")
def bert_taskmask_tokenizer():
    return prepare_tokenizer(parse_config(BERT + ["--task-mask"]))


def test_too_long_context_says_by_how_much(bert_tokenizer):
    text = "word " * 40 + "[MASK]"
    with pytest.raises(GenerationInputError, match=r"43 tokens long, 12 more than the model accepts "
                                                   r"\(--seq-length 32: at most 31 tokens"):
        encode_context(bert_tokenizer, text, seq_length=32)
    assert len(encode_context(bert_tokenizer, "word " * 10 + "[MASK]", seq_length=32)) == 13


def test_context_without_mask(bert_tokenizer, bert_taskmask_tokenizer):
    assert prepare_context_text("hello", task_mask=False) == "hello [MASK]"
    assert prepare_context_text("hello", task_mask=True) == "hello [gMASK]"
    with pytest.raises(GenerationInputError, match="no blank to fill"):
        prepare_context_text("hello world", task_mask=True, auto_mask=False)
    # "[sMASK]" is plain text without --task-mask: no blank to fill, and the message says why.
    model = tiny_glm(vocab=30592, hidden=8, heads=2, layers=1, mem=16).eval()
    config = DecodeConfig(max_new_tokens=2, end_ids=(30523, 0), num_tokens=bert_tokenizer.num_tokens)
    ids = encode_context(bert_tokenizer, prepare_context_text("a [sMASK] b", task_mask=False), 32)
    with pytest.raises(GenerationInputError, match=r"no blank to fill.*\[MASK\].*need --task-mask"):
        fill_blanks(model, bert_tokenizer, ids, config, task_mask=False)
    # with --task-mask it is a blank
    ids = encode_context(bert_taskmask_tokenizer, "a [sMASK] b", 32)
    result = fill_blanks(model, bert_taskmask_tokenizer, ids, DecodeConfig(
        max_new_tokens=2, end_ids=(30523, 0), num_tokens=bert_taskmask_tokenizer.num_tokens, top_k=1),
        task_mask=True)
    assert [b.mask_token for b in result.blanks] == ["[sMASK]"]
    assert all(t < bert_taskmask_tokenizer.num_tokens for t in result.output_ids)


def test_model_without_memory(bert_tokenizer):
    """Through its own memory a model built with max_memory_length=0 cannot decode (clear error);
    the key/value cache (the default) does not depend on it."""
    model = tiny_glm(vocab=30592, hidden=8, heads=2, layers=1, mem=0).eval()
    ids = encode_context(bert_tokenizer, "a [MASK] b", 32)
    config = DecodeConfig(max_new_tokens=2, end_ids=(0,), top_k=1, num_tokens=bert_tokenizer.num_tokens)
    with pytest.raises(GenerationInputError, match="max_memory_length"):
        fill_blanks(model, bert_tokenizer, ids, config, kv_cache=False)
    assert len(fill_blanks(model, bert_tokenizer, ids, config).blanks) == 1


def test_generate_block_sh_accepts_every_model_config(tmp_path):
    """The script's flags plus each config's MODEL_ARGS parse with generate_samples.py's parser."""
    stub = tmp_path / "stub_python"
    stub.write_text("#!/bin/bash\nprintf '%s\\n' \"$@\"\n")  # prints the command line it was given
    stub.chmod(0o755)
    assert MODEL_CONFIGS
    for config in MODEL_CONFIGS:
        env = dict(os.environ, PYTHON=str(stub), CHECKPOINT_PATH="/nonexistent")
        out = subprocess.run(["bash", str(ROOT / "scripts" / "generate_block.sh"), str(config)], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (config.name, out.stderr)
        argv = out.stdout.splitlines()
        assert argv[0] == "generate_samples.py"
        cfg, _ = parse_args(argv[1:])
        assert (cfg.generation.out_seq_length, cfg.generation.top_k, cfg.generation.temperature,
                cfg.objective.block_lm) == (512, 40, 0.9, True), config.name
        assert cfg.task.load_pretrained.startswith("/nonexistent/"), config.name


# -- with the original's tiny BERT-vocabulary checkpoint ----------------------------------------------

def glm_bert_argv(reference_dir, *extra):
    return BERT + ["--num-layers", "2", "--hidden-size", "32", "--num-attention-heads", "4",
                   "--max-position-embeddings", "512", "--seq-length", "128", "--out-seq-length", "12",
                   "--temperature", "0.9", "--top-k", "1", "--load-pretrained",
                   str(reference_dir / "bert_model" / "checkpoints" / "glm_bert"), *extra]


class TerminalInput(io.StringIO):
    """Typed input: a terminal."""

    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_interactive_mode_writes_the_originals_samples_file(reference_dir, tmp_path, terminal):
    vectors = torch.load(reference_dir / "generation" / "generation.pt", weights_only=True)["no_task_mask"]
    cfg, options = parse_args(glm_bert_argv(reference_dir, "--samples-dir", str(tmp_path / "samples")))
    tokenizer, cfg = configure_tokenizer(cfg)
    model = build_generation_model(cfg)
    contexts = [r["context"] for r in vectors["results"]]
    lines = "\n".join([contexts[0], "word " * 200 + "[MASK]", *contexts[1:], "stop"]) + "\n"
    stdin = TerminalInput(lines) if terminal else io.StringIO(lines)
    stdout = io.StringIO()
    path = run_interactive(model, tokenizer, cfg, options, DecodeConfig.from_config(cfg, tokenizer), stdin, stdout)
    printed = stdout.getvalue()
    # A person is prompted; contexts piped in are not (the prompts would end up in the output).
    assert ("Context prompt (stop to exit) >>> " in printed) == terminal
    for r in vectors["results"]:
        assert f"GLM: {r['glm_output_text']}" in printed
    assert "Rejected: the context is 203 tokens long, 76 more than the model accepts" in printed
    assert Path(path).read_text(encoding="utf-8") == vectors["samples_file_text"]


@pytest.mark.slow
def test_batch_mode_through_generate_block_sh(reference_dir, tmp_path):
    config = tmp_path / "model_blocklm_glm_bert.sh"
    config.write_text('MODEL_ARGS="' + " ".join(glm_bert_argv(reference_dir)[:-2]) +
                      ' --load-pretrained ${CHECKPOINT_PATH}/glm_bert"\n')
    contexts = tmp_path / "contexts.txt"
    contexts.write_text("The capital of France is [MASK]. The capital of Germany is [MASK].\n"
                        + json.dumps({"text": "Tsinghua University is located in [MASK].", "id": "q2"}) + "\n"
                        + "word " * 600 + "[MASK]\n")
    output = tmp_path / "out.jsonl"
    env = dict(os.environ, PYTHON=sys.executable, CHECKPOINT_PATH=str(reference_dir / "bert_model" / "checkpoints"),
               MAXSEQLEN="12", OMP_NUM_THREADS="1")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "generate_block.sh"), str(config), "--seq-length", "128",
                          "--top-k", "1", "--input-file", str(contexts), "--output-file", str(output)],
                         env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == 3
    assert records[0][
        "glm_output"] == "<|startofpiece|> is paris . the capital of <|startofpiece|> the capital of italy"
    assert [b["mask_position"] for b in records[0]["blanks"]] == [6, 13]
    assert records[1]["id"] == "q2" and records[1]["line"] == 2
    assert records[1]["glm_output"].startswith("<|startofpiece|> beijing .")
    assert "more than the model accepts" in records[2]["error"]


def test_beam_search_blank_filling_two_blanks(bert_taskmask_tokenizer):
    """Beam search per blank; the chosen hypothesis is fed back before the next blank.  The key/value
    cache and the model's memory give the same result."""
    torch.manual_seed(0)
    model = tiny_glm(vocab=30592, hidden=16, heads=2, layers=2, mem=127, max_seq=128).eval()
    tok = bert_taskmask_tokenizer
    config = DecodeConfig(max_new_tokens=4, num_beams=3, length_penalty=1.0, end_ids=(30523, 0),
                          num_tokens=tok.num_tokens)
    ids = encode_context(tok, "the [MASK] sat on the [sMASK] mat", 128)
    a = fill_blanks(model, tok, ids, config, task_mask=True)
    b = fill_blanks(model, tok, ids, config, task_mask=True, kv_cache=False)
    assert [blank.generated_ids for blank in a.blanks] == [blank.generated_ids for blank in b.blanks]
    assert [blank.mask_token for blank in a.blanks] == ["[MASK]", "[sMASK]"]
    assert all(blank.generated_ids[0] == tok.get_command("sop").Id for blank in a.blanks)
    assert all(t < tok.num_tokens for t in a.output_ids)
    assert a.to_json()["blanks"][0]["score"] is not None


@pytest.mark.slow
def test_interactive_generate_samples_py_reads_stdin(reference_dir, tmp_path):
    argv = glm_bert_argv(reference_dir, "--task-mask", "--samples-dir", str(tmp_path / "s"))
    out = subprocess.run([sys.executable, str(ROOT / "generate_samples.py"), *argv],
                         input="The sun rises in the [gMASK]\nno mask here\n", capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr
    assert "GLM: <|startofpiece|> east and sets in the west . the moon shines at" in out.stdout
    assert "Context: no mask here [gMASK]" in out.stdout  # the original's automatic [gMASK]
    files = list((tmp_path / "s").iterdir())
    assert len(files) == 1 and files[0].read_text().startswith("The sun rises in the [gMASK]<|startofpiece|> east")


def test_bf16_generation_on_a_cpu_with_bf16_instructions(reference_dir, tmp_path):
    """``--bf16`` generation runs in bfloat16 on CPUs that compute it natively (issue 18), fp32 elsewhere."""
    from glm.precision import native_bf16

    vectors = torch.load(reference_dir / "generation" / "generation.pt", weights_only=True)["no_task_mask"]
    cfg, options = parse_args(glm_bert_argv(reference_dir, "--bf16", "--samples-dir", str(tmp_path / "samples")))
    tokenizer, cfg = configure_tokenizer(cfg)
    model = build_generation_model(cfg, device="cpu")
    expected = torch.bfloat16 if native_bf16("cpu") else torch.float32
    assert {p.dtype for p in model.parameters()} == {expected}
    stdout = io.StringIO()
    contexts = "\n".join([vectors["results"][0]["context"], "stop"]) + "\n"
    run_interactive(model, tokenizer, cfg, options, DecodeConfig.from_config(cfg, tokenizer), io.StringIO(contexts),
                    stdout)
    generated = stdout.getvalue().split("GLM: ", 1)[1].splitlines()[0]
    assert generated == vectors["results"][0]["glm_output_text"]   # greedy: the same answer as fp32
