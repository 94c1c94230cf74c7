"""Fill [MASK] / [sMASK] / [gMASK] blanks with a GLM model (the original's generate_samples.py).

    python generate_samples.py --block-lm ... --load-pretrained CKPT                 # interactive (stdin)
    python generate_samples.py --block-lm ... --load-pretrained CKPT --input-file contexts.txt \
        --output-file results.jsonl                                                  # batch
    bash scripts/generate_block.sh config_tasks/model_blocklm_large.sh               # released models

Every original flag works; docs/generation.md describes the decoding options and the output.

This program owns the command line of generation: its extra flags, building the model from the flags,
the interactive loop (stdin, as the original) and batch mode (a file of contexts in, JSON lines out).
The decoding itself is :mod:`glm.generation` (:func:`~glm.generation.blank_filling.fill_text`), which
takes explicit values and never sees the flags.
"""

import datetime
import json
import logging
import os
import sys

import torch

from data_utils.tokenizers import configure_tokenizer
from glm.arguments import build_parser, get_args
from glm.config import build_config
from glm.checkpoint import CheckpointError, load_pretrained_weights
from glm.checkpoint.loading import load_adapter
from glm.model.lora import settings_from_config
from glm.generation.blank_filling import fill_text
from glm.generation.decoding import DecodeConfig, GenerationInputError
from glm.precision import native_bf16
from glm.training.distributed import initialize_distributed
from glm.training.model_setup import build_model
from glm.training.seed import set_random_seed

logger = logging.getLogger("generate_samples")

PROMPT = "\nContext prompt (stop to exit) >>> "


def add_generation_cli_args(parser):
    """Flags of this program beyond the original ones."""
    group = parser.add_argument_group("generate_samples", "Input and output of generate_samples.py (new).")
    group.add_argument("--input-file", default=None,
                       help="Batch mode: one context per line (or JSON lines with a 'text' field); results go "
                            "to --output-file as JSON lines.  Without it, contexts are read from stdin "
                            "interactively.")
    group.add_argument("--output-file", default=None,
                       help="Batch mode: where the JSON lines go (default: <input-file>.generated.jsonl).")
    group.add_argument("--samples-dir", default="samples",
                       help="Interactive mode: the 'context + output' lines are appended to "
                            "<samples-dir>/sample-<timestamp>.txt (the original's ./samples).")
    group.add_argument("--no-auto-mask", action="store_true",
                       help="Refuse a context without a mask instead of appending [gMASK]/[MASK] to it.")
    group.add_argument("--beam-sample", action="store_true",
                       help="Beam search: sample the candidates (the original's behaviour without "
                            "--select-topk) instead of taking the top-k.")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available).")
    return parser


def parse_args(argv=None):
    """``(config, options)``: the typed configuration of the GLM flags and this program's own flags."""
    parser = add_generation_cli_args(build_parser("GLM blank filling (generate_samples.py)"))
    options = get_args(argv, parser=parser)
    return build_config(options), options


def build_generation_model(config, device=None):
    """The generation model: no head, full-vocabulary logits, memory of
    ``seq_length + mem_length - 1`` positions (the original's ``mem_length`` rule); weights from
    ``--load-pretrained`` (or ``--load``) when given."""
    if not config.objective.block_lm:
        raise GenerationInputError("generate_samples.py fills blanks of block-LM models: pass --block-lm "
                                   "(left-to-right GPT-2 style generation is not implemented)")
    if config.objective.no_block_position:
        raise GenerationInputError("--no-block-position generation is not implemented; use a model with "
                                   "block position encoding")
    memory = config.data.seq_length + config.model.mem_length - 1
    path = config.task.load_pretrained or config.checkpoint.load
    # Half precision on GPUs, and bf16 on CPUs that have its instructions; the weights are loaded
    # straight into that dtype, on the meta-built model, so no fp32 copy is ever held.
    dtype = None
    if device is not None and torch.device(device).type == "cuda" and (config.precision.fp16 or config.precision.bf16):
        dtype = torch.float16 if config.precision.fp16 else torch.bfloat16
    elif device is not None and config.precision.bf16 and native_bf16(device):
        dtype = torch.bfloat16  # CPUs with bf16 instructions; fp16 stays a GPU option
    model = build_model(config, on_meta=bool(path), dtype=dtype, max_memory_length=memory,
                        checkpoint_activations=False, parallel_output=False)
    say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    if config.adaptation.load_adapter and not path:
        raise GenerationInputError("--load-adapter puts LoRA adapters on a base model: give the base with "
                                   "--load-pretrained")
    if path:
        load_pretrained_weights(model, path, unsafe_unpickle=config.checkpoint.unsafe_unpickle, log=say)
        if config.adaptation.load_adapter:
            load_adapter(model, config.adaptation.load_adapter, settings_from_config(config),
                         unsafe_unpickle=config.checkpoint.unsafe_unpickle, log=say)
    else:
        logger.warning("no --load-pretrained/--load given: generating with randomly initialised weights")
    if device is not None:
        model = model.to(device)
    return model.eval()


def check_lengths(config):
    if config.generation.out_seq_length > config.model.max_position_embeddings:
        raise GenerationInputError(
            f"--out-seq-length {config.generation.out_seq_length} exceeds the block position table "
            f"(--max-position-embeddings {config.model.max_position_embeddings})")
    if config.data.seq_length > config.model.max_position_embeddings:
        raise GenerationInputError(
            f"--seq-length {config.data.seq_length} exceeds the position table "
            f"(--max-position-embeddings {config.model.max_position_embeddings})")


def samples_line(result):
    """What the original appended to its samples file per context."""
    return result.context + result.output_text + "\n"


def _read_contexts(path):
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    item = json.loads(line)
                    text = item["text"]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise GenerationInputError(f"{path}:{number}: expected plain text or a JSON object with a "
                                               f"'text' field ({exc})") from None
                yield number, text, item
            else:
                yield number, line, None


def _broadcast_text(text):
    """Rank 0 reads, the other model-parallel ranks receive (torchrun with tensor parallelism)."""
    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() == 1:
        return text
    box = [text]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def run_interactive(model, tokenizer, config, options, decode, stdin=None, stdout=None, generator=None):
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    rank0 = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
    # Prompt only a person: contexts piped in (the demo, a here-document) would get a prompt per line
    # written into the output.
    prompt = rank0 and getattr(stdin, "isatty", lambda: False)()
    samples_path = None
    if rank0:
        os.makedirs(options.samples_dir, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        samples_path = os.path.join(options.samples_dir, f"sample-{stamp}.txt")
    while True:
        text = None
        if rank0:
            if prompt:
                stdout.write(PROMPT)
                stdout.flush()
            line = stdin.readline()
            text = "stop" if line == "" else line.rstrip("\n")
        text = _broadcast_text(text)
        if text == "stop":
            return samples_path
        if not text.strip():
            continue
        try:
            result = fill_text(model,
                               tokenizer,
                               text,
                               decode,
                               task_mask=config.objective.task_mask,
                               seq_length=config.data.seq_length,
                               auto_mask=not options.no_auto_mask,
                               generator=generator)
        except GenerationInputError as exc:
            if rank0:
                print(f"\nRejected: {exc}", file=stdout, flush=True)
            continue
        if rank0:
            print(f"\nContext: {result.context}", file=stdout)
            print(f"\nGLM: {result.output_text}", file=stdout, flush=True)
            with open(samples_path, "a", encoding="utf-8") as f:
                f.write(samples_line(result))


def run_batch(model, tokenizer, config, options, decode, generator=None):
    output = options.output_file or options.input_file + ".generated.jsonl"
    rank0 = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
    count = errors = 0
    out = open(output, "w", encoding="utf-8") if rank0 else None
    try:
        for number, text, item in _read_contexts(options.input_file):
            record = {"line": number}
            if item is not None:
                record.update({k: v for k, v in item.items() if k != "text"})
            try:
                result = fill_text(model, tokenizer, text, decode, task_mask=config.objective.task_mask,
                                   seq_length=config.data.seq_length, auto_mask=not options.no_auto_mask,
                                   generator=generator)
                record.update(result.to_json())
                record["glm_output"] = result.output_text
            except GenerationInputError as exc:
                record.update(context=text, error=str(exc))
                errors += 1
            count += 1
            if out is not None:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
    finally:
        if out is not None:
            out.close()
    if rank0:
        logger.info("wrote %d results (%d rejected contexts) to %s", count, errors, output)
    return output


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config, options = parse_args(argv)
    try:
        device, config = initialize_distributed(config)
        if options.device:
            device = torch.device(options.device)
        set_random_seed(config.training.seed)
        tokenizer, config = configure_tokenizer(config)
        check_lengths(config)
        model = build_generation_model(config, device)
        decode = DecodeConfig.from_config(config, tokenizer, beam_sample=options.beam_sample)
        if options.input_file:
            run_batch(model, tokenizer, config, options, decode)
        else:
            run_interactive(model, tokenizer, config, options, decode)
    except (GenerationInputError, CheckpointError, FileNotFoundError) as exc:
        print(f"generate_samples.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
