"""This user's signing key, and HMAC-SHA256 tags made with it: how fedbench tells a file it wrote
itself from one edited by hand or produced elsewhere.

A checksum stored beside the data it covers proves nothing against someone who edits the data:
they recompute the checksum. A tag made with a key they do not have does. The key is 32 random
bytes in a file outside every results folder (``$FEDBENCH_KEY_FILE``, else
``$XDG_CONFIG_HOME/fedbench/key``, else ``~/.config/fedbench/key``), created on first use with mode
0600, so sharing a results folder, a checkpoint or a cache never shares the key.

What the tag protects: a file fedbench wrote with this key and that nobody changed since. What it
does not: anything done by someone who can read the key file (this user, root, a process running
as this user), and a file's *meaning* (a record signed here is still the result of whatever code
ran here). README ("Files you received") says the same to users.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from functools import lru_cache
from pathlib import Path

from fedbench.errors import ConfigError

KEY_BYTES = 32
KEY_ENV = "FEDBENCH_KEY_FILE"


def key_path() -> Path:
    """Where this user's key lives (see the module docstring); one line when the variable is empty."""
    value = os.environ.get(KEY_ENV)
    if value is not None:
        if not value.strip():
            raise ConfigError(
                f"{KEY_ENV} is set but empty; unset it (default ~/.config/fedbench/key) or name a file"
            )
        return Path(value).expanduser()
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "fedbench" / "key"


def user_key() -> bytes:
    """The key, created on first use (mode 0600, never replaced once written)."""
    return _load_or_create(str(key_path()))


@lru_cache(maxsize=4)
def _load_or_create(where: str) -> bytes:
    path = Path(where)
    if not path.exists():
        _create(path)
    fix = (
        f"delete {path} to make a new key (files signed with the old one will then count as not produced "
        "here)"
    )
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"signing key {path} is not a file; {fix}")
        key = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"signing key {path}: cannot read it ({err.strerror}); {fix}") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"signing key {path} can be read by other users (mode {stat.S_IMODE(mode):o}); run chmod 600 "
            f"{path}"
        )
    if len(key) < KEY_BYTES // 2:
        raise ConfigError(f"signing key {path} holds {len(key)} bytes, too few to be a key; {fix}")
    return key


def _create(path: Path) -> None:
    """Write a fresh key without ever replacing one another process wrote first (sweep workers and
    Ray actors may start at the same moment): a complete temp file is hard-linked into place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".tmp-key-{os.getpid()}-{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made the key first: use theirs
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as err:
        raise ConfigError(
            f"signing key {path}: cannot create it ({err.strerror}); set {KEY_ENV} to a file in a writable "
            "private folder"
        ) from None


def key_id() -> str:
    """A short public name of the key (a hash of it), so a tag made with another key can be told
    from a file edited after it was signed."""
    return hashlib.sha256(b"fedbench key id\0" + user_key()).hexdigest()[:16]


def tag(data: bytes) -> str:
    """HMAC-SHA256 of ``data`` under this user's key, as hex."""
    return hmac.new(user_key(), data, hashlib.sha256).hexdigest()


def verifies(data: bytes, expected: object) -> bool:
    """Whether ``expected`` is this user's tag of ``data`` (constant-time comparison)."""
    return isinstance(expected, str) and hmac.compare_digest(tag(data), expected)
