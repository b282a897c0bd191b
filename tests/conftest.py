import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("FEDBENCH_WANDB", "0")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the tests sign with this user's key (~/.config/fedbench/key or $FEDBENCH_KEY_FILE), as fedbench
# does: the caches they share with the user's runs (the image bank) stay valid for both; a test
# that needs another key points FEDBENCH_KEY_FILE elsewhere for its own duration
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


@pytest.fixture(scope="session")
def committed_results(tmp_path_factory):
    """A copy of results/ as committed in git's HEAD (never the working tree's own runs)."""
    from committed import copy_committed_tree

    return copy_committed_tree(tmp_path_factory.mktemp("committed"))


@pytest.fixture
def committed_docs(committed_results, monkeypatch):
    """benchmarks/doc_blocks.py's generators reading the committed results."""
    from benchmarks import doc_blocks

    monkeypatch.setattr(doc_blocks, "RESULTS", committed_results)
    return committed_results
