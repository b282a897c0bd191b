"""The committed run records the docs' generators read (benchmarks/doc_blocks.py), as plain JSON.

Not :func:`fedbench.tracking.record_file.read_records`: that one sorts records by provenance for the
board (signed by this machine's key, or vouched for by git inside the repository), and the tests
hand the generators a copy of git's HEAD outside the repository, where every record would count
as not produced here on any machine but the one that made it.
"""

from __future__ import annotations

import json
from pathlib import Path


def run_files(folder: Path, sweep: str | None = None) -> list[dict]:
    """The finished runs (status ok) recorded in ``folder`` (one dataset's folder, e.g.
    ``results/emoji``), in file-name order; ``sweep``: only that bench sweep's."""
    runs = []
    for path in sorted(Path(folder).glob("*.json")):
        rec = json.loads(path.read_text())
        if rec.get("status") == "ok" and (sweep is None or rec.get("sweep") == sweep):
            runs.append(rec)
    return runs
