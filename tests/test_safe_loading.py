"""Checkpoint and cache files are read without executing anything in them, and a checkpoint whose
bytes changed is refused instead of resumed into different numbers."""

import os
import pickle
import warnings

import pytest
import torch

from fedbench.cache.folder import cache_dir, cached
from fedbench.errors import CheckpointError, ConfigError
from fedbench.federation.loop import run_experiment
from fedbench.federation.resolve import run_id_of
from fedbench.safe_io import load_sealed, save_sealed


class _Payload:
    """Unpickling this object calls os.system, which creates ``marker``: the side effect an
    attacker would want. The test checks that the marker never appears."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _plant(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump({"version": 2, "evil": _Payload(marker)}, fh)
    # the planted file is a working exploit against an unrestricted loader
    assert not marker.exists()


def _checkpoint_path(cfg, tmp_path):
    return tmp_path / "results" / "tiny" / "checkpoints" / f"{run_id_of(cfg)}.pt"


def test_planted_pickle_checkpoint_does_not_run(tiny_cfg, tmp_path):
    cfg = tiny_cfg("fedavg", rounds=2)
    marker = tmp_path / "pwned"
    _plant(_checkpoint_path(cfg, tmp_path), marker)
    with pytest.raises(CheckpointError, match="delete it") as err:
        run_experiment(cfg)
    assert not marker.exists()
    assert "\n" not in str(err.value)


def test_planted_pickle_cache_file_does_not_run_and_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "pwned"
    path = cache_dir() / "bank.pt"
    _plant(path, marker)
    with pytest.warns(UserWarning, match="unusable"):
        obj = cached(path, lambda: {"bank": torch.ones(2)})
    assert not marker.exists()
    assert torch.equal(obj["bank"], torch.ones(2))


def test_cache_file_with_foreign_content_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    path = cache_dir() / "bank.pt"
    save_sealed({"something": "else"}, path)  # a signed torch file that is not a bank
    builds = []

    def build():
        builds.append(1)
        return {"bank": torch.zeros(3)}

    with pytest.warns(UserWarning, match="content"):
        obj = cached(path, build, valid=lambda o: "bank" in o)
    assert builds == [1] and torch.equal(obj["bank"], torch.zeros(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt file is now accepted silently
        assert torch.equal(cached(path, build, valid=lambda o: "bank" in o)["bank"], torch.zeros(3))
    assert builds == [1]


@pytest.mark.parametrize("made", ["unsigned", "another key", "edited"])
def test_cache_file_not_signed_here_is_rebuilt(made, tmp_path, monkeypatch):
    """A cache file is signed like a checkpoint: one received from elsewhere or edited since it was
    written here is rebuilt (with one warning saying why), even when its content looks right."""
    from fedbench import signing

    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    path = cache_dir() / "bank.pt"
    planted = {"bank": torch.full((2,), 7.0)}
    if made == "unsigned":
        torch.save(planted, path)
    elif made == "another key":
        with monkeypatch.context() as m:
            m.setenv(signing.KEY_ENV, str(tmp_path / "other" / "key"))
            save_sealed(planted, path)
    else:
        stored, edited = torch.tensor([1234.5, 6789.25]), torch.tensor([1234.5, 7.0])
        save_sealed({"bank": stored}, path)
        blob = path.read_bytes()
        assert blob.count(stored.numpy().tobytes()) == 1
        path.write_bytes(blob.replace(stored.numpy().tobytes(), edited.numpy().tobytes()))  # edited in place
    says = {
        "unsigned": "not a signed fedbench file",
        "another key": "signed with another key",
        "edited": "mismatch",
    }[made]
    with pytest.warns(UserWarning, match=says):
        obj = cached(path, lambda: {"bank": torch.ones(2)}, valid=lambda o: "bank" in o)
    assert torch.equal(obj["bank"], torch.ones(2))
    assert torch.equal(load_sealed(path)["bank"], torch.ones(2))  # the rebuilt file is signed here


def _resealed_with_sha256(payload):
    """What an editor without the key can do: re-seal an edited payload with a fresh SHA-256 in
    the format fedbench used before it signed files (and in the current format, with a made-up tag)."""
    import hashlib
    import io

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    blob = buffer.getvalue()
    body = torch.frombuffer(bytearray(blob), dtype=torch.uint8)
    old = {"format": "fedbench-sealed-1", "sha256": hashlib.sha256(blob).hexdigest(), "payload": body}
    new = {
        "format": "fedbench-sealed-2",
        "key_id": None,
        "hmac": hashlib.sha256(blob).hexdigest(),
        "payload": body,
    }
    return old, new


def test_edited_and_resealed_checkpoint_is_refused(tiny_cfg, tmp_path):
    """The issue's case: a checkpoint edited and re-sealed with a recomputed checksum resumed
    silently. Without the key no edit can be sealed so that it verifies."""
    from fedbench import signing

    cfg = tiny_cfg("fedavg", rounds=3)
    assert run_experiment(cfg, stop_after_rounds=1) is None
    path = _checkpoint_path(cfg, tmp_path)
    ckpt = load_sealed(path)
    key = next(iter(ckpt["global_state"]))
    ckpt["global_state"][key].view(-1)[0] = 1e37
    old, new = _resealed_with_sha256(ckpt)
    new["key_id"] = signing.key_id()  # the key's public id is in every file: copying it does not help
    for forged, says in ((old, "made before fedbench signed"), (new, "signature (HMAC checksum) mismatch")):
        torch.save(forged, path)
        with pytest.raises(CheckpointError, match="delete it to restart") as err:
            run_experiment(cfg)
        assert says in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_checkpoint_made_with_another_key_is_refused(tiny_cfg, tmp_path, monkeypatch):
    from fedbench import signing

    cfg = tiny_cfg("fedavg", rounds=3)
    monkeypatch.setenv(signing.KEY_ENV, str(tmp_path / "someone-else" / "key"))
    assert run_experiment(cfg, stop_after_rounds=1) is None  # a colleague's checkpoint, sent over
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="signed with another key") as err:
        run_experiment(cfg)
    assert str(_checkpoint_path(cfg, tmp_path)) in str(err.value)


def test_single_flipped_byte_is_refused(tmp_path):
    path = tmp_path / "state.pt"
    save_sealed({"w": torch.arange(1000, dtype=torch.float32)}, path)
    blob = bytearray(path.read_bytes())
    data = torch.load(path, weights_only=True)["payload"].numpy().tobytes()
    # find the float 500.0 of the payload inside the file and flip a bit of its exponent
    needle = torch.tensor([500.0]).numpy().tobytes()
    at = bytes(blob).index(needle, bytes(blob).index(data[:64]))
    blob[at + 3] ^= 0x40
    path.write_bytes(bytes(blob))
    from fedbench.safe_io import UnsafeOrCorruptFile

    with pytest.raises(UnsafeOrCorruptFile, match="HMAC checksum"):
        load_sealed(path)


@pytest.mark.parametrize("value, problem", [("", "empty"), ("FILE", "is a file")])
def test_bad_cache_folder_is_one_line(value, problem, tmp_path, monkeypatch):
    if value == "FILE":
        value = str(tmp_path / "a-file")
        (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("FEDBENCH_CACHE", value)
    with pytest.raises(ConfigError, match=problem):
        cache_dir()
