"""The CLI's one-line messages for errors raised by the libraries it calls (jsonargparse, the OS,
torch's writer), which say what went wrong in their own words, over several lines, or not at all
(jsonargparse's "Expected a <class 'float'>. Got value: nan" does not say nan is the problem)."""

from __future__ import annotations

import errno
import re

_EXPECTED = re.compile(r"""Parser key "([^"]+)":\s*Expected a <class '(\w+)'>\. Got value: (\S+)""")
NOT_FINITE = {
    "nan",
    "+nan",
    "-nan",
    "inf",
    "+inf",
    "-inf",
    "infinity",
    "+infinity",
    "-infinity",
    ".nan",
    ".inf",
    "-.inf",
}


def parse_error_line(err: Exception) -> str:
    """jsonargparse's multi-line type error as one line naming the field (and, for nan/inf, why)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    found = _EXPECTED.search(" ".join(lines))
    if found is None:
        return " ".join(lines[:3])
    key, kind, value = found.groups()
    if value.lower() in NOT_FINITE:
        return f"{key}: {value} is not a finite number; give a finite {kind}"
    return f"{key}: expected a {kind}, got {value!r}"


DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def os_error_line(err: OSError) -> str:
    where = f" {err.filename}" if err.filename else ""
    if err.errno in DISK_FULL:
        return (
            f"the disk is full (writing{where}); free space or set tracking.results_dir / FEDBENCH_CACHE to "
            "another disk; finished rounds and runs are kept"
        )
    return f"cannot write or read{where} ({err.strerror or err}); free space or choose another folder"


def is_torch_write_failure(err: RuntimeError) -> bool:
    """torch's writer reports a failed write (ENOSPC) as a RuntimeError, not an OSError."""
    text = str(err)
    return "file write failed" in text or "PytorchStreamWriter failed" in text or "unexpected pos" in text


TORCH_WRITE_FAILED = (
    'torch could not write a file ("file write failed": the disk is most likely full); free space or set '
    "tracking.results_dir / FEDBENCH_CACHE to another disk; finished rounds and runs are kept"
)
