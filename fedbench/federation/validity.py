"""Checks that keep a run honest and its failures early: non-finite training (a diverged run is
stopped and recorded as such, never scored as valid) and an unusable results folder (found before
any training, not after the first round)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from fedbench.safe_io import writable_folder

STALE_TMP_SECONDS = 120  # temp files this old were left by a killed process (writes take < 1 s)


def all_finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def first_non_finite(round_index: int, results: list) -> dict[str, Any] | None:
    """{round, client, what} of the first client whose loss or returned tensors are not finite."""
    for res in results:
        if not math.isfinite(res.loss):
            return {"round": round_index + 1, "client": res.client_id, "what": f"training loss {res.loss}"}
        if not (all_finite(res.state) and all_finite(res.personal)):
            return {
                "round": round_index + 1,
                "client": res.client_id,
                "what": "non-finite values in the trained state",
            }
    return None


def check_writable(folder: Path) -> None:
    """One line when the results folder cannot take a record; also clears temp files that a killed
    process left behind (record ``.tmp-*`` files and checkpoint ``.*.tmp`` files)."""
    writable_folder(folder, "tracking.results_dir", "choose a writable results folder")
    now = time.time()
    for tmp in [*folder.glob(".tmp-*"), *(folder / "checkpoints").glob(".*.tmp")]:
        try:
            if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                tmp.unlink()
        except OSError:
            pass
