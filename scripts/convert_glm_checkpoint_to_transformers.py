"""Convert a GLM checkpoint (any model-parallel size) to a Hugging Face folder in the layout of the
THUDM/glm-* hub repositories, or a Hugging Face folder back to our checkpoint layout.

    python scripts/convert_glm_checkpoint_to_transformers.py CHECKPOINT MODEL_NAME [--output DIR]
    python scripts/convert_glm_checkpoint_to_transformers.py CHECKPOINT --num-attention-heads 4 --tokenizer bert [--task-mask]
    python scripts/convert_glm_checkpoint_to_transformers.py --to-glm HF_DIR OUT_DIR [--model-parallel-size 2]

CHECKPOINT is a save directory, a folder of mp_rank_XX_model_states.pt files, or one such file
(as the original took).  MODEL_NAME is one of glm-large, glm-roberta-large, glm-large-chinese,
glm-515m, glm-2b, glm-10b, glm-10b-chinese (fixes the head count and tokenizer family; for
glm-10b-chinese embedding row 50007 is copied into row 50009).  See docs/checkpoints.md.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from glm.checkpoint.errors import CheckpointError  # noqa: E402
from glm.checkpoint.hf_export import HUB_MODELS, TOKENIZER_FILES, export_to_hf, import_from_hf  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", nargs="?", help="GLM checkpoint (directory or mp_rank_XX file)")
    parser.add_argument("model_name", nargs="?", choices=sorted(HUB_MODELS), help="hub model name")
    parser.add_argument("--output", help="Hugging Face folder to write (default: CHECKPOINT_hf, or "
                        "<folder of the mp_rank file>/hf)")
    parser.add_argument("--num-attention-heads", type=int, help="needed without a MODEL_NAME (not in the checkpoint)")
    parser.add_argument("--tokenizer", choices=sorted(TOKENIZER_FILES), help="tokenizer family whose files to add")
    parser.add_argument("--tokenizer-path", help="where to find tokenizer files that are not shipped "
                        "(also $GLM_VOCAB_DIR)")
    parser.add_argument("--task-mask", action="store_true", default=None,
                        help="the model was trained with [gMASK]/[sMASK] (--task-mask); set by MODEL_NAME")
    parser.add_argument("--fix-command-token", action="store_true", default=None,
                        help="ChineseSP: the corrected command ids (--fix-command-token); set by MODEL_NAME")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="cast the weights (default: as stored)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    parser.add_argument("--to-glm", nargs=2, metavar=("HF_DIR", "OUT_DIR"),
                        help="the way back: a Hugging Face folder to OUT_DIR/release/mp_rank_XX_model_states.pt")
    parser.add_argument("--model-parallel-size", type=int, default=1, help="with --to-glm: shards to write")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.to_glm:
            import_from_hf(args.to_glm[0], args.to_glm[1], mp_size=args.model_parallel_size,
                           num_attention_heads=args.num_attention_heads, overwrite=args.overwrite)
            return 0
        if not args.checkpoint:
            build_parser().error("give CHECKPOINT (and MODEL_NAME), or --to-glm HF_DIR OUT_DIR")
        output = args.output
        if output is None:
            base = args.checkpoint
            output = (os.path.join(os.path.dirname(os.path.abspath(base)), "hf") if os.path.isfile(base)
                      else os.path.normpath(base) + "_hf")
        export_to_hf(args.checkpoint, output, model_name=args.model_name,
                     num_attention_heads=args.num_attention_heads, tokenizer=args.tokenizer,
                     tokenizer_path=args.tokenizer_path, dtype=DTYPES.get(args.dtype), overwrite=args.overwrite,
                     task_mask=args.task_mask, fix_command_token=args.fix_command_token)
    except CheckpointError as err:
        print(f"convert_glm_checkpoint_to_transformers.py: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
