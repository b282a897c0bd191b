"""Round checkpoints: a run killed mid-way resumes at the last finished round.

Everything a round depends on is in the checkpoint (global state, every client's personal state,
the validation history and the best-validated state); everything random is derived from the seed
tree by (round, client), so a resumed run ends with the same numbers as an uninterrupted one.

A checkpoint is one main file plus a folder of personal-state shards beside it
(``<run_id>.pt`` and ``<run_id>.personal/``). Each round's checkpoint writes one shard holding
only the clients whose personal state changed since the previous checkpoint, then the main file,
whose manifest maps every client with a state of its own to the shard holding its latest state
(clients never sampled hold the initial state, which is rebuilt from the seed). Shards no manifest
references are removed after the main file is in place, so a crash at any point leaves a
consistent checkpoint.

Checkpoints are what people pass around to resume a sweep, so every file is read with torch's
restricted loader (tensors and plain data only) and carries an HMAC of its payload made with this
user's key (:mod:`fedbench.signing`): a planted pickle, a truncated copy, a flipped bit, a hand edit
(re-sealed or not) and a checkpoint made by another user or machine are refused with one line,
never executed or resumed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fedbench.errors import CheckpointError
from fedbench.methods.base import State
from fedbench.safe_io import UnsafeOrCorruptFile, load_sealed, save_sealed

CHECKPOINT_VERSION = 3
READABLE_VERSIONS = (2, 3)  # 2: every client's personal state inside the main file


def shard_folder(path: Path) -> Path:
    return Path(path).with_suffix(".personal")


def save_checkpoint(path: Path, run_id: str, payload: dict[str, Any]) -> None:
    save_sealed({"version": CHECKPOINT_VERSION, "run_id": run_id, **payload}, path)


def _load(path: Path, what: str) -> Any:
    try:
        return load_sealed(path)
    except UnsafeOrCorruptFile as err:
        raise CheckpointError(
            f"{what} {path} is refused ({err}); delete it to restart this run from round 1"
        ) from err


def load_checkpoint(path: Path, run_id: str) -> dict[str, Any] | None:
    """The checkpoint's payload, None when there is none; a one-line error when it is unusable."""
    if not path.exists():
        return None
    ckpt = _load(path, "checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"checkpoint {path} has an unknown format; delete it to restart this run from round 1"
        )
    if ckpt.get("run_id") != run_id:
        raise CheckpointError(
            f"checkpoint {path} belongs to another configuration; delete it or change tracking.results_dir"
        )
    return ckpt


def write_personal_shard(
    path: Path, run_id: str, next_round: int, states: dict[int, State]
) -> dict[int, str]:
    """Write the changed clients' ``states`` as one sealed shard; the manifest entries for them."""
    if not states:
        return {}
    name = f"r{next_round:05d}.pt"
    save_sealed(
        {"version": CHECKPOINT_VERSION, "run_id": run_id, "clients": states}, shard_folder(path) / name
    )
    return dict.fromkeys(states, name)


def load_personal(path: Path, run_id: str, *manifests: dict[int, str]) -> dict[str, dict[int, State]]:
    """Every shard the manifests name, read once each: {shard name: {client: state}}."""
    folder, out = shard_folder(path), {}
    for name in sorted({n for m in manifests for n in m.values()}):
        if "/" in name or "\\" in name or name.startswith("."):
            raise CheckpointError(
                f"checkpoint {path} names a shard outside its folder ({name!r}); delete it to restart this "
                "run from round 1"
            )
        shard_path = folder / name
        if not shard_path.exists():
            raise CheckpointError(
                f"checkpoint shard {shard_path} is missing; delete {path} to restart this run from round 1"
            )
        shard = _load(shard_path, "checkpoint shard")
        if (
            not isinstance(shard, dict)
            or shard.get("run_id") != run_id
            or not isinstance(shard.get("clients"), dict)
        ):
            raise CheckpointError(
                f"checkpoint shard {shard_path} belongs to another run; delete {path} to restart this run "
                "from round 1"
            )
        out[name] = shard["clients"]
    return out


def states_of(manifest: dict[int, str], shards: dict[str, dict[int, State]], path: Path) -> dict[int, State]:
    """{client: state} for a manifest, from the loaded shards."""
    try:
        return {int(c): shards[name][c] for c, name in manifest.items()}
    except KeyError as err:
        raise CheckpointError(
            f"checkpoint {path} names client {err} in a shard that lacks it; delete it to restart this run "
            "from round 1"
        ) from None


def remove_unreferenced_shards(path: Path, *manifests: dict[int, str]) -> None:
    folder = shard_folder(path)
    if not folder.is_dir():
        return
    live = {n for m in manifests for n in m.values()}
    for shard in folder.glob("r*.pt"):
        if shard.name not in live:
            shard.unlink(missing_ok=True)


def remove_shards(path: Path) -> None:
    """Remove the shard folder of a checkpoint whose main file is gone (the run finished)."""
    if not Path(path).exists():
        shutil.rmtree(shard_folder(path), ignore_errors=True)
