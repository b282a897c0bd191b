"""Run records are written atomically, read back robustly, and stamped with provenance."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import warnings

import numpy as np
import pytest

from fedbench.errors import DataError
from fedbench.tracking import provenance, records
from fedbench.tracking.records import config_hash, find_record, load_records, write_record


def make_record(run_id: str = "r1", dataset: str = "emoji", acc: float = 0.71) -> dict:
    return {
        "schema": 1,
        "run_id": run_id,
        "dataset": dataset,
        "method": "fedavg",
        "seed": 0,
        "metric": "accuracy",
        "final": {"as_train": {"accuracy": acc}},
    }


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_creates_dirs_and_round_trips(tmp_path):
    record = make_record()
    path = write_record(tmp_path / "results", record)
    assert path == tmp_path / "results" / "emoji" / "r1.json"
    assert json.loads(path.read_text()) == record
    assert files_in(path.parent) == ["r1.json"]  # no temp file left behind
    assert find_record(tmp_path / "results", "emoji", "r1") == record
    assert find_record(tmp_path / "results", "emoji", "nope") is None
    assert find_record(tmp_path / "results", "other", "r1") is None


def test_numpy_values_are_stored_as_numbers(tmp_path):
    record = make_record()
    record["final"]["as_train"]["accuracy"] = np.float32(0.5)
    record["counts"] = np.array([1, 2])
    path = write_record(tmp_path, record)
    stored = json.loads(path.read_text())
    assert stored["final"]["as_train"]["accuracy"] == 0.5
    assert stored["counts"] == [1, 2]


@pytest.mark.parametrize("target", ["dump", "replace", "fsync"])
def test_crash_mid_write_keeps_previous_record(tmp_path, monkeypatch, target):
    old = make_record(acc=0.5)
    path = write_record(tmp_path, old)

    def boom(*args, **kwargs):
        raise OSError("simulated crash")

    patch = {"dump": (records.json, "dump"), "replace": (records.os, "replace"), "fsync": (records.os, "fsync")}
    monkeypatch.setattr(*patch[target], boom)
    with pytest.raises(OSError, match="simulated crash"):
        write_record(tmp_path, make_record(acc=0.9))
    monkeypatch.undo()
    assert json.loads(path.read_text()) == old
    assert files_in(path.parent) == ["r1.json"]


def test_invalid_names_are_user_errors(tmp_path):
    with pytest.raises(DataError, match="run_id"):
        write_record(tmp_path, {**make_record(), "run_id": "../escape"})
    with pytest.raises(DataError, match="dataset"):
        write_record(tmp_path, {k: v for k, v in make_record().items() if k != "dataset"})


def test_load_skips_corrupt_and_temp_files_with_one_warning_each(tmp_path):
    write_record(tmp_path, make_record("good"))
    write_record(tmp_path, make_record("other_ds", dataset="food"))
    folder = tmp_path / "emoji"
    (folder / "bad.json").write_text('{"schema": 1, "run_id": ')  # truncated
    (folder / "list.json").write_text("[1, 2]")
    (folder / "old.json").write_text(json.dumps({**make_record("old"), "schema": 0}))
    (folder / ".tmp-abc.json").write_text("{partial")  # an in-flight write: ignored silently
    (folder / "notes.txt").write_text("not a record")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = load_records(tmp_path, "emoji")
    assert [r["run_id"] for r in got] == ["good"]
    messages = [str(w.message) for w in caught]
    for name in ("bad.json", "list.json", "old.json"):
        assert sum(name in m for m in messages) == 1, messages
    assert not any(".tmp-" in m for m in messages)
    assert all("\n" not in m for m in messages)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sorted(r["run_id"] for r in load_records(tmp_path)) == ["good", "other_ds"]
    assert load_records(tmp_path / "missing") == []


def test_config_hash_is_stable_and_canonical():
    a = {"lr": 0.01, "data": {"rate": 0.7, "type": "both"}, "methods": ["fedavg", "fedprime"]}
    b = {"methods": ["fedavg", "fedprime"], "data": {"type": "both", "rate": 0.7}, "lr": 0.01}
    expected = hashlib.sha256(
        b'{"data":{"rate":0.7,"type":"both"},"lr":0.01,"methods":["fedavg","fedprime"]}'
    ).hexdigest()[:16]
    assert config_hash(a) == config_hash(b) == expected
    assert len(expected) == 16 and int(expected, 16) >= 0
    assert config_hash({**a, "lr": 0.02}) != expected
    assert config_hash({"x": np.float64(0.5)}) == config_hash({"x": 0.5})


def test_git_commit_outside_a_repo_is_unknown(tmp_path):
    assert provenance.git_commit(tmp_path) == "unknown"


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_git_commit_and_dirty_flag(tmp_path):
    def git(*args):
        env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        cmd = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip()

    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-q", "-m", "init")
    head = git("rev-parse", "HEAD")
    assert provenance.git_commit(tmp_path) == head
    (tmp_path / "untracked.txt").write_text("x")  # results and caches are untracked: still clean
    assert provenance.git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("2")
    assert provenance.git_commit(tmp_path) == f"{head}-dirty"


def test_package_versions_and_now_iso():
    versions = provenance.package_versions()
    for key in ("python", "torch", "lightning", "torchmetrics", "transformers", "numpy", "scipy", "fedbench", "platform"):
        assert key in versions
    assert versions["numpy"] == np.__version__
    stamp = dt.datetime.fromisoformat(provenance.now_iso())
    assert stamp.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 60
