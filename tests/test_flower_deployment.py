"""Flower's deployment engine, end to end on 127.0.0.1: a SuperLink and two SuperNodes started with
Flower's own commands (insecure mode, free ports), one fedbench method run with ``flwr run`` for 2
rounds, and the aggregated global state compared with fedbench's own loop on the same updates, bit
for bit (each client fit is a pure function of its task; both sides use one torch thread). Every
process the test starts, and every process those start (SuperExec, ServerApp, ClientApps), is
stopped afterwards, also when the test fails.

The ServerApp and ClientApps run in processes Flower starts, which know nothing of the test's
``tiny`` dataset and backbone: the Flower app here is a folder whose module registers them before
making fedbench's apps (a real deployment names ``fedbench.flower.apps`` instead, see
docs/flower.md). Cost: about a minute on 2 cores, most of it the five ClientApp processes (one per
message under Flower's subprocess isolation) importing torch.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("flwr")

import torch  # noqa: E402
from processes import HANG_GUARD_S, HAVE_PROC, descendants, running, stop_all  # noqa: E402

TESTS = Path(__file__).parent
BIN = Path(sys.executable).parent  # flower-superlink, flower-supernode, flwr, flower-superexec, flwr-*app
ROUNDS = 2
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_PROC, reason="walks /proc to stop what Flower starts (Linux)"),
]

APP = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "fedbench-tiny"
version = "0.1.0"
description = "fedbench's tiny test fixture in a Flower deployment"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "fedbench"

[tool.flwr.app.components]
serverapp = "tinyapp:serverapp"
clientapp = "tinyapp:clientapp"

[tool.flwr.app.config]
config = "{config}"
"""
MODULE = f"""import sys

sys.path.insert(0, {str(TESTS)!r})
from fixtures import register_tiny  # noqa: E402

register_tiny()
from fedbench.flower import client_app, server_app  # noqa: E402

serverapp = server_app()
clientapp = client_app()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited with {proc.returncode} before listening: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"nothing listens on {port} after {timeout:g} s: {log.read_text()[-2000:]}")


def _config(tmp_path):
    from fixtures import tiny_config

    cfg = tiny_config(tmp_path, "fedavg", rounds=ROUNDS)
    cfg.partition.n_clients = 2
    cfg.train.threads = 1
    cfg.tracking.wandb = False
    return cfg


def _loop(cfg):
    """fedbench's own loop on the same config: ROUNDS rounds of the Federation, in this process."""
    from fedbench.federation.resolve import resolve
    from fedbench.federation.rounds import Federation
    from fedbench.federation.setup import prepare

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        fed = Federation(prepare(resolve(cfg)), Path(cfg.tracking.results_dir))
        for r in range(ROUNDS):
            fed.run_round(r, [])
        return fed
    finally:
        torch.set_num_threads(before)


def test_flwr_run_on_a_superlink_and_two_supernodes_equals_the_loop(tmp_path):
    import yaml

    from fedbench.federation.resolve import run_id_of

    cfg = _config(tmp_path)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text(APP.format(config=tmp_path / "tiny.yaml"))
    (app / "tinyapp.py").write_text(MODULE)
    link = free_port()
    home = tmp_path / "flwr-home"  # Flower's config and installed apps: never the user's ~/.flwr
    home.mkdir()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "here"\n\n[superlink.here]\naddress = "127.0.0.1:{link}"\ninsecure = true\n'
    )
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(home),
        "FEDBENCH_WANDB": "0",
    }

    started: list[subprocess.Popen] = []
    seen: set[int] = set()

    def start(name: str, *args: str) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"{name}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [str(BIN / args[0]), *args[1:]],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(proc)
        return proc, log

    try:
        superlink, log = start(
            "superlink",
            "flower-superlink",
            "--insecure",
            "--port",
            str(link),
            "--disable-runtime-dependency-installation",
        )
        wait_for_port(link, superlink, log)
        for node in range(2):
            start(
                f"supernode{node}",
                "flower-supernode",
                "--insecure",
                "--superlink",
                f"127.0.0.1:{link}",
                "--port",
                str(free_port()),
                "--node-config",
                f"partition-id={node} num-partitions=2",
            )
        run = subprocess.Popen(
            [str(BIN / "flwr"), "run", str(app), "here", "--stream"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started.append(run)
        deadline = time.monotonic() + HANG_GUARD_S
        while run.poll() is None and time.monotonic() < deadline:
            seen |= descendants(*(p.pid for p in started))
            time.sleep(0.5)
        if run.poll() is None:
            run.kill()
        out = run.communicate()[0]
        assert run.returncode == 0, out[-3000:]
        saved_path = Path(cfg.tracking.results_dir) / "tiny" / "flower" / f"{run_id_of(cfg)}.pt"
        assert saved_path.is_file(), out[-3000:]
        saved = torch.load(saved_path, weights_only=True)

        fed = _loop(cfg)
        assert [h["clients"] for h in saved["history"]] == [[0, 1]] * ROUNDS
        assert list(saved["global_state"]) == list(fed.global_state)
        for name, value in fed.global_state.items():
            assert torch.equal(saved["global_state"][name], value.cpu()), name
        assert [h["train_loss"] for h in saved["history"]] == [h["train_loss"] for h in fed.history]

        everything = seen | descendants(*(p.pid for p in started)) | {p.pid for p in started}
        stop_all(everything)
        assert not [p for p in everything if running(p)]
    finally:
        stop_all(seen | descendants(*(p.pid for p in started)) | {p.pid for p in started}, grace_s=5)
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
