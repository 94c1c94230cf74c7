"""One call that seeds every random number generator a run uses."""

import random

import numpy as np
import torch

from .. import mpu


def set_random_seed(seed):
    """Seed Python, numpy and torch (CPU and CUDA) with ``seed`` and the model-parallel RNG stream
    with ``seed + 2718 + mp_rank``, as the original's ``set_random_seed``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    mpu.model_parallel_manual_seed(seed)


def _numpy_state_to_plain(state):
    # Plain types (a tensor instead of an ndarray) keep checkpoints loadable with weights_only=True.
    name, keys, pos, has_gauss, cached = state
    return (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))


def _numpy_state_from_plain(state):
    name, keys, pos, has_gauss, cached = state
    if torch.is_tensor(keys):
        keys = keys.numpy().astype(np.uint32)
    return (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)


def get_rng_state():
    """Every RNG state of this process, in the original checkpoint's key names."""
    state = {
        "random_rng_state": random.getstate(),
        "np_rng_state": _numpy_state_to_plain(np.random.get_state()),
        "torch_rng_state": torch.get_rng_state(),
        "rng_tracker_states": mpu.get_rng_tracker().get_states(),
    }
    state["cuda_rng_state"] = torch.cuda.get_rng_state() if torch.cuda.is_available() else None
    return state


def set_rng_state(state):
    """Restore what :func:`get_rng_state` returned."""
    random.setstate(state["random_rng_state"])
    np.random.set_state(_numpy_state_from_plain(state["np_rng_state"]))
    torch.set_rng_state(state["torch_rng_state"])
    if state.get("cuda_rng_state") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_rng_state"])
    mpu.get_rng_tracker().set_states(state["rng_tracker_states"])
