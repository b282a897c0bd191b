"""Where frozen, deterministic artefacts (image features, the pretrained projection) are cached.

``FEDBENCH_CACHE`` overrides the default ``~/.cache/fedbench``. Torch-file caches (:func:`cached`:
the image bank, FedMVP's completion) are written atomically and signed with this user's key
(:func:`~fedbench.safe_io.save_sealed`), and read back with torch's restricted loader (tensors and
plain data only, nothing executed); a file that does not load that way, was signed elsewhere or
edited since, or whose content is not what the builder makes, is reported in one line and
rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fedbench.errors import ConfigError
from fedbench.safe_io import UnsafeOrCorruptFile, atomic_torch_save, load_sealed, save_sealed, writable_folder

__all__ = ["atomic_torch_save", "cache_dir", "cache_key", "cached"]


def cache_dir() -> Path:
    """The cache folder, created if needed; one clear line when it cannot be used."""
    value = os.environ.get("FEDBENCH_CACHE")
    if value is not None and not value.strip():
        raise ConfigError(
            "FEDBENCH_CACHE is set but empty; unset it (default ~/.cache/fedbench) or set it to a folder"
        )
    root = Path(value) if value else Path.home() / ".cache" / "fedbench"
    return writable_folder(root, "cache folder (FEDBENCH_CACHE)", "point FEDBENCH_CACHE at a writable folder")


def cache_key(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def cached(path: Path, build: Callable[[], Any], valid: Callable[[Any], bool] | None = None) -> Any:
    """Load ``path`` if it is a safe torch file signed here whose content passes ``valid``; else
    build, save (signed) and return the object."""
    if path.exists():
        reason = None
        try:
            obj = load_sealed(path)
        except UnsafeOrCorruptFile as err:  # truncated, unsigned, signed elsewhere or a pickle: never trusted
            reason = str(err)
        else:
            if valid is None or _passes(valid, obj):
                return obj
            reason = "its content is not what this cache holds"
        warnings.warn(f"cache file {path} is unusable ({reason}); rebuilding it", stacklevel=2)
    obj = build()
    save_sealed(obj, path)
    return obj


def _passes(valid: Callable[[Any], bool], obj: Any) -> bool:
    try:
        return bool(valid(obj))
    except Exception:
        return False
