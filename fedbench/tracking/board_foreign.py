"""The board's last section: valid records that were not produced here.

A record that passes every check but carries no valid signature of this user's key and is not a
committed, unchanged file of the repository (:mod:`~fedbench.tracking.record_trust`) may be a
colleague's run, a download, or a hand edit: nothing tells which. It is listed one row per file,
each with its own number and the reason it is not believed, and never enters a cell, a mean, a
bold mark or a header count of the board above.
"""

from __future__ import annotations

from pathlib import Path

from fedbench.tracking.board_stats import DASH, table_head, table_row
from fedbench.tracking.record_file import Foreign
from fedbench.tracking.records import is_diverged, metric_value

TITLE = "Not produced here"
NOTICE = (
    "_Not produced here; verify with `fedbench reproduce RECORD` "
    "(it reruns the record's config and compares). "
    "These records are valid but carry no signature of this machine's key and are not committed to this "
    "repository, so they are never averaged with the runs above._"
)


def foreign_block(foreign: list[Foreign]) -> list[str]:
    """Markdown of the section (nothing when there are no such records)."""
    if not foreign:
        return []
    out = [f"## {TITLE}", "", NOTICE, ""]
    out += table_head(["record", "method", "setting", "seed", "final as_train", "why it is not believed"])
    for item in sorted(foreign, key=lambda f: str(f.path)):
        r = item.record
        missing = r.get("missing") or {}
        setting = f"{missing.get('type', '?')}@{missing.get('rate', '?')}" + (
            f", {r['sweep']}" if r.get("sweep") else ""
        )
        value = None if is_diverged(r) else metric_value(r, r["metric"], "as_train")
        shown = (
            "diverged" if is_diverged(r) else DASH if value is None else f"{100 * value:.1f} ({r['metric']})"
        )
        out.append(
            table_row(
                [f"`{_shown_path(item.path)}`", str(r["method"]), setting, str(r["seed"]), shown, item.reason]
            )
        )
    return [*out, ""]


def _shown_path(path: Path) -> str:
    """The record's path as a reader finds it: relative to the current folder where it can be."""
    path = Path(path)
    try:
        return path.absolute().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()
