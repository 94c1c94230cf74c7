"""Re-cut a GLM checkpoint for another model-parallel size.

    python change_mp.py CHECKPOINT_DIR TARGET_MP [--num-attention-heads N] [--overwrite]
    python change_mp.py ZERO_SAVE_DIR TARGET_MP --consolidate-zero

writes ``CHECKPOINT_DIR_MP<TARGET_MP>`` in the original checkpoint file layout; see docs/checkpoints.md.
This program owns the command line only; the work is :func:`glm.checkpoint.change_mp.change_model_parallel`
and :func:`glm.checkpoint.zero.consolidate_zero_checkpoint`, which take explicit values.
"""

import argparse
import os
import sys
import tempfile

from glm.checkpoint.change_mp import change_model_parallel, default_output_dir
from glm.checkpoint.errors import CheckpointError
from glm.checkpoint.io import UNSAFE_FLAG, check_output_directory
from glm.checkpoint.zero import consolidate_zero_checkpoint


def build_parser():
    parser = argparse.ArgumentParser(
        prog="change_mp.py",
        description="Re-cut a GLM checkpoint for another model-parallel size; writes CHECKPOINT_DIR_MP<TARGET_MP>.")
    parser.add_argument("checkpoint_dir", help="save directory (with latest_checkpointed_iteration.txt) or a folder "
                        "holding mp_rank_XX_model_states.pt files")
    parser.add_argument("target_mp", type=int, help="target model-parallel size")
    parser.add_argument("--num-attention-heads", type=int, default=None,
                        help="number of attention heads, to check that it divides the target size "
                        "(not stored in the checkpoint except under --transformer-xl)")
    parser.add_argument("--output", default=None, help="output directory (default CHECKPOINT_DIR_MP<TARGET_MP>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    parser.add_argument("--consolidate-zero", action="store_true",
                        help="CHECKPOINT_DIR is a DeepSpeed ZeRO save directory: write its fp32 weights as a "
                        "module-only checkpoint in the original layout (then re-cut to TARGET_MP)")
    parser.add_argument("--tag", default=None, help="with --consolidate-zero: the tag to read (default: 'latest')")
    parser.add_argument(UNSAFE_FLAG, action="store_true",
                        help="read checkpoint files with full unpickling, which can run code stored in them; only for "
                        "files you trust (by default only tensors, containers and numpy RNG states are read)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.consolidate_zero:
            output = args.output or default_output_dir(args.checkpoint_dir, args.target_mp)
            check_output_directory(output, [args.checkpoint_dir], args.overwrite)
            if args.target_mp == 1:
                consolidate_zero_checkpoint(args.checkpoint_dir, output, tag=args.tag, overwrite=args.overwrite,
                                            unsafe_unpickle=args.unsafe_unpickle)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    fp32 = os.path.join(tmp, "fp32")
                    consolidate_zero_checkpoint(args.checkpoint_dir, fp32, tag=args.tag,
                                                unsafe_unpickle=args.unsafe_unpickle)
                    change_model_parallel(fp32, args.target_mp, output, args.overwrite, args.num_attention_heads,
                                          unsafe_unpickle=args.unsafe_unpickle, protect=[args.checkpoint_dir])
            print(f"change_mp: consolidated fp32 weights written to {output}")
        else:
            change_model_parallel(args.checkpoint_dir, args.target_mp, args.output, args.overwrite,
                                  args.num_attention_heads, unsafe_unpickle=args.unsafe_unpickle)
    except CheckpointError as err:
        print(f"change_mp.py: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
