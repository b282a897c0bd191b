"""Whether a run record was produced here: signed with this user's key, or committed to the
repository it sits in and unchanged since.

A record is plain JSON anyone can edit, and its run id is a public hash of its config, so neither
says who made the numbers. fedbench therefore signs every record it writes: ``signature`` holds the
id of this user's key and an HMAC-SHA256 (:mod:`fedbench.signing`) of the record's canonical JSON
without the ``signature`` field. The board believes a record only when that verifies, or when the
file is tracked by git and its bytes equal the blob committed at HEAD (the reference records that
come with a clone were made on another machine; the repository's history vouches for them, and
their bytes stay exactly as committed). Anything else is *not produced here*: the board shows it
in its own marked section and never averages it with the user's runs.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from fedbench import signing

SIGNATURE = "signature"  # the record field holding {"key_id": ..., "hmac": ...}
COMMITTED = "committed"  # how a record verified against git is described


def canonical_bytes(record: dict[str, Any]) -> bytes:
    """The bytes a record's signature covers: its canonical JSON without the signature field.

    ``record`` must be plain JSON data as read back from a file (string keys, no NaN), so that the
    writer (which signs what it is about to write, after a JSON round trip) and every reader agree.
    """
    body = {k: v for k, v in record.items() if k != SIGNATURE}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
        "utf-8"
    )


def signed(plain: dict[str, Any]) -> dict[str, Any]:
    """``plain`` (JSON data) with this user's signature."""
    body = {k: v for k, v in plain.items() if k != SIGNATURE}
    return {**body, SIGNATURE: {"key_id": signing.key_id(), "hmac": signing.tag(canonical_bytes(body))}}


def signature_problem(record: dict[str, Any]) -> str | None:
    """Why ``record`` does not carry a valid signature of this user's key, or None when it does."""
    sig = record.get(SIGNATURE)
    if not isinstance(sig, dict):
        return "it carries no signature of this machine's key"
    if sig.get("key_id") != signing.key_id():
        return "it was signed with another key (made by another user or machine)"
    if not signing.verifies(canonical_bytes(record), sig.get("hmac")):
        return "it was edited after it was signed (its signature does not match its content)"
    return None


def provenance(
    path: Path | None, record: dict[str, Any], data: bytes | None = None, blobs: dict[str, str] | None = None
) -> tuple[str | None, str | None]:
    """(how ``record`` was verified: "signed" or "committed", or None; why not, when None).
    ``data`` are the file's bytes and ``blobs`` its folder's :func:`head_blobs`, when already read."""
    problem = signature_problem(record)
    if problem is None:
        return "signed", None
    if path is not None and committed_unchanged(Path(path), data, blobs):
        return COMMITTED, None
    return None, problem


def committed_unchanged(path: Path, data: bytes | None = None, blobs: dict[str, str] | None = None) -> bool:
    """True when ``path`` is tracked by the git repository around it and its bytes (``data``, read
    if not given) equal the blob committed at HEAD, so a committed record edited in the working tree
    is not believed."""
    path = Path(path).absolute()
    blob = (head_blobs(path.parent) if blobs is None else blobs).get(path.name)
    if blob is None:
        return False
    try:
        data = path.read_bytes() if data is None else data
    except OSError:
        return False
    algorithm = hashlib.sha1 if len(blob) == 40 else hashlib.sha256  # a sha256 repository has 64-digit ids
    return algorithm(b"blob %d\0" % len(data) + data).hexdigest() == blob


def head_blobs(folder: Path) -> dict[str, str]:
    """{file name: blob id at HEAD} for the files directly in ``folder`` (one ``git ls-tree``; {}
    outside a repository or without git)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "ls-tree", "-z", "HEAD", "--", "."],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0:
        return {}
    blobs = {}
    for entry in out.stdout.decode("utf-8", "replace").split("\0"):
        meta, _, name = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and "/" not in name:
            blobs[name] = parts[2]
    return blobs
