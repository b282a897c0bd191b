"""Provenance stamped on every run record: code version, library versions, time.

A leaderboard number is only auditable if one can tell which code and which libraries produced it.
These helpers never raise: a run that finished must not be lost because ``git`` is missing or a
package has no metadata; they report ``"unknown"`` / ``None`` instead.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["git_commit", "now_iso", "package_versions"]

# Distribution names (as pip knows them) of the libraries whose versions change results.
_TRACKED = {
    "torch": "torch",
    "lightning": "lightning",
    "torchmetrics": "torchmetrics",
    "transformers": "transformers",
    "numpy": "numpy",
    "scipy": "scipy",
    "fedbench": "fedbench",
}


PACKAGE_DIR = Path(__file__).resolve().parent.parent


OUTPUT_FOLDERS = ("results", "leaderboards")  # written by runs; never make a checkout dirty


def git_commit(path: str | Path = PACKAGE_DIR) -> str:
    """Return the HEAD commit of the repository containing ``path`` (by default the fedbench package's
    own checkout, wherever the command runs from), with ``-dirty`` when tracked
    files have uncommitted changes, or ``"unknown"`` outside a git checkout (e.g. a pip install).

    Untracked files do not count as dirty: results folders and caches live in the tree. Nor do
    changes under the top-level ``results/`` and ``leaderboards/`` folders: they are what runs
    write (committed boards and their records), so without this every bench after the first in a
    checkout would stamp its runs dirty because the one before rewrote the board.
    """
    commit = _git(path, "rev-parse", "HEAD")
    if not commit:
        return "unknown"
    outputs = [f":(top,exclude){folder}" for folder in OUTPUT_FOLDERS]
    status = _git(path, "status", "--porcelain", "--untracked-files=no", "--", ":(top)", *outputs)
    return f"{commit}-dirty" if status else commit


def package_versions() -> dict[str, str | None]:
    """Versions of python, the result-relevant libraries and the platform, and the CPU's kernels
    (``cpu``) where torch is loaded; ``None`` if not installed.

    Read from installed metadata rather than by importing, so stamping a record stays instant and
    does not pull torch into processes (like leaderboard rendering) that do not need it.
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in _TRACKED.items():
        versions[key] = dist_version(dist)
    if versions["fedbench"] is None:
        fedbench = sys.modules.get("fedbench")
        versions["fedbench"] = getattr(fedbench, "__version__", None)
    versions["platform"] = platform.platform()
    if "torch" in sys.modules:  # a process that trained: the kernels its numbers came from
        from fedbench.hardware import cpu_numerics

        versions["cpu"] = cpu_numerics()
    return versions


def now_iso() -> str:
    """Current UTC time as ISO-8601 with offset, e.g. ``2025-01-31T12:00:00.123456+00:00``.

    UTC with microseconds so that ``created`` strings from different machines sort correctly and
    two records written in the same second still order (the leaderboard keeps the newest).
    """
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def dist_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(path: str | Path, *args: str) -> str:
    """Output of ``git -C path args`` stripped, or ``""`` when git is missing or fails."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
