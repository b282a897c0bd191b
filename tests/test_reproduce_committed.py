"""``fedbench reproduce`` reruns one committed quick cell, copied from git into a temporary
folder, and finds every final metric identical (the committed records were made on this kind of
machine; elsewhere the record's concrete precision may not run, and the test says so)."""

from __future__ import annotations

import json

import pytest
from committed import committed_record, committed_record_paths

from fedbench.cli import main
from fedbench.federation.resolve import run_id_of

pytestmark = pytest.mark.slow


def test_a_committed_quick_cell_from_git_reproduces_bit_for_bit(tmp_path, monkeypatch, capsys):
    from fedbench.config import from_dict

    records = [committed_record(p) for p in committed_record_paths() if p.startswith("results/emoji/")]
    record = min(
        (r for r in records if r["method"] == "fedavg"), key=lambda r: r["wall_time_s"]
    )  # the quickest
    if run_id_of(from_dict(record["config"])) != record["run_id"]:
        pytest.skip(f"{record['config']['train']['precision']} resolves to another precision on this machine")
    path = tmp_path / "results" / "emoji" / f"{record['run_id']}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", record["run_id"], "--results", str(tmp_path / "again")]) == 0  # found by run id
    assert "reproduced: every final metric" in capsys.readouterr().out
