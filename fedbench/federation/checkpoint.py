"""Round checkpoints: a run killed mid-way resumes at the last finished round.

Everything a round depends on is in the checkpoint (global state, every client's personal state,
the validation history and the best-validated state); everything random is derived from the seed
tree by (round, client), so a resumed run ends with the same numbers as an uninterrupted one.

Checkpoints are what people pass around to resume a sweep, so they are read with torch's
restricted loader (tensors and plain data only) and carry a SHA-256 of their payload: a planted
pickle, a truncated copy or a flipped bit is refused with one line, never executed or resumed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedbench.errors import CheckpointError
from fedbench.safe_io import UnsafeOrCorruptFile, load_sealed, save_sealed

CHECKPOINT_VERSION = 2


def save_checkpoint(path: Path, run_id: str, payload: dict[str, Any]) -> None:
    save_sealed({"version": CHECKPOINT_VERSION, "run_id": run_id, **payload}, path)


def load_checkpoint(path: Path, run_id: str) -> dict[str, Any] | None:
    """The checkpoint's payload, None when there is none; a one-line error when it is unusable."""
    if not path.exists():
        return None
    try:
        ckpt = load_sealed(path)
    except UnsafeOrCorruptFile as err:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a fedbench checkpoint ({err}); delete it to restart this run from round 1"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path} has an unknown format; delete it to restart this run from round 1")
    if ckpt.get("run_id") != run_id:
        raise CheckpointError(f"checkpoint {path} belongs to another configuration; delete it or change tracking.results_dir")
    return ckpt
