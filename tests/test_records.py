"""Run records are written atomically, read back robustly, and stamped with provenance."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import stat
import subprocess
import warnings

import numpy as np
import pytest
from fixtures import hashed

from fedbench import safe_io
from fedbench.errors import DataError
from fedbench.tracking import provenance, records
from fedbench.tracking.records import (
    config_hash,
    dedupe_records,
    find_record,
    identity_key,
    load_records,
    record_identity,
    write_record,
)


def make_record(tag: str = "r1", dataset: str = "emoji", acc: float = 0.71) -> dict:
    """A record whose identity differs by ``tag`` (its partition's name), with the run id of that
    identity, as a real run's."""
    return hashed(
        {
            "schema": 1,
            "run_id": None,
            "dataset": dataset,
            "method": "fedavg",
            "seed": 0,
            "metric": "accuracy",
            "missing": {"protocol": "per_sample", "rate": 0.5, "type": "text"},
            "partition": {"name": tag},
            "final": {"as_train": {"accuracy": acc}},
        }
    )


def tags(records: list[dict]) -> list[str]:
    return [r["partition"]["name"] for r in records]


def strict_loads(text: str):
    """json.loads that refuses NaN/Infinity, as a strict JSON parser (JavaScript's, jq's) does."""

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def files_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_creates_dirs_and_round_trips(tmp_path):
    record = make_record()
    path = write_record(tmp_path / "results", record)
    rid = record["run_id"]
    assert path == tmp_path / "results" / "emoji" / f"{rid}.json"
    stored = json.loads(path.read_text())
    assert {k: v for k, v in stored.items() if k != "signature"} == record
    assert files_in(path.parent) == [f"{rid}.json"]  # no temp file left behind
    assert find_record(tmp_path / "results", "emoji", rid) == stored
    assert find_record(tmp_path / "results", "emoji", "nope") is None
    assert find_record(tmp_path / "results", "other", rid) is None


def test_numpy_values_are_stored_as_numbers(tmp_path):
    record = make_record()
    record["final"]["as_train"]["accuracy"] = np.float32(0.5)
    record["counts"] = np.array([1, 2])
    path = write_record(tmp_path, record)
    stored = json.loads(path.read_text())
    assert stored["final"]["as_train"]["accuracy"] == 0.5
    assert stored["counts"] == [1, 2]


def test_nan_and_infinities_are_written_as_null_in_strict_json(tmp_path):
    record = make_record(acc=float("nan"))
    record["status"] = "diverged"
    record["rounds"] = [
        {"train_loss": float("inf"), "val": {"accuracy": np.float32("nan")}},
        {"train_loss": -np.inf},
    ]
    record["losses"] = np.array([1.5, np.nan])
    text = write_record(tmp_path, record).read_text()
    with pytest.raises(ValueError, match="NaN"):
        strict_loads('{"a": NaN}')  # the checker itself refuses what Python's json would accept
    stored = strict_loads(text)
    assert stored["final"]["as_train"]["accuracy"] is None
    assert stored["rounds"] == [{"train_loss": None, "val": {"accuracy": None}}, {"train_loss": None}]
    assert stored["losses"] == [1.5, None]
    assert tags(load_records(tmp_path, "emoji")) == ["r1"]  # a diverged record is valid


def test_records_are_world_readable(tmp_path):
    path = write_record(tmp_path, make_record())
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path = write_record(tmp_path, make_record(acc=0.2))  # replacing keeps the mode
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@pytest.mark.parametrize("target", ["dump", "replace", "fsync"])
def test_crash_mid_write_keeps_previous_record(tmp_path, monkeypatch, target):
    old = make_record(acc=0.5)
    path = write_record(tmp_path, old)

    def boom(*args, **kwargs):
        raise OSError("simulated crash")

    patch = {
        "dump": (records.json, "dump"),
        "replace": (safe_io.os, "replace"),
        "fsync": (safe_io.os, "fsync"),
    }
    monkeypatch.setattr(*patch[target], boom)
    with pytest.raises(OSError, match="simulated crash"):
        write_record(tmp_path, make_record(acc=0.9))
    monkeypatch.undo()
    assert {k: v for k, v in json.loads(path.read_text()).items() if k != "signature"} == old
    assert files_in(path.parent) == [path.name]


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
    assert tags(got) == ["good"]
    messages = [str(w.message) for w in caught]
    for name in ("bad.json", "list.json", "old.json"):
        assert sum(name in m for m in messages) == 1, messages
    assert not any(".tmp-" in m for m in messages)
    assert all("\n" not in m for m in messages)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sorted(tags(load_records(tmp_path))) == ["good", "other_ds"]
    assert load_records(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        (lambda r: r.update(final=[0.5]), "final is a list, expected an object"),
        (lambda r: r["final"]["as_train"].update(accuracy="0.9"), "final.as_train.accuracy is a str"),
        (lambda r: r.pop("missing"), "missing is absent, expected an object"),
        (lambda r: r.update(seed="0"), "seed is a str, expected an integer"),
        (lambda r: r.update(metric=None), "metric is null, expected a non-empty string"),
        (
            lambda r: r.update(selected={"round": 2, "metrics": {"as_train": [1]}}),
            "selected.metrics.as_train is a list",
        ),
        (lambda r: r.update(personalized={"accuracy": "x"}), "personalized.accuracy is a str"),
        (lambda r: r.update(status="diverged", diverged={"round": "three"}), "diverged.round is a str"),
    ],
)
def test_load_skips_records_of_the_wrong_shape_naming_file_and_field(tmp_path, breakage, problem):
    write_record(tmp_path, make_record("good"))
    bad = make_record("bad")
    breakage(bad)
    bad_path = tmp_path / "emoji" / f"{bad['run_id']}.json"
    bad_path.write_text(json.dumps(bad))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = load_records(tmp_path, "emoji")
    assert tags(got) == ["good"]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and bad_path.name in messages[0] and problem in messages[0], messages
    assert find_record(tmp_path, "emoji", bad["run_id"]) is None


def test_identity_is_the_config_minus_tracking_and_executor():
    config = {
        "seed": 0,
        "missing": {"rate": 0.5},
        "federation": {"rounds": 5},
        "tracking": {"sweep": "a"},
        "executor": {"name": "ray"},
    }
    record = {**make_record(), "config": config}
    assert record_identity(record) == {"seed": 0, "missing": {"rate": 0.5}, "federation": {"rounds": 5}}
    assert record_identity({**record, "identity": {"x": 1}}) == {"x": 1}  # a stored identity wins
    moved = {
        **record,
        "config": {**config, "tracking": {"sweep": "b", "command": "x"}, "executor": {"name": "seq"}},
    }
    assert identity_key(moved) == identity_key(record)
    longer = {**record, "config": {**config, "federation": {"rounds": 10}}}
    assert identity_key(longer) != identity_key(record)


def test_dedupe_keeps_the_newest_of_equal_identities_and_every_distinct_one():
    def run(rounds, created, ratio=0.5):
        config = {"seed": 0, "missing": {"rate": 0.5, "both_ratio": ratio}, "federation": {"rounds": rounds}}
        return {**make_record(f"r{rounds}-{created}-{ratio}"), "config": config, "created": created}

    old, new = run(5, "2025-01-01T00:00:00+00:00"), run(5, "2025-02-01T00:00:00+00:00")
    other_rounds, other_ratio = (
        run(10, "2024-01-01T00:00:00+00:00"),
        run(5, "2024-01-01T00:00:00+00:00", ratio=0.3),
    )
    kept = dedupe_records([new, other_rounds, old, other_ratio])
    assert [r["run_id"] for r in kept] == [new["run_id"], other_rounds["run_id"], other_ratio["run_id"]]


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
    for folder in ("results", "leaderboards", "pkg"):  # tracked outputs of runs, and code in a subfolder
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "f.txt").write_text("1")
        git("add", f"{folder}/f.txt")
    git("commit", "-q", "-m", "outputs")
    head = git("rev-parse", "HEAD")
    (tmp_path / "results" / "f.txt").unlink()  # a bench replacing committed records
    (tmp_path / "leaderboards" / "f.txt").write_text("2")  # and regenerating the board
    assert provenance.git_commit(tmp_path) == head == provenance.git_commit(tmp_path / "pkg")
    (tmp_path / "a.txt").write_text("2")
    assert provenance.git_commit(tmp_path) == f"{head}-dirty" == provenance.git_commit(tmp_path / "pkg")


def test_package_versions_and_now_iso():
    versions = provenance.package_versions()
    for key in (
        "python",
        "torch",
        "lightning",
        "torchmetrics",
        "transformers",
        "numpy",
        "scipy",
        "fedbench",
        "platform",
    ):
        assert key in versions
    assert versions["numpy"] == np.__version__
    stamp = dt.datetime.fromisoformat(provenance.now_iso())
    assert stamp.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 60
