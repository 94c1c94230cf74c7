"""Checkpoints in the original GLM on-disk layout (spec section 4).

``<dir>/latest_checkpointed_iteration.txt`` (or DeepSpeed's ``latest``) names a tag;
``<dir>/<tag>/mp_rank_XX_model_states.pt`` holds ``{'module': state_dict, 'iteration': ...}``
for model-parallel rank XX.  A folder that directly holds ``mp_rank_*`` files (how the released
archives look) works too.

Words: a checkpoint's *layout* is where its files live (:mod:`.layout`); a tensor's *partition* is how it
is split across model-parallel ranks (``(dim, stride)``, :func:`partition_map`, :mod:`.shape_inference`).

Owns every read and write of checkpoint files (training, finetuning and the tools all come here).  Sits
above ``glm.model`` and the tokenizers (the Hugging Face export writes tokenizer files) and below
``glm.training``: it must not import training, generation, data pipelines, tasks or the flag parser;
callers pass paths and options as values.
"""

from .errors import CheckpointError
from .layout import (
    TRACKER_FILENAME,
    DEEPSPEED_TRACKER_FILENAME,
    model_file_name,
    resolve_checkpoint,
    ResolvedCheckpoint,
)
from .io import (UNSAFE_FLAG, atomic_torch_save, atomic_write_text, check_checkpoint_globals, check_output_directory,
                 load_checkpoint_file, remove_interrupted_writes)
from .reshard import partition_map, merge_state_dicts, split_state_dict, reshard_state_dicts
from .loading import load_model_state, load_pretrained_weights, read_model_state_dict
from .saving import save_model_checkpoint
