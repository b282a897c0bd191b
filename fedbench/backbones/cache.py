"""Where frozen, deterministic artefacts (image features, the pretrained projection) are cached.

``FEDBENCH_CACHE`` overrides the default ``~/.cache/fedbench``. Files are written atomically; a
file that cannot be read is reported once and rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def cache_dir() -> Path:
    root = Path(os.environ.get("FEDBENCH_CACHE", Path.home() / ".cache" / "fedbench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def atomic_torch_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cached(path: Path, build: Callable[[], Any]) -> Any:
    """Load ``path`` if it is a readable torch file, else build, save and return the object."""
    if path.exists():
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:  # a truncated or foreign file: rebuild rather than trust it
            warnings.warn(f"cache file {path} is unreadable ({type(err).__name__}); rebuilding it", stacklevel=2)
    obj = build()
    atomic_torch_save(obj, path)
    return obj
