"""The ray executor attached to a Ray cluster started apart (``ray start --head``), as on several
machines: ``executor.options.address`` reaches it, the fits run on it, and the record equals the
sequential executor's bit for bit. Every Ray process here is its own subprocess, so this module
shares nothing with the in-process Ray of test_ray_executor.py."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from processes import HANG_GUARD_S

pytest.importorskip("ray")

TESTS = Path(__file__).parent

DRIVER = """
import json, sys
import ray
from fixtures import tiny_config
from fedbench.federation.executors import ray_support
from fedbench.federation.loop import run_experiment

address, folder, executor = sys.argv[1:4]
cfg = tiny_config(__import__("pathlib").Path(folder), "fedavg", rounds=2)
cfg.partition.n_clients, cfg.train.threads, cfg.tracking.wandb = 4, 1, False
cfg.tracking.results_dir = folder + "/" + executor
cfg.executor.name = executor
head = None
if executor == "ray":
    cfg.executor.options = {"address": address, "actors": 2}
    ray_support.connect(address)  # what the executor does first; then ask the cluster what it is
    head = ray.cluster_resources().get("fedbench_test_head")
record = run_experiment(cfg)
print(json.dumps({"head": head, "rounds": [(r["val"], r["train_loss"]) for r in record["rounds"]], "final": record["final"]}))
"""  # noqa: E501 (the embedded script stays byte-identical)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Hang guards only. A driver takes ~30 s idle; a loaded CI run (2 cores, two trainings beside it)
# once took over 300 s, so the limits leave room for that and more.
DRIVER_LIMIT_S = HANG_GUARD_S
HEAD_START_LIMIT_S = HANG_GUARD_S // 4


def _driver(env, address: str, folder: Path, executor: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, address, str(folder), executor],
        env=env,
        capture_output=True,
        text=True,
        timeout=DRIVER_LIMIT_S,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("auth", ["none", "token"])
def test_attaches_to_a_head_node_started_apart_and_matches_sequential(tmp_path, auth):
    """With ``auth="token"`` the head requires a token; the driver has it (RAY_AUTH_TOKEN) but is not
    told the mode, so fedbench must find out that the cluster asks for it."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray_cli is None:
        pytest.skip("the ray command is not installed")
    port = _free_port()
    session = tempfile.mkdtemp(prefix="fbray")  # short: Ray's unix sockets live under it (107-byte limit)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")]),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    env.pop("RAY_AUTH_MODE", None)
    head_env = dict(env)
    if auth == "token":
        env["RAY_AUTH_TOKEN"] = head_env["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        head_env["RAY_AUTH_MODE"] = "token"
    head = subprocess.Popen(
        [
            ray_cli,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--block",
            "--include-dashboard=false",
            '--resources={"fedbench_test_head": 1}',
            f"--temp-dir={session}",
        ],
        env=head_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + HEAD_START_LIMIT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert head.poll() is None and time.time() < deadline, "ray start --head did not come up"
                time.sleep(0.5)
        on_cluster = _driver(env, f"127.0.0.1:{port}", tmp_path, "ray")
    finally:
        head.terminate()  # --block: ray start stops the head's processes when it is ended
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
        shutil.rmtree(session, ignore_errors=True)
    alone = _driver(env, "", tmp_path, "sequential")
    assert (
        on_cluster["head"] == 1
    )  # the driver saw the head's own resource: it attached, it did not start a Ray
    assert on_cluster["rounds"] == alone["rounds"] and on_cluster["final"] == alone["final"]
