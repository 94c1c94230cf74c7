"""One job under every launcher, and a killed rank ends the job.

The real launcher scripts run here with 2 CPU ranks (gloo) and the tiny model of
``tests/training/test_pretrain_e2e.py``: ``scripts/pretrain_torchrun.sh``, ``scripts/ds_pretrain_nvidia.sh``
with a localhost hostfile (its ssh reachability check answered by a stand-in ``ssh``),
``scripts/pretrain_slurm.sbatch`` with stand-in ``srun``/``scontrol`` that start 2 "nodes" of one rank on
this machine as SLURM would, a direct ``srun -n 2``, and Open MPI's variables.
Every one of them must form one 2-rank job and log the same losses as ``torchrun --nproc-per-node 2``.
Then a rank is SIGKILLed mid-run under torchrun, the DeepSpeed launcher and the SLURM stand-in: the job
must end, non-zero, within 60 s.
"""

import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glm.launch import LaunchError, first_slurm_host, rendezvous, resolve_launch
from tests.distributed.launcher import free_port
from tests.training.test_pretrain_e2e import ROOT, corpus, env, flags, losses  # noqa: F401

STANDIN = Path(__file__).parent / "standins"  # srun, scontrol and ssh that run everything on this machine
BIN = str(Path(sys.executable).parent)
ITERS = 6


def _flags(corpus, tmp_path, save, *extra):  # noqa: F811
    return flags(corpus, tmp_path.parent / "cache", "--save", str(save), "--batch-size", "1",
                 "--train-iters", str(ITERS), "--save-interval", "1000", *extra)


def _config(tmp_path, argv):
    """A config file in the shape of config/*.sh, for the launcher scripts."""
    path = tmp_path / "tiny.sh"
    path.write_text('#! /bin/bash\ngpt_options="' + " ".join(argv) + '"\n')
    return str(path)


def _env(**extra):
    base = env()
    base["PATH"] = os.pathsep.join([str(STANDIN), BIN, base.get("PATH", "")])
    base.update(DS_ACCELERATOR="cpu", NCCL_DEBUG="warn")
    base.update(extra)
    return base


def _job_losses(save):
    found = losses(save)
    assert sorted(found) == list(range(1, ITERS + 1)), sorted(found)
    return [found[i] for i in range(1, ITERS + 1)]


@pytest.fixture(scope="module")
def torchrun_losses(corpus, tmp_path_factory):  # noqa: F811
    tmp_path = tmp_path_factory.mktemp("torchrun")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             str(ROOT / "pretrain_glm.py"), *_flags(corpus, tmp_path, tmp_path / "s")],
                            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return _job_losses(tmp_path / "s")


def _direct_ranks(corpus, tmp_path, rank_env):  # noqa: F811
    """Two processes started with only a launcher's variables (no torchrun)."""
    argv = [sys.executable, str(ROOT / "pretrain_glm.py"), *_flags(corpus, tmp_path, tmp_path / "s")]
    procs = [subprocess.Popen(argv, cwd=ROOT, env=_env(**rank_env(rank)), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    return outputs


def test_direct_srun_forms_one_job(corpus, tmp_path, torchrun_losses):  # noqa: F811
    """``srun -n 2 python pretrain_glm.py``: only SLURM_PROCID/NTASKS/LOCALID and the master address."""
    port = str(free_port())
    argv = [sys.executable, str(ROOT / "pretrain_glm.py"), *_flags(corpus, tmp_path, tmp_path / "s")]
    result = subprocess.run([str(STANDIN / "srun"), "-n", "2", *argv], cwd=ROOT, capture_output=True, text=True,
                            env=_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, SLURM_JOB_NODELIST="localhost"),
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(glob.glob(f"{tmp_path}/s/run-*")) == 1  # one job, one run folder
    assert _job_losses(tmp_path / "s") == torchrun_losses


def test_open_mpi_variables_form_one_job(corpus, tmp_path, torchrun_losses):  # noqa: F811
    port = str(free_port())
    _direct_ranks(corpus, tmp_path, lambda rank: dict(
        OMPI_COMM_WORLD_RANK=str(rank), OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_LOCAL_RANK=str(rank),
        OMPI_COMM_WORLD_LOCAL_SIZE="2", MASTER_PORT=port))
    assert _job_losses(tmp_path / "s") == torchrun_losses


def test_torchrun_script(corpus, tmp_path, torchrun_losses):  # noqa: F811
    config = _config(tmp_path, _flags(corpus, tmp_path, tmp_path / "s"))
    result = subprocess.run(["bash", "scripts/pretrain_torchrun.sh", config], cwd=ROOT, capture_output=True, text=True,
                            env=_env(NPROC_PER_NODE="2", MASTER_PORT=str(free_port())), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert _job_losses(tmp_path / "s") == torchrun_losses


def test_slurm_sbatch_two_nodes(corpus, tmp_path, torchrun_losses):  # noqa: F811
    """``sbatch --nodes 2 scripts/pretrain_slurm.sbatch``: srun starts one torchrun a node."""
    config = _config(tmp_path, _flags(corpus, tmp_path, tmp_path / "s"))
    result = subprocess.run(["bash", "scripts/pretrain_slurm.sbatch", config], cwd=ROOT, capture_output=True,
                            text=True, timeout=300,
                            env=_env(SLURM_JOB_NODELIST="127.0.0.1,127.0.0.1", SLURM_NNODES="2", SLURM_JOB_ID="77",
                                     NPROC_PER_NODE="1", MASTER_PORT=str(free_port())))
    assert result.returncode == 0, result.stderr[-3000:]
    assert _job_losses(tmp_path / "s") == torchrun_losses


@pytest.mark.slow
def test_deepspeed_launcher_script_with_a_hostfile(corpus, tmp_path, torchrun_losses):  # noqa: F811
    pytest.importorskip("deepspeed")
    hostfile = tmp_path / "hostfile"
    hostfile.write_text("localhost slots=2\n")
    config = _config(tmp_path, _flags(corpus, tmp_path, tmp_path / "s"))
    result = subprocess.run(["bash", str(ROOT / "scripts" / "ds_pretrain_nvidia.sh"), config], cwd=tmp_path,
                            capture_output=True,
                            text=True, timeout=300,
                            env=_env(HOST_FILE_PATH=str(hostfile), NUM_GPUS_PER_WORKER="2",
                                     MASTER_PORT=str(free_port())))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert _job_losses(tmp_path / "s") == torchrun_losses


# -- a killed rank ends the job -----------------------------------------------------------------


def _rank_pid(marker, rank):
    """The pid of the pretrain_glm.py process of ``rank`` whose command line holds ``marker``."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(b"pretrain_glm.py" in part for part in cmdline) and marker.encode() in b" ".join(cmdline):
            ranks = [v for v in environ if v.startswith((b"RANK=", b"SLURM_PROCID=", b"LOCAL_RANK="))]
            if f"RANK={rank}".encode() in ranks or f"SLURM_PROCID={rank}".encode() in ranks:
                return int(pid)
    return None


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "deepspeed", "slurm"])
def test_a_killed_rank_ends_the_job_within_60_seconds(launcher, corpus, tmp_path):  # noqa: F811
    if launcher == "deepspeed":
        pytest.importorskip("deepspeed")
    save = tmp_path / "s"
    argv = flags(corpus, tmp_path.parent / "cache", "--save", str(save), "--batch-size", "1", "--train-iters",
                 "100000", "--save-interval", "100000", "--log-interval", "1")
    script = str(ROOT / "pretrain_glm.py")
    port = str(free_port())
    if launcher == "torchrun":
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", script, *argv]
    elif launcher == "deepspeed":
        command = [shutil.which("deepspeed", path=BIN) or os.path.join(BIN, "deepspeed"), "--num_gpus", "2",
                   "--master_port", port, script, *argv]
    else:
        command = [str(STANDIN / "srun"), "-n", "2", "--kill-on-bad-exit=1", sys.executable, script, *argv]
    job = subprocess.Popen(command, cwd=ROOT, env=_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                                                       SLURM_JOB_NODELIST="localhost"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not losses(save):  # both ranks are training
            assert job.poll() is None, job.stderr.read()[-3000:]
            time.sleep(0.1)
        victim = _rank_pid(str(save), 1)
        assert victim is not None, "rank 1 not found"
        os.kill(victim, signal.SIGKILL)
        killed = time.time()
        code = job.wait(timeout=90)
        took = time.time() - killed
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()
    assert code != 0
    assert took < 60, f"{launcher}: the job took {took:.1f} s to end after rank 1 was killed"
    print(f"{launcher}: job ended {took:.1f} s after rank 1 was killed (exit status {code})")


# -- resolution ---------------------------------------------------------------------------------


@pytest.mark.parametrize("nodelist, first", [("gpu[07-09,12],cpu1", "gpu07"), ("node1,node2", "node1"),
                                             ("a-b[3]", "a-b3"), ("localhost", "localhost")])
def test_first_slurm_host(nodelist, first):
    assert first_slurm_host(nodelist) == first


def test_rendezvous_per_launcher():
    slurm = {"SLURM_PROCID": "3", "SLURM_NTASKS": "8", "SLURM_LOCALID": "3", "SLURM_STEP_NODELIST": "gpu[01-02]",
             "SLURM_JOB_ID": "123456"}
    place = resolve_launch(slurm)
    assert (place.rank, place.world_size, place.local_rank, place.source) == (3, 8, 3, "slurm")
    assert rendezvous(place, slurm) == ("gpu01", 20000 + 123456 % 20000)
    mpi = {"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1",
           "OMPI_COMM_WORLD_LOCAL_SIZE": "4"}
    assert rendezvous(resolve_launch(mpi), mpi) == ("127.0.0.1", 29500)
    with pytest.raises(LaunchError, match="MASTER_ADDR"):
        several_nodes = dict(mpi, OMPI_COMM_WORLD_LOCAL_SIZE="2")
        rendezvous(resolve_launch(several_nodes), several_nodes)
    torchrun = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "1234"}
    srun_torchrun = dict(slurm, **torchrun)  # srun + torchrun: torchrun's variables describe the process
    assert resolve_launch(srun_torchrun).source == "env"
    assert rendezvous(resolve_launch(srun_torchrun), srun_torchrun) == ("h", 1234)
