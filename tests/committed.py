"""The committed records, read from git (never from the working tree, where a user's own runs live).

Tests that check the committed board of record copy it into a temporary folder with
:func:`copy_committed_records` and say so in their names."""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@cache
def committed_record_paths(folder: str = "results") -> tuple[str, ...]:
    """Paths (relative to the repository) of the run records in git's HEAD under ``folder``'s dataset
    folders (``folder/<dataset>/<run_id>.json``); empty outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "ls-tree", "-r", "--name-only", "HEAD", "--", folder],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    depth = folder.strip("/").count("/") + 2
    return tuple(p for p in out.stdout.splitlines() if p.endswith(".json") and p.count("/") == depth)


def committed_record(path: str) -> dict:
    out = subprocess.run(
        ["git", "show", f"HEAD:{path}"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(out.stdout)


def copy_committed_records(dest: Path, dataset: str | None = None) -> Path:
    """Write the committed records (of ``dataset``) under ``dest/<dataset>/``; returns ``dest``."""
    for path in committed_record_paths():
        if dataset is not None and path.split("/")[1] != dataset:
            continue
        target = dest / Path(path).relative_to("results")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(committed_record(path)))
    return dest


def copy_committed_tree(dest: Path, folder: str = "results") -> Path:
    """Every file under ``folder`` in git's HEAD (records, curves, probes), written under ``dest``
    (``dest/<folder>/...``); returns ``dest / folder``. Nothing comes from the working tree."""
    import io
    import tarfile

    out = subprocess.run(
        ["git", "archive", "--format=tar", "HEAD", folder],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=True,
    )
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return dest / folder
