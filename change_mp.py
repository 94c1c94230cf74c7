"""Re-cut a GLM checkpoint for another model-parallel size.

    python change_mp.py CHECKPOINT_DIR TARGET_MP [--num-attention-heads N] [--overwrite]
    python change_mp.py ZERO_SAVE_DIR TARGET_MP --consolidate-zero

writes ``CHECKPOINT_DIR_MP<TARGET_MP>`` in the original layout; see docs/checkpoints.md.
"""

import sys

from glm.checkpoint.change_mp import main

if __name__ == "__main__":
    sys.exit(main())
