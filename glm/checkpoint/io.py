"""Reading checkpoint files with clear errors, and writing them atomically."""

import contextlib
import logging
import os
import pickle
import shutil
import tempfile
import zipfile

import torch

from .errors import CheckpointError

logger = logging.getLogger(__name__)


def load_checkpoint_file(path, map_location="cpu", allow_pickle=True):
    """``torch.load`` a checkpoint file, turning low-level failures into a readable error.

    Files are read with ``weights_only=True`` first.  Checkpoints written by the original with
    RNG states contain numpy arrays, which that mode refuses; those are re-read with full
    unpickling when ``allow_pickle`` is true (only load checkpoints you trust).
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint file {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights_only" not in str(err) and "Weights only" not in str(err):
            raise _damaged(path, err) from err
        if not allow_pickle:
            raise CheckpointError(
                f"{path} contains Python objects beyond tensors and plain containers; "
                "pass allow_pickle=True if you trust the file") from err
        logger.warning("%s holds non-tensor objects (e.g. numpy RNG states); loading it with full unpickling", path)
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise _damaged(path, err) from err
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except (EOFError, RuntimeError, zipfile.BadZipFile, OSError, ValueError, pickle.UnpicklingError) as err:
        raise _damaged(path, err) from err


def _damaged(path, err):
    size = os.path.getsize(path) if os.path.exists(path) else 0
    return CheckpointError(
        f"checkpoint file {path} ({size} bytes) looks damaged or truncated and cannot be read "
        f"({type(err).__name__}: {err}). Re-download or re-create it.")


def _atomic_write(path, write):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=directory)
    try:
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


@contextlib.contextmanager
def staged_directory(output_dir):
    """Build a whole output folder under a temporary name beside ``output_dir`` and move it into
    place only when the body finishes: a crash leaves no half-written folder under the real name.
    An existing ``output_dir`` is replaced (callers decide whether that is allowed)."""
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix="." + os.path.basename(os.path.normpath(output_dir)) + ".tmp-", dir=parent)
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
