"""The per-user signing key: created once (mode 0600, never replaced, also when processes race to
create it), refused in one line when others can read it or it is not a key, and its tags are the
standard HMAC-SHA256 of the data."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
import subprocess
import sys

import pytest
from processes import HANG_GUARD_S

from fedbench import signing
from fedbench.errors import ConfigError


@pytest.fixture
def key_file(tmp_path, monkeypatch):
    path = tmp_path / "config" / "fedbench" / "key"
    monkeypatch.setenv(signing.KEY_ENV, str(path))
    return path


def test_the_key_is_made_once_private_and_kept(key_file):
    assert not key_file.exists()
    key = signing.user_key()
    assert key_file.read_bytes() == key and len(key) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert signing._load_or_create.__wrapped__(str(key_file)) == key  # read back, not made again
    assert list(key_file.parent.iterdir()) == [key_file]  # no temp file left


def test_processes_racing_to_make_the_key_agree(key_file):
    code = "from fedbench import signing; print(signing.user_key().hex())"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
        )
        for _ in range(4)
    ]
    keys = {p.communicate(timeout=HANG_GUARD_S)[0].strip() for p in procs}
    assert len(keys) == 1 and keys == {key_file.read_bytes().hex()}


def test_tags_are_hmac_sha256_under_the_key(key_file):
    data = b"a record's canonical bytes"
    expected = hmac.new(signing.user_key(), data, hashlib.sha256).hexdigest()
    assert signing.tag(data) == expected and signing.verifies(data, expected)
    assert not signing.verifies(data + b" ", expected) and not signing.verifies(data, None)


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        (
            lambda p: (p.parent.mkdir(parents=True), p.write_bytes(os.urandom(32)), p.chmod(0o640)),
            "can be read by other users",
        ),
        (
            lambda p: (p.parent.mkdir(parents=True), p.write_bytes(b"short"), p.chmod(0o600)),
            "too few to be a key",
        ),
        (lambda p: p.mkdir(parents=True), "is not a file"),
    ],
)
def test_a_key_that_cannot_be_trusted_is_one_line(key_file, setup, says):
    setup(key_file)
    with pytest.raises(ConfigError) as err:
        signing.user_key()
    assert says in str(err.value) and str(key_file) in str(err.value) and "\n" not in str(err.value)


def test_an_empty_key_variable_is_one_line(monkeypatch):
    monkeypatch.setenv(signing.KEY_ENV, " ")
    with pytest.raises(ConfigError, match="FEDBENCH_KEY_FILE is set but empty"):
        signing.user_key()
