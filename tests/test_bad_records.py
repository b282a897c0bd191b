"""The board believes a record file only when it is strict JSON of bounded nesting, has a record's
shape with scores in [0, 1], a run id that is the hash of its identity, and was produced here
(signed with this user's key, or committed and unchanged). Each row below is one way a file
fails, and the warning must name the file and the reason; the user's own runs stay as they were.
"""

from __future__ import annotations

import copy
import json
import subprocess
import warnings

import pytest
from fixtures import hashed
from test_leaderboard import COMMAND, glance_cell, rec, sections, table

from fedbench.cli import main
from fedbench.tracking import record_trust
from fedbench.tracking.leaderboard import render_leaderboard
from fedbench.tracking.record_file import MAX_DEPTH, read_records
from fedbench.tracking.records import config_hash, record_identity, write_record

OWN = [rec("fedavg", "text", 0.5, s, a) for s, a in ((0, 0.60), (1, 0.64))] + [
    rec("fedprox", "text", 0.5, 0, 0.58)
]


def _own_folder(tmp_path):
    results = tmp_path / "results"
    for record in OWN:
        write_record(results, record)
    return results


def _place(results, record, text=None, name=None):
    """Put a record file where a real one of its run id would be (or under ``name``)."""
    folder = results / "emoji"
    path = folder / (name or f"{record['run_id']}.json")
    data = text if text is not None else json.dumps(record, indent=2)
    path.write_bytes(data.encode("utf-8", "surrogateescape"))  # a lone surrogate becomes that raw byte
    return path


def _signed_copy(record):
    """The record as write_record stores it (with this user's signature), as plain data."""
    return json.loads(json.dumps(record_trust.signed(json.loads(json.dumps(record)))))


def _forged(results):
    """A copy of one of the user's runs, signed, whose accuracy was then raised by hand."""
    record = _signed_copy(rec("fedavg", "text", 0.9, 0, 0.60))
    record["final"]["as_train"]["accuracy"] = 0.99
    return _place(results, record)


def _mismatched_id(results):
    """A valid record whose config was edited (rounds 5 -> 50) after its run id was computed."""
    record = rec("fedavg", "text", 0.7, 0, 0.60)
    record["config"]["federation"]["rounds"] = 50
    return _place(results, record)


def _accuracy(results, value):
    return _place(results, rec("fedavg", "text", 0.3, 0, value))


def _deep(results):
    record = rec("fedavg", "text", 0.1, 0, 0.6)
    text = json.dumps(record)[:-1] + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    return _place(results, record, text)


def _bare_nan(results):
    record = rec("fedavg", "text", 0.2, 0, 0.6)
    return _place(results, record, json.dumps(record).replace('"accuracy": 0.6,', '"accuracy": NaN,', 1))


def _key_twice(results):
    record = rec("fedavg", "text", 0.4, 0, 0.6)
    return _place(results, record, json.dumps(record)[:-1] + ', "final": {"as_train": {"accuracy": 0.99}}}')


CASES = [  # (what is wrong, how to make it, what the warning says besides the file's name)
    ("accuracy 5.0", lambda r: _accuracy(r, 5.0), "final.as_train.accuracy is 5.0, outside [0, 1]"),
    (
        "accuracy -0.2",
        lambda r: _place(
            r, {**rec("fedavg", "text", 0.3, 0, 0.5), "final": {"as_train": {"accuracy": -0.2}}}
        ),
        "final.as_train.accuracy is -0.2, outside [0, 1]",
    ),
    ("run id not the identity's", _mismatched_id, "is not the hash of its identity"),
    ("nested 100,000 deep", _deep, f"nested 100001 levels deep (a record has at most {MAX_DEPTH})"),
    ("bare NaN", _bare_nan, "a bare NaN token"),
    ("key twice", _key_twice, "the key 'final' appears twice"),
    (
        "file named as another run",
        lambda r: _place(r, rec("fedavg", "text", 0.8, 0, 0.6), name="0123456789abcdef.json"),
        "holds run",
    ),
    ("not UTF-8", lambda r: _place(r, None, text="\udcff{", name="garbage.json"), "not UTF-8 text"),
    (
        "per-client score 1.5",
        lambda r: _place(
            r, rec("fedavg", "text", 0.8, 0, 0.6, personalized={"accuracy": 0.5, "per_client": [0.5, 1.5]})
        ),
        "personalized.per_client[1] is 1.5",
    ),
    (
        "majority rate 2",
        lambda r: _place(r, rec("fedavg", "text", 0.8, 0, 0.6, majority_rate=2.0)),
        "majority_rate is 2.0, outside [0, 1]",
    ),
]


@pytest.mark.parametrize(("what", "make", "says"), CASES, ids=[c[0] for c in CASES])
def test_an_invalid_record_is_skipped_with_one_warning_naming_it(tmp_path, what, make, says):
    results = _own_folder(tmp_path)
    path = make(results)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = read_records(results, "emoji")
    messages = [str(w.message) for w in caught]
    assert [m for m in messages if str(path) in m] == messages and len(messages) == 1, messages
    assert says in messages[0] and "\n" not in messages[0]
    assert [p for p, _ in found.skipped] == [path] and not found.foreign
    assert sorted(r["run_id"] for r in found.own) == sorted(r["run_id"] for r in OWN)


@pytest.mark.parametrize("made", ["edited after signing", "unsigned", "another key"])
def test_a_record_not_produced_here_is_listed_apart_never_averaged(tmp_path, monkeypatch, made):
    results = _own_folder(tmp_path)
    same_cell = rec("fedavg", "text", 0.5, 2, 0.93)  # the cell of the user's fedavg runs, a third seed
    shown = "93.0"
    if made == "edited after signing":
        record = _signed_copy(same_cell)
        record["final"]["as_train"]["accuracy"], reason, shown = 0.95, "edited after it was signed", "95.0"
        path = _place(results, record)
    elif made == "unsigned":
        path, reason = _place(results, same_cell), "carries no signature"
    else:
        with monkeypatch.context() as m:
            m.setenv("FEDBENCH_KEY_FILE", str(tmp_path / "colleague" / "key"))
            path, reason = write_record(results, same_cell), "signed with another key"
    with pytest.warns(UserWarning, match="not produced here") as caught:
        found = read_records(results, "emoji")
    assert any(str(path) in str(w.message) and reason in str(w.message) for w in caught)
    md = render_leaderboard(found.own, dataset="emoji", command=COMMAND, foreign=found.foreign)
    _, rows = table(sections(md)["Other runs"])
    # mean 62.0 of 60 and 64: the foreign 93 or 95 is not in it
    assert rows["fedavg"] == [glance_cell([0.60, 0.64])]
    foreign = sections(md)["Not produced here"]
    assert (
        "verify with `fedbench reproduce RECORD`" in foreign
        and reason in foreign
        and f"| {shown} (accuracy) |" in foreign
    )
    assert "- Runs: 3 " in md and "1 record not produced here" in md


def test_leaderboard_shows_the_real_runs_unchanged_and_names_the_four_bad_files(tmp_path, capsys):
    """The issue's 'done when': a forged record, one with a mismatched run id, one with accuracy
    5.0 and one nested deeply beside the user's runs, through the CLI."""
    results = _own_folder(tmp_path)
    clean = tmp_path / "clean"
    assert main(["leaderboard", "--results", str(results), "--leaderboards", str(clean)]) == 0
    bad = [_forged(results), _mismatched_id(results), _accuracy(results, 5.0), _deep(results)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert (
            main(["leaderboard", "--results", str(results), "--leaderboards", str(tmp_path / "boards")]) == 0
        )
    messages = [str(w.message) for w in caught]
    for path in bad:
        assert sum(str(path) in m for m in messages) == 1, (path, messages)
    before, after = (clean / "emoji.md").read_text(), (tmp_path / "boards" / "emoji.md").read_text()
    assert sections(after)["Other runs"] == sections(before)["Other runs"]  # the real runs, unchanged
    assert (
        "- Not counted: 3 invalid records skipped (each named in a warning); 1 record not produced here"
        in after
    )
    assert "- Runs: 3 (after keeping the newest of duplicate runs), 0 diverged" in after
    assert "99.0" in sections(after)["Not produced here"] and "500" not in after


def _git(repo, *args):
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        check=True,
        capture_output=True,
    )


def test_committed_records_are_verified_against_git(tmp_path):
    """A clone's reference records carry no signature of this user's key: a file tracked by git
    whose bytes are the committed blob counts as produced here; edited in the working tree, not."""
    repo = tmp_path / "clone"
    results = repo / "results"
    (results / "emoji").mkdir(parents=True)
    committed = [rec("fedavg", "text", 0.5, s, a) for s, a in ((0, 0.6), (1, 0.7))]
    paths = [_place(results, r) for r in committed]  # as another machine wrote them: unsigned
    _git(repo, "init", "-q")
    _git(repo, "add", "results")
    _git(repo, "commit", "-q", "-m", "reference runs")
    found = read_records(results, "emoji", warn=False)
    assert len(found.own) == 2 and not found.foreign and not found.skipped
    text = paths[1].read_text()
    paths[1].write_text(text.replace('"accuracy": 0.7,', '"accuracy": 0.97,', 1))  # edited, still valid
    found = read_records(results, "emoji", warn=False)
    assert [r["seed"] for r in found.own] == [0]
    assert [f.path for f in found.foreign] == [paths[1]] and "no signature" in found.foreign[0].reason
    paths[1].write_text(text)  # back to the committed bytes
    assert len(read_records(results, "emoji", warn=False).own) == 2
    uncommitted = _place(results, rec("fedavg", "text", 0.5, 2, 0.8))  # in the repository, never committed
    assert [f.path for f in read_records(results, "emoji", warn=False).foreign] == [uncommitted]


def test_run_id_check_is_the_loops_hash_of_the_identity(tmp_path):
    """Independent of the board's code: the id check agrees with sha256 of the canonical identity."""
    import hashlib

    record = copy.deepcopy(OWN[0])
    identity = record_identity(record)
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert config_hash(identity) == hashlib.sha256(canonical.encode()).hexdigest()[:16] == record["run_id"]
    assert hashed(copy.deepcopy(record))["run_id"] == record["run_id"]
