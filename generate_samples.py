"""Fill [MASK] / [sMASK] / [gMASK] blanks with a GLM model (the original's generate_samples.py).

    python generate_samples.py --block-lm ... --load-pretrained CKPT                 # interactive (stdin)
    python generate_samples.py --block-lm ... --load-pretrained CKPT --input-file contexts.txt \
        --output-file results.jsonl                                                  # batch
    bash scripts/generate_block.sh config_tasks/model_blocklm_large.sh               # released models

Every original flag works; docs/generation.md describes the decoding options and the output.
"""

import sys

from glm.generation.cli import main

if __name__ == "__main__":
    sys.exit(main())
