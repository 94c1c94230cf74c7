"""Run a function on N local processes joined by a gloo process group (CPU only)."""

import os
import socket
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def free_port():
    """A port free right now, for launchers that only take a port (torchrun, deepspeed); it can be
    taken by another process before the launcher binds it, so prefer run_distributed's file store."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, world_size, store_file, fn, args):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store_file}", rank=rank, world_size=world_size)
    try:
        fn(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def run_distributed(fn, world_size, *args):
    """Spawn ``world_size`` processes running ``fn(rank, world_size, *args)``; an exception in
    any of them fails the caller with that process's traceback."""
    # The ranks meet through a file, not a port: a port found free and released can be taken by another
    # test (pytest-xdist runs several) before rank 0 binds it again.
    with tempfile.TemporaryDirectory(prefix="glm-gloo-") as folder:
        mp.spawn(_entry, args=(world_size, os.path.join(folder, "store"), fn, args), nprocs=world_size, join=True)
