"""Shared fixtures: where the reference vectors live, and clean global state between tests."""

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def shared_dir():
    """``../shared`` beside the checkout (CI has it), or ``$GLM_SHARED_DIR``."""
    env = os.environ.get("GLM_SHARED_DIR")
    return Path(env) if env else ROOT.parent / "shared"


@pytest.fixture(scope="session")
def reference_dir():
    path = shared_dir() / "glm_reference"
    if not path.is_dir():
        pytest.skip(f"reference vectors not found at {path} (set GLM_SHARED_DIR)")
    return path


LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Tests must not leak default dtype, RNG, process groups, model-parallel groups or launcher
    environment variables (which would make a later subprocess wait for ranks that never come)."""
    dtype = torch.get_default_dtype()
    rng = torch.get_rng_state()
    environment = {k: os.environ.get(k) for k in LAUNCHER_VARIABLES}
    yield
    torch.set_default_dtype(dtype)
    torch.set_rng_state(rng)
    from glm import mpu
    mpu.destroy_model_parallel()
    mpu.get_rng_tracker().reset()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for key, value in environment.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: end-to-end tests that take tens of seconds (still run in CI)")
    # CI always has ../shared: without it every reference test would skip and the run would look green.
    if os.environ.get("CI") == "true" and not (shared_dir() / "glm_reference").is_dir():
        raise pytest.UsageError(f"CI=true but the reference vectors are missing at {shared_dir() / 'glm_reference'} "
                                "(set GLM_SHARED_DIR); refusing to skip every reference test")
