"""Named RNG streams and activation checkpointing that replays them (spec section 3).

Dropout inside model-parallel regions (attention probabilities) must differ between the ranks
of a group, while dropout on replicated activations must agree.  The tracker keeps a separate
generator state, ``model-parallel-rng`` seeded ``seed + 2718 + mp_rank``, and swaps it in for the
duration of :meth:`RNGStatesTracker.fork`.  It works on CPU and CUDA: states belong to the
default generator of the device type chosen when the state was added.
"""

import contextlib

import torch
import torch.utils.checkpoint as torch_checkpoint

from .initialize import get_model_parallel_rank

MODEL_PARALLEL_RNG = "model-parallel-rng"


def _device_type():
    return "cuda" if torch.cuda.is_available() else "cpu"


def _get_state(device_type):
    return torch.cuda.get_rng_state() if device_type == "cuda" else torch.get_rng_state()


def _set_state(device_type, state):
    if device_type == "cuda":
        torch.cuda.set_rng_state(state)
    else:
        torch.set_rng_state(state)


class RNGStatesTracker:
    """A set of named generator states that can be swapped in with :meth:`fork`."""

    def __init__(self):
        self.states = {}
        self.device_types = {}

    def reset(self):
        self.states = {}
        self.device_types = {}

    def get_states(self):
        return {name: state.clone() for name, state in self.states.items()}

    def set_states(self, states):
        self.states = {name: state.clone() for name, state in states.items()}

    def add(self, name, seed):
        """Create stream ``name`` from ``seed`` without disturbing the current default state."""
        if name in self.states:
            raise ValueError(f"RNG state {name} already exists")
        device_type = _device_type()
        saved = _get_state(device_type)
        if device_type == "cuda":
            torch.cuda.manual_seed(seed)
        else:
            torch.manual_seed(seed)
        self.states[name] = _get_state(device_type)
        self.device_types[name] = device_type
        _set_state(device_type, saved)

    @contextlib.contextmanager
    def fork(self, name=MODEL_PARALLEL_RNG):
        """Run the body with stream ``name`` as the default generator, then advance the stream."""
        if name not in self.states:
            # Without a seeded stream (e.g. plain inference) dropout simply uses the default RNG.
            yield
            return
        device_type = self.device_types[name]
        saved = _get_state(device_type)
        _set_state(device_type, self.states[name])
        try:
            yield
        finally:
            self.states[name] = _get_state(device_type)
            _set_state(device_type, saved)


_TRACKER = RNGStatesTracker()


def get_rng_tracker():
    """The process-wide tracker (the RNG state is process-global in torch as well)."""
    return _TRACKER


get_cuda_rng_tracker = get_rng_tracker  # the original's name


def model_parallel_manual_seed(seed, mp_rank=None):
    """Seed the default generators with ``seed`` and the model-parallel stream with
    ``seed + 2718 + mp_rank``."""
    mp_rank = get_model_parallel_rank() if mp_rank is None else mp_rank
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed(seed)
    _TRACKER.reset()
    _TRACKER.add(MODEL_PARALLEL_RNG, seed + 2718 + mp_rank)


model_parallel_cuda_manual_seed = model_parallel_manual_seed  # the original's name


def _tracker_contexts():
    """Context managers for torch's checkpoint: remember the tracker states at the forward, and
    replay them during the recompute, so dropout masks in forked regions are identical."""
    tracker = get_rng_tracker()
    saved = {}

    @contextlib.contextmanager
    def forward_ctx():
        saved["states"] = tracker.get_states()
        yield

    @contextlib.contextmanager
    def recompute_ctx():
        current = tracker.get_states()
        tracker.set_states(saved["states"])
        try:
            yield
        finally:
            tracker.set_states(current)

    return forward_ctx(), recompute_ctx()


def checkpoint(function, *args):
    """Activation checkpointing: run ``function(*args)`` without keeping activations and
    recompute it in the backward pass with every RNG state (CPU, CUDA, tracker) restored, so
    gradients are identical to an uncheckpointed run even with dropout."""
    return torch_checkpoint.checkpoint(
        function, *args, use_reentrant=False, preserve_rng_state=True, context_fn=_tracker_contexts)
