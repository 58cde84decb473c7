"""Test-wide settings: no hub access, deterministic and quiet."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402
import torch  # noqa: E402

# shared checks (mmpref.testing.checks) report their operands on failure, like assertions in test files
pytest.register_assert_rewrite("mmpref.testing.checks")

# Tiny models run faster on one thread than on two contending ones (measured 146 s -> 21 s on a busy box).
torch.set_num_threads(1)


@pytest.fixture
def fresh_accelerate_state():
    """Reset accelerate's process-wide state after a test that built an Accelerator, so the next one
    configures its own (device, mixed precision); test modules that train opt in through `pytestmark`."""
    yield
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


@pytest.fixture(scope="module")
def energy_scorer():
    """An audio scorer with continuous scores on tiny random models (test_generate_support.early_energy_scorer),
    registered for one test module."""
    from test_generate_support import early_energy_scorer

    with early_energy_scorer("test_audio_early_energy") as name:
        yield name
