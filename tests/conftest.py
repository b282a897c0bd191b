import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

os.environ.setdefault("FEDBENCH_WANDB", "0")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the tests sign and verify with a key of their own, never the user's (~/.config/fedbench/key);
# subprocesses started by the tests inherit it
_KEY_DIR = tempfile.mkdtemp(prefix="fedbench-test-key-")
atexit.register(shutil.rmtree, _KEY_DIR, True)
os.environ["FEDBENCH_KEY_FILE"] = os.path.join(_KEY_DIR, "key")
sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny_cfg(tmp_path):
    from fixtures import tiny_config

    return lambda method="fedavg", rounds=2: tiny_config(tmp_path, method, rounds)


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test, restored after it: small matrix products (the matcher's) are
    fastest on one thread, and far slower on a shared machine's contended cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
