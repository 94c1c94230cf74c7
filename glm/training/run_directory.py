"""A training run's save folder: a name no other run gets, a lock held for the run's life, and the
leftovers of a killed save cleared before the run writes there.

Global rank 0 decides and creates the folder and takes the lock; the other ranks receive the
folder's path (or the reason it could not be had) by broadcast, so every rank of a job agrees and a
refusal stops them all.  The lock is an ``fcntl.flock`` on ``<run>/.lock``: the kernel drops it when
the holding process ends in any way (SIGKILL and crashes included), so a crashed run never leaves a
stale lock behind, and a second run on the same folder is refused while the first one lives.
"""

import datetime
import errno
import fcntl
import json
import os
import socket
import time

import torch.distributed as dist

from ..checkpoint import remove_interrupted_writes

LOCK_NAME = ".lock"


class RunDirectoryError(ValueError):
    """The save folder cannot be used; the message names it and says what to do."""


def _unwritable(path, err):
    reason = {errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
              errno.EPERM: "permission denied", errno.ENOTDIR: "a part of the path is a file, not a folder",
              errno.EEXIST: "a file of that name exists", errno.ENOSPC: "no space left on the device"}
    cause = reason.get(err.errno, err.strerror or str(err))
    return RunDirectoryError(f"cannot use {path} as the run's save folder: {cause} ({type(err).__name__}). "
                             "Pass a writable folder to --save")


def _create_unique(root, name):
    """Create ``root/name`` (or ``root/name-2``, ``-3``... when taken) exclusively; returns its path."""
    os.makedirs(root, exist_ok=True)
    for attempt in range(1, 1000):
        path = os.path.join(root, name if attempt == 1 else f"{name}-{attempt}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise RunDirectoryError(f"{root} already holds 999 folders named {name}*; choose another --experiment-name")


class RunLock:
    """An exclusive lock on a run folder, held until :meth:`release` or the process ends."""

    def __init__(self, directory):
        self.path = os.path.join(directory, LOCK_NAME)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder()
            os.close(self._fd)
            raise RunDirectoryError(
                f"another run is writing to {directory} ({holder}); wait for it to finish or stop it, or save this "
                "run elsewhere (--save, --experiment-name)") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                       "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        os.fsync(self._fd)

    def _read_holder(self):
        try:
            with open(self.path, encoding="utf-8") as f:
                info = json.load(f)
            return f"pid {info['pid']} on {info['host']}, started {info['started']}"
        except (OSError, ValueError, KeyError):
            return "holder unknown"

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _prepare_on_rank_0(save_root, experiment_name, resume_into, log, write_files):
    """Create (or reuse, when resuming into it) the run folder, lock it, clear interrupted writes and
    write the run's first files.  Returns ``(path, lock)``."""
    try:
        if resume_into:
            path = os.path.join(save_root, experiment_name)
            os.makedirs(path, exist_ok=True)
        else:
            stamp = datetime.datetime.now().strftime("-%m-%d-%H-%M-%S")
            path = _create_unique(save_root, experiment_name + stamp)
        lock = RunLock(path)
    except OSError as err:
        raise _unwritable(save_root, err) from err
    try:
        leftovers = remove_interrupted_writes(path)
        if leftovers:
            log(f"removed {len(leftovers)} temporary file(s) left by an interrupted save: "
                + ", ".join(os.path.relpath(p, path) for p in leftovers))
        if write_files is not None:
            write_files(path)
    except OSError as err:
        lock.release()
        raise _unwritable(path, err) from err
    return path, lock


def prepare_run_directory(save_root, experiment_name, resume_into=False, log=print, write_files=None):
    """The run's save folder under ``save_root``, created and locked; returns ``(path, lock)`` where
    ``lock`` is a :class:`RunLock` on global rank 0 and ``None`` elsewhere (keep it for the run's life).

    A new run gets ``<experiment_name>-MM-DD-HH-MM-SS`` (with ``-2``, ``-3``... when two runs start in
    the same second); ``resume_into`` reuses ``<save_root>/<experiment_name>`` (the original's
    "resume into the --load folder").  ``write_files(path)`` writes the run's first files (its
    configuration) on rank 0 under the lock.  Raises :class:`RunDirectoryError` on every rank when the folder
    cannot be had."""
    rank0 = not dist.is_initialized() or dist.get_rank() == 0
    path, lock, error = None, None, None
    if rank0:
        try:
            path, lock = _prepare_on_rank_0(save_root, experiment_name, resume_into, log, write_files)
        except RunDirectoryError as err:
            error = str(err)
    if dist.is_initialized() and dist.get_world_size() > 1:
        message = [path, error]
        dist.broadcast_object_list(message, src=0)
        path, error = message
    if error:
        raise RunDirectoryError(error)
    return path, lock
