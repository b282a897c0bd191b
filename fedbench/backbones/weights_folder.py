"""Checks of a weights folder (a ``save_pretrained`` folder, or the HF cache's snapshot of a model
id) before transformers reads it, so that what is wrong with it is one line naming the file.

transformers reports a garbage ``config.json`` as the model not being found (and its advice, to
download a local path, cannot work), a truncated ``model.safetensors`` as a 35-line traceback, and
falls back to a pickled ``pytorch_model.bin`` when there is no safetensors file: unpickling runs
whatever a file carries, and fedbench never unpickles a file the user may have received. Each case
is checked here; a folder that is simply absent is left to the loader's "not found" line.
"""

from __future__ import annotations

import json
from pathlib import Path

from fedbench.errors import DataError

FIELD = "backbone.options.model"
SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
PICKLED = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")


def model_folder(model: str, local_files_only: bool) -> Path | None:
    """The folder ``model`` is read from: itself when it is a folder, else the HF cache's snapshot
    holding its ``config.json``; None when neither exists (nothing to check here)."""
    if Path(model).is_dir():
        return Path(model)
    from transformers.utils import cached_file

    try:
        config = cached_file(
            model,
            "config.json",
            local_files_only=True,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
        )
    except (OSError, ValueError):
        return None
    return Path(config).parent if config else None


def check_config(model: str, local_files_only: bool) -> Path | None:
    """The model's folder, after checking that its ``config.json`` (when present) is a JSON object."""
    folder = model_folder(model, local_files_only)
    if folder is None:
        return None
    config = folder / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            _refuse(
                f"{config} is not UTF-8 text", "download the model again or re-save it with save_pretrained"
            )
        except json.JSONDecodeError as err:
            _refuse(
                f"{config} is not valid JSON ({err.msg} at line {err.lineno})",
                "download the model again or re-save it with save_pretrained",
            )
        if not isinstance(data, dict) or not isinstance(data.get("model_type", ""), str):
            _refuse(
                f"{config} is not a model config (a JSON object with model_type)",
                "download the model again or re-save it with save_pretrained",
            )
    return folder


def check_weights(model: str, local_files_only: bool) -> None:
    """Refuse (one line naming the file) a folder whose config is garbage, whose weights exist only
    in a pickled format, or whose safetensors files are truncated or damaged."""
    folder = check_config(model, local_files_only)
    if folder is None:
        return
    safe = [folder / name for name in SAFETENSORS if (folder / name).is_file()]
    if not safe:
        pickled = [name for name in PICKLED if (folder / name).is_file()]
        if pickled:
            _refuse(
                f"{folder} holds only {pickled[0]}, weights in a pickled format that fedbench never loads "
                "(unpickling runs any code a file carries)",
                "convert them to model.safetensors where you trust their source (e.g. "
                "from_pretrained(...).save_pretrained(folder, safe_serialization=True)) or download the "
                "model's safetensors",
            )
        return  # no weights at all: the loader's "not found" line says how to get them
    for path in _shards(safe[0]):
        _check_safetensors(path)


def _shards(path: Path) -> list[Path]:
    """The safetensors files a folder's weights are in (one file, or the shards its index names)."""
    if not path.name.endswith(".index.json"):
        return [path]
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
        names = sorted(set(index["weight_map"].values()))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        _refuse(
            f"{path} is not a valid safetensors index",
            "download the model again or re-save it with save_pretrained",
        )
    shards = [path.parent / str(n) for n in names]
    absent = [p for p in shards if not p.is_file()]
    if absent:
        _refuse(
            f"{absent[0]} is missing ({len(absent)} of {len(shards)} weight shards named in {path.name})",
            "download the model again",
        )
    return shards


def _check_safetensors(path: Path) -> None:
    """Open ``path`` with safetensors (which checks that its header covers the file exactly)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            fh.keys()
    except (SafetensorError, OSError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        _refuse(
            f"{path} is truncated or damaged ({path.stat().st_size:,} bytes; safetensors: {first})",
            "download it again or re-save the model with save_pretrained",
        )


def _refuse(problem: str, fix: str) -> None:
    raise DataError(f"{FIELD}: {problem}; {fix}")
