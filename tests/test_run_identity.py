"""A run's id is the hash of every config field that can change its result. Fields added later
must not change the id of runs recorded before them (or every bench would rerun everything), and
the executor and tracking settings never count."""

from pathlib import Path

import pytest
from committed import committed_record, committed_record_paths

from fedbench.config import ExperimentConfig, from_dict
from fedbench.federation.resolve import run_id_of

RECORDS = list(committed_record_paths())  # from git's HEAD, not the working tree


@pytest.mark.parametrize("path", RECORDS, ids=[Path(p).stem for p in RECORDS])
def test_committed_records_from_git_keep_their_run_id(path):
    record = committed_record(path)
    if "identity" not in record:
        pytest.skip("a record from before identities were stored")
    assert run_id_of(from_dict(record["config"])) == record["run_id"] == Path(path).stem


def test_executor_and_tracking_do_not_count_but_failures_do():
    base = ExperimentConfig()
    other = ExperimentConfig()
    other.executor.name, other.tracking.results_dir, other.tracking.sweep = "ray", "/tmp/x", "s"
    assert run_id_of(base) == run_id_of(other)
    other.failures.drop_rate = 0.1
    assert run_id_of(base) != run_id_of(other)
    other = ExperimentConfig()
    other.partition.n_dominant = 5
    assert run_id_of(base) != run_id_of(other)


def test_spelled_out_default_options_are_the_same_run():
    base, spelled = ExperimentConfig(), ExperimentConfig()
    spelled.method.options = {"prompt_length": 4}
    spelled.data.options = {"label": "category"}
    assert run_id_of(base) == run_id_of(spelled)


@pytest.mark.parametrize("part", ["method", "data", "backbone"])
def test_a_new_behaviour_version_is_a_new_run_and_the_initial_one_keeps_old_ids(part, tmp_path, monkeypatch):
    import dataclasses

    from fixtures import tiny_config

    from fedbench.backbones.registry import BACKBONES
    from fedbench.data.registry import DATASETS
    from fedbench.federation.resolve import resolve
    from fedbench.methods.registry import METHODS

    cfg = tiny_config(tmp_path, "fedavg")
    registry, name = {
        "method": (METHODS, "fedavg"),
        "data": (DATASETS, "tiny"),
        "backbone": (BACKBONES, "tiny"),
    }[part]
    first = resolve(cfg)
    assert "version" not in first.identity[part]  # version 1: identities (and ids) as before versions existed
    assert first.specs()[part]["version"] == 1
    monkeypatch.setitem(registry._specs, name, dataclasses.replace(registry.get(name), version=2))
    second = resolve(cfg)
    assert second.identity[part]["version"] == 2
    assert second.run_id != first.run_id  # two cells: a record of version 1 is not reused for version 2
    assert second.specs()[part] == {**first.specs()[part], "version": 2}
