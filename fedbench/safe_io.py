"""Tensor files that can be received from someone else without running their code.

``torch.load(weights_only=False)`` unpickles arbitrary objects, so a planted checkpoint or cache
file would execute code during a normal run. Every torch file fedbench reads goes through
:func:`load_tensors`, which only accepts tensors and plain data (dicts, lists, tuples, numbers,
strings) through torch's restricted unpickler.

Checkpoints and cache files are also signed (:func:`save_sealed` / :func:`load_sealed`): the
payload is serialised to bytes and its HMAC-SHA256 under this user's key (:mod:`fedbench.signing`)
is stored beside it in one file. A file whose bytes do not match (a flipped bit that turns a weight
into 1e37, a truncated copy, a hand edit re-sealed with a plain checksum) or that was signed with
another key (someone else's checkpoint) is refused rather than resumed into different numbers.

Every torch file is serialised in memory and then written with :func:`atomic_write`: torch's own
writer reports a full disk as a ``RuntimeError`` ("file write failed"), a plain ``write`` as the
``OSError`` (ENOSPC) it is, with the file's name attached, which the CLI turns into one line.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

SEALED_FORMAT = "fedbench-sealed-2"  # 1: a SHA-256 anyone can recompute, no longer accepted


class UnsafeOrCorruptFile(Exception):
    """The file is not a tensors-and-plain-data torch file, or its signature does not verify."""


def writable_folder(folder: Path, what: str, fix: str) -> Path:
    """Create ``folder`` if needed; one line (``what``: problem; ``fix``) when it is a file, cannot
    be created, or is not writable."""
    from fedbench.errors import ConfigError

    folder = Path(folder)
    for part in [folder, *folder.parents]:
        if part.exists() and not part.is_dir():
            raise ConfigError(f"{what}: {part} is a file, not a folder; {fix}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{what}: cannot create {folder} ({err.strerror}); {fix}") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: {folder} is not writable; {fix}")
    return folder


TMP_PREFIX = ".tmp-"  # readers of a folder skip names starting with this
FILE_MODE = 0o644  # mkstemp creates 0600; results, caches and boards are meant to be shared


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(fh)`` on a temp file next to ``path``, fsync it, move it onto ``path`` and fsync
    the folder: the one writer of every file fedbench keeps (records, boards, checkpoints, caches).

    ``path`` is therefore always either the old complete file or the new complete one, also after
    a power cut. The temp file sits in the destination folder because :func:`os.replace` is only
    atomic within one filesystem; a failure inside ``write`` leaves the old file untouched (the temp
    file is removed and the error re-raised). The result has mode :data:`FILE_MODE`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except OSError as err:
        _remove_quietly(tmp)
        if err.filename is None:  # a failed write() names no file: name the one being written
            raise OSError(err.errno, err.strerror or str(err), str(path)) from err
        raise
    except BaseException:
        _remove_quietly(tmp)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    """Atomically write UTF-8 ``text`` to ``path`` (see :func:`atomic_write`)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data))


def torch_bytes(obj: Any) -> bytes:
    """``obj`` serialised by ``torch.save``, in memory."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through :func:`atomic_write` (serialised first: see the module docstring)."""
    data = torch_bytes(obj)
    atomic_write(path, lambda fh: fh.write(data))


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def fsync_dir(folder: Path) -> None:
    """Persist a rename in ``folder``; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_tensors(source: Path | io.BytesIO) -> Any:
    """Load a torch file holding only tensors and plain data; anything else raises
    :class:`UnsafeOrCorruptFile` (and nothing in the file is executed)."""
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError for foreign objects, RuntimeError when truncated
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise UnsafeOrCorruptFile(f"{type(err).__name__}: {first[:160]}") from err


def save_sealed(obj: Any, path: Path) -> None:
    """Write ``obj`` (tensors and plain data) with an HMAC of its serialised bytes, atomically."""
    from fedbench import signing

    blob = torch_bytes(obj)
    sealed = {
        "format": SEALED_FORMAT,
        "key_id": signing.key_id(),
        "hmac": signing.tag(blob),
        "payload": torch.frombuffer(bytearray(blob), dtype=torch.uint8),
    }
    atomic_torch_save(sealed, path)


def load_sealed(path: Path) -> Any:
    """The object written by :func:`save_sealed` with this user's key; :class:`UnsafeOrCorruptFile`
    (saying which) if the file is not one, was signed with another key, or its payload does not
    match its signature."""
    from fedbench import signing

    outer = load_tensors(Path(path))
    if not isinstance(outer, dict) or outer.get("format") != SEALED_FORMAT:
        old = isinstance(outer, dict) and outer.get("format") == "fedbench-sealed-1"
        raise UnsafeOrCorruptFile(
            "made before fedbench signed its files, so it cannot be verified"
            if old
            else "not a signed fedbench file"
        )
    payload = outer.get("payload")
    if not isinstance(payload, torch.Tensor) or payload.dtype != torch.uint8:
        raise UnsafeOrCorruptFile("signed file without a byte payload")
    if outer.get("key_id") != signing.key_id():
        raise UnsafeOrCorruptFile(
            "signed with another key: made by another user or machine, not produced here"
        )
    blob = payload.numpy().tobytes()
    if not signing.verifies(blob, outer.get("hmac")):
        raise UnsafeOrCorruptFile(
            "signature (HMAC checksum) mismatch: its bytes changed after it was written here"
        )
    return load_tensors(io.BytesIO(blob))
