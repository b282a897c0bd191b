"""W&B logging is optional: disabled means not even imported, offline never touches the network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from processes import HANG_GUARD_S

import fedbench
from fedbench.tracking.wandb_log import WandbRun, wandb_mode

DISABLED_SCRIPT = """
import os, sys
from pathlib import Path
from fedbench.tracking.wandb_log import WandbRun
cases = [
    (False, {}),                                   # enabled=False
    (True, {"FEDBENCH_WANDB": "0"}),
    (True, {"WANDB_MODE": "disabled"}),
]
for enabled, env in cases:
    os.environ.update(env)
    with WandbRun(enabled, "p", None, "n", {"a": 1}, Path("unused")) as wb:
        wb.log({"x": 1.0}, step=1)
        wb.summary({"y": 2.0})
        assert not wb.active and wb.run_dir is None
    for key in env:
        del os.environ[key]
assert not Path("unused").exists()
print("wandb" in sys.modules)
"""


def test_disabled_modes_never_import_wandb(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "FEDBENCH_WANDB"))}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(fedbench.__file__).parents[1]), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", DISABLED_SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_mode_selection(monkeypatch):
    for key in ("WANDB_MODE", "WANDB_API_KEY", "FEDBENCH_WANDB"):
        monkeypatch.delenv(key, raising=False)
    assert wandb_mode(False) == "disabled"
    assert wandb_mode(True) == "offline"  # no API key: never try the network
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wandb_mode(True) == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode(True) == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode(True) == "offline"
    monkeypatch.setenv("FEDBENCH_WANDB", "0")
    assert wandb_mode(True) == "disabled"


def test_missing_wandb_warns_once_and_is_a_noop(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes ``import wandb`` raise ImportError
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("FEDBENCH_WANDB", raising=False)
    with pytest.warns(UserWarning, match="cannot import wandb") as caught:
        with WandbRun(True, "p", None, "n", {}, tmp_path) as wb:
            wb.log({"x": 1}, step=1)
            wb.summary({"y": 1})
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert not wb.active


def test_wandb_error_mid_run_warns_and_stops_logging(tmp_path, monkeypatch):
    calls = []

    class FakeRun:
        dir = str(tmp_path / "files")

        def log(self, metrics, step):
            calls.append(("log", step))
            raise RuntimeError("disk full")

        def finish(self, exit_code=0):
            calls.append(("finish", exit_code))

    fake = types.ModuleType("wandb")
    fake.init = lambda **kwargs: calls.append(("init", kwargs["mode"])) or FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("FEDBENCH_WANDB", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.warns(UserWarning, match="disk full"):
        with WandbRun(True, "p", "g", "n", {}, tmp_path) as wb:
            wb.log({"x": 1}, step=1)
            wb.log({"x": 2}, step=2)  # no second attempt, no second warning
    assert calls == [("init", "offline"), ("log", 1), ("finish", 1)]


class FakeWandb(types.ModuleType):
    """A stand-in ``wandb`` module recording what fedbench sends it."""

    def __init__(self):
        super().__init__("wandb")
        self.inits, self.logs, self.summaries, self.finished = [], [], {}, []
        fake = self

        class Run:
            dir = "unused"

            class summary:  # noqa: N801 (wandb's attribute name)
                @staticmethod
                def update(d):
                    fake.summaries.update(d)

            def log(self, metrics, step):
                fake.logs.append((step, dict(metrics)))

            def finish(self, exit_code=0):
                fake.finished.append(exit_code)

        self.init = lambda **kwargs: fake.inits.append(kwargs) or Run()


def test_a_run_sends_wandb_its_config_rounds_and_final_scores(tiny_cfg, monkeypatch):
    from fedbench.federation.loop import run_experiment
    from fedbench.tracking.wandb_log import round_metrics

    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("FEDBENCH_WANDB", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = tiny_cfg("fedavg", rounds=3)
    cfg.tracking.wandb, cfg.tracking.sweep = True, "sweep-7"
    record = run_experiment(cfg)
    (init,) = fake.inits
    assert (init["project"], init["group"], init["mode"]) == ("fedbench", "sweep-7", "offline")
    assert init["name"] == f"fedavg-{cfg.missing.type}{cfg.missing.rate}-s{cfg.seed}"
    assert init["config"] == cfg.to_dict() and init["reinit"] == "create_new"
    assert [step for step, _ in fake.logs] == [1, 2, 3]
    for (_, sent), entry in zip(fake.logs, record["rounds"], strict=True):
        assert sent == round_metrics(entry) and sent["val/accuracy"] == entry["val"]["accuracy"]
    final = {f"final/{c}/{k}": v for c, m in record["final"].items() for k, v in m.items()}
    assert fake.summaries == final and fake.finished == [0]


def test_offline_run_reads_back_with_wandbs_own_reader(tmp_path, monkeypatch):
    """A real offline run, read back after ``finish()`` with ``wandb leet inspect --json`` (W&B's
    reader of its own log), polled until the log holds the run's exit record."""
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("FEDBENCH_WANDB", raising=False)
    for key, value in {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(tmp_path),
        "WANDB_SILENT": "true",
        "WANDB_CONSOLE": "off",
    }.items():
        monkeypatch.setenv(key, value)
    with WandbRun(True, "fedbench-test", "sweep-1", "fedavg-s0", {"lr": 0.01}, tmp_path) as wb:
        assert wb.active and wb.mode == "offline"
        wb.log({"val/accuracy": 0.5, "train_loss": 1.25}, step=1)
        wb.log({"val/accuracy": 0.75, "train_loss": 0.5}, step=2)
        wb.summary({"final/accuracy": 0.8})
        run_dir = wb.run_dir
    assert not wb.active and run_dir.parent == tmp_path / "wandb"
    wandb_cli = Path(sys.executable).with_name("wandb")
    records, deadline = [], time.time() + HANG_GUARD_S
    while time.time() < deadline:
        out = subprocess.run(
            [str(wandb_cli), "leet", "inspect", "--json", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
        )
        records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        if any(r["type"] == "exit" for r in records):
            break
        time.sleep(0.5)
    kinds = [r["type"] for r in records]
    assert "exit" in kinds, f"the log never completed; record kinds: {kinds}"
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert (run["run_group"], run["display_name"], run["config"]["update"]["lr"]) == (
        "sweep-1",
        "fedavg-s0",
        0.01,
    )
    history = [
        (
            h["history"]["step"]["num"],
            h["history"]["item"]["val/accuracy"],
            h["history"]["item"]["train_loss"],
        )
        for h in records
        if h["type"] == "history"
    ]
    assert history == [(1, 0.5, 1.25), (2, 0.75, 0.5)]
    summary = {}
    for r in records:
        if r["type"] == "summary":
            summary.update(r["summary"]["update"])
    assert summary["final/accuracy"] == 0.8
    assert [r["exit"]["exit_code"] for r in records if r["type"] == "exit"] == [0]


def test_round_metrics_carry_the_aggregators_diagnostics():
    """A hand-built round entry: the basics under their W&B names, every finite scalar the server
    reported under server/, one dict level flattened, lists, bools and non-finite values left out."""
    from fedbench.tracking.wandb_log import round_metrics

    entry = {
        "round": 3,
        "val": {"accuracy": 0.5},
        "train_loss": 1.5,
        "bytes_up": 10,
        "bytes_down": 20,
        "clients": [0, 2],
        "lr": 0.001,
        "inter_pool_size": 7,
        "intra_used_complete": 5,
        "completion": {"text/label_agreement": 0.6, "source": "retrieval"},
        "aggregation_weights": [0.5, 0.5],
        "all_dropped": False,
        "inter_query_drift": float("nan"),
    }
    assert round_metrics(entry) == {
        "val/accuracy": 0.5,
        "train/loss": 1.5,
        "bytes/up": 10,
        "bytes/down": 20,
        "train/lr": 0.001,
        "server/inter_pool_size": 7,
        "server/intra_used_complete": 5,
        "server/completion/text/label_agreement": 0.6,
    }
