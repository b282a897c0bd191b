"""Generated blocks in README.md and docs/*.md (benchmarks/doc_blocks.py): every block on every page
is what its generator writes from the committed records now, and the generators' numbers agree
with the records computed here by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import doc_blocks, fedprime_table


def test_every_generated_block_on_every_page_is_up_to_date(committed_docs):
    assert doc_blocks.stale() == [], "run python benchmarks/doc_blocks.py and commit the pages"


def test_every_block_names_a_known_generator():
    for page in doc_blocks.pages():
        for m in doc_blocks.blocks(page.read_text()):
            assert m["name"] in doc_blocks.GENERATORS, f"{page}: gen:{m['name']}"


def test_rewrite_replaces_only_the_bodies(monkeypatch):
    monkeypatch.setitem(doc_blocks.GENERATORS, "twice", lambda word: f"{word} {word}")
    page = (
        "intro\n<!-- gen:twice ab -->\nold\nlines\n<!-- /gen:twice -->\n"
        "after <!-- gen:twice c -->\n<!-- /gen:twice -->\n"
    )
    assert doc_blocks.rewrite(page) == (
        "intro\n<!-- gen:twice ab -->\nab ab\n<!-- /gen:twice -->\n"
        "after <!-- gen:twice c -->\nc c\n<!-- /gen:twice -->\n"
    )


def test_an_unknown_generator_stops_with_one_line():
    page = "<!-- gen:nosuch -->\nx\n<!-- /gen:nosuch -->\n"
    with pytest.raises(SystemExit, match="no generator named 'nosuch'"):
        doc_blocks.rewrite(page)


def test_fedprime_tables_rows_are_the_sweeps_records_by_hand(committed_docs):
    sweep = "bench-fedprime-quick"
    recs = [
        r
        for p in sorted((committed_docs / "emoji").glob("*.json"))
        if (r := json.loads(p.read_text())).get("sweep") == sweep and r["status"] == "ok"
    ]
    assert recs
    text = doc_blocks.fedprime_tables(sweep)
    for mtype in ("text", "image", "both"):
        part = text.split(f"### Missing {mtype} at 0.7")[1].split("###")[0].split("Diagnostics")[0]
        rows = {
            ln.split("|")[1].strip(): ln.split("|")[2:-1] for ln in part.splitlines() if ln.startswith("| ")
        }
        for method in {r["method"] for r in recs if r["config"]["missing"]["type"] == mtype}:
            mine = [
                r
                for r in recs
                if r["method"] == method
                and r["config"]["missing"]["type"] == mtype
                and not r["config"]["method"]["options"]
            ]
            as_train = np.mean([r["final"]["as_train"]["accuracy"] for r in mine]) * 100
            assert rows[method][0].strip().split(" ")[0] == f"{as_train:.1f}"
            assert rows[method][-1].strip() == str(len(mine))


def test_load_sweep_keeps_only_that_sweep(tmp_path):
    folder = tmp_path / "emoji"
    folder.mkdir()
    base = {
        "status": "ok",
        "config": {"missing": {"type": "text"}, "method": {"name": "fedavg", "options": {}}},
    }
    for i, sweep in enumerate(["bench-a-quick", "bench-b-quick", "bench-a-quick"]):
        (folder / f"{i}.json").write_text(json.dumps({**base, "sweep": sweep, "i": i}))
    data = fedprime_table.load_sweep(tmp_path, "bench-a-quick")
    assert [r["i"] for r in data["text"]["fedavg"]] == [0, 2]


def test_the_committed_board_is_what_the_committed_records_give(tmp_path):
    """leaderboards/emoji.md regenerates byte for byte from results/ (as `make leaderboard`). It reads
    the repository's own results/ folder, where git's HEAD vouches for the committed records (a copy
    elsewhere would list them as not produced here); a user's runs go to runs/, so in a clone this is
    the committed reference, and a maintainer who adds records there is told to commit the board."""
    from fedbench.sweep import regenerate_leaderboard

    root = doc_blocks.ROOT
    made = regenerate_leaderboard(str(root / "results"), str(tmp_path), "emoji", None)
    assert made.read_text() == (root / "leaderboards" / "emoji.md").read_text(), (
        "leaderboards/emoji.md is stale: run make leaderboard and commit it with the records"
    )
