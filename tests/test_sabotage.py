"""The tests can fail: run some of the suite's own tests with fedbench broken on purpose (pytest
plugins in tests/sabotage/) and expect failures. A server that ignores its clients and a board that
loses a method's rows must both be caught."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
pytestmark = pytest.mark.slow


def _pytest(plugin: str, *selection: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        f"sabotage.{plugin}",
        "-p",
        "no:cacheprovider",
        "-q",
        "-x",
        *selection,
    ]
    return subprocess.run(cmd, cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=900)


def test_a_server_that_ignores_its_clients_fails_the_method_tests():
    out = _pytest("noop_fedavg", "tests/test_method_properties.py", "-k", "fedavg and not pt and not mvp")
    assert out.returncode == 1, out.stdout[-2000:]
    assert "the global state ignored its clients" in out.stdout


def test_a_board_without_fedavg_rows_fails_the_board_tests():
    out = _pytest("board_drops_fedavg", "tests/test_cli.py", "-k", "run_then_leaderboard")
    assert out.returncode == 1, out.stdout[-2000:]


def test_a_loss_changed_without_a_version_bump_fails_the_fingerprints():
    out = _pytest("prox_loss_doubled", "tests/test_fingerprints.py", "-k", "fedprox and not pt")
    assert out.returncode == 1, out.stdout[-2000:]
    assert "bump its MethodSpec.version" in out.stdout
