"""Reading checkpoint files safely and with clear errors, and writing them atomically.

Reading never runs code from the file by default.  ``torch.load(weights_only=True)`` unpickles only
tensors, plain containers and the few classes named in :data:`SAFE_CHECKPOINT_GLOBALS`: the numpy
RNG state that the original (and DeepSpeed's client state) stores.  Anything else is refused with a
message; ``unsafe_unpickle=True`` (the ``--unsafe-unpickle`` flag of the entry points) reads such a
file with full unpickling, which can run arbitrary code and is meant only for files you trust.
"""

import contextlib
import glob
import logging
import os
import pickle
import re
import shutil
import sys
import tempfile
import zipfile

import numpy
import torch

from .errors import CheckpointError

logger = logging.getLogger(__name__)

UNSAFE_FLAG = "--unsafe-unpickle"

#: Module-level names a checkpoint may reference besides tensors and containers.  numpy's RNG state
#: (``np.random.get_state()``: an ndarray of uint32 plus scalars) pickles through these; numpy 1.x
#: wrote them under ``numpy.core``, numpy 2 under ``numpy._core``.
SAFE_CHECKPOINT_GLOBALS = {
    "numpy.ndarray": numpy.ndarray,
    "numpy.dtype": numpy.dtype,
    "numpy._core.multiarray._reconstruct": numpy._core.multiarray._reconstruct,
    "numpy.core.multiarray._reconstruct": numpy._core.multiarray._reconstruct,
    "numpy._core.multiarray.scalar": numpy._core.multiarray.scalar,
    "numpy.core.multiarray.scalar": numpy._core.multiarray.scalar,
}
SAFE_CHECKPOINT_GLOBALS.update({f"numpy.dtypes.{cls.__name__}": cls for cls in vars(numpy.dtypes).values()
                                if isinstance(cls, type) and issubclass(cls, numpy.dtype)})

#: Classes inside DeepSpeed's ZeRO optimizer shards.  DeepSpeed reads those files itself (with full
#: unpickling), so they are only checked by name before it does: :func:`check_checkpoint_globals`.
DEEPSPEED_SHARD_GLOBALS = frozenset({
    "deepspeed.runtime.fp16.loss_scaler.LossScaler",
    "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
    "deepspeed.runtime.zero.config.ZeroStageEnum",
    "deepspeed.utils.tensor_fragment.fragment_address",
})


def _safe_globals():
    return [(obj, name) for name, obj in SAFE_CHECKPOINT_GLOBALS.items()]


def _refused(path, err):
    return CheckpointError(
        f"{path} holds Python objects that a weights-only load refuses ({err}). Unpickling them could run "
        f"code stored in the file. If you trust where the file came from, pass {UNSAFE_FLAG} to read it with "
        "full unpickling")


def is_mappable(path):
    """Whether ``load_checkpoint_file(path, mmap=True)`` really maps ``path`` (torch's zip format)."""
    return zipfile.is_zipfile(path)


def load_checkpoint_file(path, map_location="cpu", unsafe_unpickle=False, mmap=False):
    """``torch.load`` a checkpoint file without running code from it, turning low-level failures
    into a readable error (see the module docstring).

    ``mmap``: map the file instead of reading it; tensors then live in the page cache and cost
    memory only once touched (:func:`release_pages` gives pages back).  Files in torch's old
    (pre-1.6, non-zip) format cannot be mapped and are read as before."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint file {path} does not exist")
    if mmap and not is_mappable(path):
        mmap = False
    extra = {"mmap": True} if mmap else {}
    if unsafe_unpickle:
        logger.warning("%s: reading with full unpickling (%s); this can run code stored in the file",
                       path, UNSAFE_FLAG)
        try:
            return torch.load(path, map_location=map_location, weights_only=False, **extra)
        except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError, pickle.UnpicklingError) as err:
            raise _damaged(path, err) from err
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True, **extra)
    except pickle.UnpicklingError as err:
        # torch names a refused class as "... GLOBAL module.name ..."; anything else is a broken file.
        refused = re.search(r"GLOBAL ([\w.]+)", str(err))
        if refused:
            raise _refused(path, f"it imports {refused.group(1)}") from err
        raise _damaged(path, err) from err
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise _damaged(path, err) from err


_PAGE_SIZE = 4096 if not hasattr(os, "sysconf") else os.sysconf("SC_PAGE_SIZE")
_MADV_DONTNEED = 4  # Linux


def _libc():
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return libc


_LIBC = None


def release_pages(tensor):
    """Give back the memory of the whole pages under ``tensor``, a tensor of a checkpoint read with
    ``mmap=True`` that nothing will read again soon: the pages are dropped from this process
    (``madvise(MADV_DONTNEED)``; a later read fetches them from the file again).  Without this, every
    page of a mapped checkpoint that was touched stays resident until the whole file is unmapped,
    and loading would hold the checkpoint and the model at once.  Never call it on a tensor that
    owns ordinary memory: those pages would read as zeros.  A no-op off Linux."""
    global _LIBC
    if not sys.platform.startswith("linux") or tensor.device.type != "cpu" or tensor.numel() == 0:
        return
    if _LIBC is None:
        _LIBC = _libc() or False
    if not _LIBC:
        return
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    first = -(-start // _PAGE_SIZE) * _PAGE_SIZE  # only pages that lie wholly inside the tensor
    last = end // _PAGE_SIZE * _PAGE_SIZE
    if last > first:
        _LIBC.madvise(first, last - first, _MADV_DONTNEED)


def check_checkpoint_globals(paths, unsafe_unpickle=False, allowed=DEEPSPEED_SHARD_GLOBALS):
    """Refuse files that another library (DeepSpeed) is about to unpickle in full when they name
    globals beyond :data:`SAFE_CHECKPOINT_GLOBALS` and ``allowed``.  Reads the pickle's opcodes only;
    nothing in the file runs."""
    if unsafe_unpickle:
        return
    for path in paths:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception as err:  # not a zip checkpoint: torch's reader says why
            raise _damaged(path, err) from err
        bad = sorted(set(names) - set(SAFE_CHECKPOINT_GLOBALS) - set(allowed))
        if bad:
            raise _refused(path, f"it imports {', '.join(bad)}")


def _damaged(path, err):
    size = os.path.getsize(path) if os.path.exists(path) else 0
    return CheckpointError(
        f"checkpoint file {path} ({size} bytes) looks damaged or truncated and cannot be read "
        f"({type(err).__name__}: {err}). Re-download or re-create it.")


TEMP_PREFIX = ".tmp-"


def _atomic_write(path, write):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + os.path.basename(path) + "-", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes the file private; give it an ordinary file's mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj, path):
    """``torch.save`` to a temporary file in the same folder, then rename: a crash never leaves a
    half-written file under the real name."""
    _atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path, text):
    """Write a small text file (a tracker) atomically."""
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def remove_interrupted_writes(directory):
    """Delete the temporary files that writes killed mid-way (SIGKILL, power loss) left anywhere
    under ``directory``; returns their paths.  Call it only while no other process writes there
    (a training run does so under its run lock)."""
    leftovers = glob.glob(os.path.join(glob.escape(directory), "**", TEMP_PREFIX + "*"), recursive=True)
    for path in leftovers:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return leftovers


def path_relation(path, other):
    """How the folder ``path`` stands to ``other`` once links are resolved: ``"is"``, ``"contains"``,
    ``"lies inside"`` or ``None`` (apart)."""
    path, other = (os.path.realpath(os.path.abspath(p)) for p in (path, other))
    if path == other:
        return "is"
    if other.startswith(path + os.sep):
        return "contains"
    if path.startswith(other + os.sep):
        return "lies inside"
    return None


def check_output_directory(output_dir, inputs, overwrite=False, allow_empty=False):
    """Refuse an output folder that would destroy data: one that is, contains or lies inside one of
    ``inputs`` (whatever ``overwrite`` says), one that is a file, or an existing one without
    ``overwrite``."""
    for source in inputs:
        relation = path_relation(output_dir, source)
        if relation is None:
            continue
        raise CheckpointError(
            f"output directory {output_dir} {relation} the input {source}; writing it would replace or mix with "
            "the input (other checkpoints, optimizer state and logs there would be lost). Choose an output "
            "folder outside the input")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise CheckpointError(f"output path {output_dir} is a file, not a folder; choose another --output")
    if os.path.exists(output_dir) and not overwrite and not (allow_empty and not os.listdir(output_dir)):
        raise CheckpointError(f"output directory {output_dir} already exists; remove it or pass --overwrite")


@contextlib.contextmanager
def staged_directory(output_dir, inputs):
    """Build a whole output folder under a temporary name beside ``output_dir`` and move it into
    place only when the body finishes: a crash leaves no half-written folder under the real name.
    An existing ``output_dir`` is replaced (callers decide whether that is allowed with
    :func:`check_output_directory`); one that is, holds or lies inside an input never is."""
    check_output_directory(output_dir, inputs, overwrite=True)
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.normpath(output_dir)) + TEMP_PREFIX,
                               dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it private; give it a normal folder's mode
    try:
        yield staging
        if os.path.exists(output_dir):
            shutil.rmtree(output_dir)
        os.replace(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
