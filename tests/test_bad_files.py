"""The bad-input table, continued for files (issue 21, items 3, 5 and 7): weights folders, data
downloads, the papers' numbers and the disk store's state files. Each case ends in one line (no
traceback) that names the file and says what to do; nothing pickled is ever unpickled."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from data_fixtures import FOOD, data_env, make_cifar_binary, make_food101, truncate  # noqa: F401
from test_data_prepare import Echo, _prepare_fails

from fedbench.data.layouts import STANDIN_MARKER
from fedbench.data.prepare import prepare_dataset
from fedbench.errors import CheckpointError, ConfigError, DataError


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# ----- weights folders (item 5) -------------------------------------------------------------------
class _Payload:
    """Unpickling this creates ``marker``: what a planted pickle would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _vit_folder(tmp_path, damage):
    from hf_fixtures import tiny_vit_dir

    folder = tmp_path / "weights"
    shutil.copytree(tiny_vit_dir(), folder)
    damage(folder)
    return folder


def _pickled_only(folder):
    (folder / "model.safetensors").unlink()
    with open(
        folder / "pytorch_model.bin", "wb"
    ) as fh:  # a working exploit against torch.load(weights_only=False)
        pickle.dump({"w": _Payload(folder.parent / "pwned")}, fh)


WEIGHTS = [  # (damage, what the line says, the file it names)
    (lambda f: truncate(f / "model.safetensors"), "is truncated or damaged", "model.safetensors"),
    (lambda f: (f / "config.json").write_text("{not json"), "is not valid JSON", "config.json"),
    (lambda f: (f / "config.json").write_bytes(b"\xff\xfe\x00garbage"), "is not UTF-8 text", "config.json"),
    (lambda f: (f / "config.json").write_text("[1, 2]"), "is not a model config", "config.json"),
    (
        _pickled_only,
        "holds only pytorch_model.bin, weights in a pickled format that fedbench never loads",
        "",
    ),
]


@pytest.mark.parametrize(
    ("damage", "says", "file"),
    WEIGHTS,
    ids=["truncated", "garbage config", "binary config", "list config", "pickle only"],
)
def test_a_damaged_weights_folder_is_one_line_naming_the_file(tmp_path, monkeypatch, damage, says, file):
    from fedbench.backbones.vit import ViTOptions, build_vit

    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    folder = _vit_folder(tmp_path, damage)
    with pytest.raises(DataError) as err:
        build_vit(ViTOptions(model=str(folder)))
    line = _one_line(err)
    assert line.startswith("backbone.options.model: ") and says in line and str(folder / file) in line
    assert (
        "not found" not in line and "hf download" not in line
    )  # the folder is there: downloading a path cannot help
    assert not (tmp_path / "pwned").exists()
    if file == "":
        assert "convert them to model.safetensors" in line


# ----- data prepare (item 7) ----------------------------------------------------------------------
def test_cifar_batch_cut_on_a_record_boundary_is_refused(tmp_path):
    """Half of a 20-record batch file is 10 whole records: a size check alone passes it."""
    make_cifar_binary(tmp_path, "cifar10")
    victim = tmp_path / "cifar-10-batches-bin" / "data_batch_2.bin"
    truncate(victim)
    assert victim.stat().st_size % 3073 == 0
    lines = _prepare_fails("cifar10", tmp_path)
    assert len(lines) == 1 and "truncated batch file" in lines[0] and str(victim) in lines[0]
    assert (
        f"truncated batch file: {victim} (the train files hold 90 records, the stand-in's marker says 100)"
        in lines[0]
    )
    from fedbench.cli import main

    assert main(["data", "prepare", "cifar10", "--root", str(tmp_path)]) == 2  # was 0, with a note


def test_a_real_cifar_download_is_counted_against_the_release(tmp_path):
    make_cifar_binary(tmp_path, "cifar100")
    (
        tmp_path / STANDIN_MARKER
    ).unlink()  # no marker: the files must hold the release's 50,000 and 10,000 records
    lines = _prepare_fails("cifar100", tmp_path)
    assert len(lines) == 2
    assert (
        f"{tmp_path / 'cifar-100-binary' / 'train.bin'} holds 60 records, the release's holds 50,000"
        in lines[0]
    )
    assert "test.bin holds 60 records, the release's holds 10,000" in lines[1]


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"\x80\x03garbage\xff" * 40, "is not UTF-8 text"), (b"one\ntwo\n", "has 2 names, the release has 100")],
)
def test_a_garbage_label_names_file_is_one_line(tmp_path, content, says):
    make_cifar_binary(tmp_path, "cifar100")
    names = tmp_path / "cifar-100-binary" / "fine_label_names.txt"
    names.write_bytes(content)
    lines = _prepare_fails("cifar100", tmp_path)
    assert len(lines) == 1 and str(names) in lines[0] and says in lines[0]


@pytest.mark.parametrize(("release", "noted"), [(0, False), (1, True)])
def test_food101_download_is_counted_like_the_release(tmp_path, monkeypatch, release, noted):
    """The release's count is of images; one fixture image has no text and is dropped, as the
    real download's 48 are (90,656 kept of 90,704): a complete download is not 'incomplete'."""
    from fedbench.data import sources

    fx = make_food101(tmp_path)
    images = sum(len(v) for v in fx["files"].values())
    assert images == 5 * len(FOOD) and len(fx["texts"]) == images - 1
    layout = sources.LAYOUTS["food101"]
    monkeypatch.setitem(sources.LAYOUTS, "food101", dataclasses.replace(layout, full_rows=images + release))
    echo = Echo()
    prepare_dataset("food101", tmp_path, echo=echo)
    notes = [line for line in echo.out if "full release" in line]
    assert notes == (
        [f"food101: note: the full release has {images + 1:,} samples; this download has {images:,}"]
        if noted
        else []
    )


# ----- the papers' numbers (item 7) ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "typo", "hint"),
    [("method", "fedprme", "did you mean 'fedprime'?"), ("dataset", "food-101", "did you mean 'food101'?")],
)
def test_an_unregistered_name_in_the_papers_numbers_is_one_line(tmp_path, field, typo, hint):
    from fedbench.tracking.paper_numbers import load_paper_numbers

    table = {
        "paper": "P",
        "source": "T1",
        "dataset": "food101",
        "metric": "accuracy",
        "setting": {"missing.type": "text"},
        "numbers": [{"method": "fedprime", "condition": "as_train", "value": 70.0}],
    }
    if field == "method":
        table["numbers"][0]["method"] = typo
    else:
        table["dataset"] = typo
    path = tmp_path / "numbers.yaml"
    path.write_text(json.dumps({"tables": [table]}))  # JSON is YAML
    with pytest.raises(ConfigError) as err:
        load_paper_numbers(path)
    line = _one_line(err)
    assert str(path) in line and f"{field} {typo!r} is not registered" in line and hint in line


# ----- the disk personal store (item 3) -----------------------------------------------------------
def _disk_store(tmp_path):
    from fedbench.federation.personal_store import PersonalStore

    store = PersonalStore({"p": torch.zeros(4)}, 3, "disk", tmp_path / "personal-store")
    store.set(1, {"p": torch.arange(4.0)})
    (path,) = store._backend.folder.glob("*.safetensors")
    return store, path


def _rewrite_in_place(path):
    with open(path, "r+b") as fh:  # same inode, same size, other bytes: what a mapped reader would see change
        fh.seek(-4, os.SEEK_END)
        fh.write(b"\x00\x00\x80\x7f")


def _replace_by_rename(path):
    from safetensors.torch import save_file

    other = path.with_name("other.tmp")
    save_file({"p": torch.full((4,), 9.0)}, str(other))
    os.replace(other, path)


@pytest.mark.parametrize(
    "change",
    [_rewrite_in_place, truncate, _replace_by_rename, Path.unlink],
    ids=["rewritten in place", "truncated", "replaced by rename", "deleted"],
)
def test_a_state_file_changed_under_the_store_is_one_line(tmp_path, change):
    store, path = _disk_store(tmp_path)
    assert torch.equal(store.get(1)["p"], torch.arange(4.0))
    change(path)
    with pytest.raises(CheckpointError) as err:
        store.get(1)
    line = _one_line(err)
    assert (
        str(path) in line and "changed while the run used it" in line and "run the same command again" in line
    )
    store.close()
    assert not (tmp_path / "personal-store").exists()


def test_a_run_whose_state_file_changes_stops_in_one_line_and_leaves_no_folder(tiny_cfg, tmp_path):
    from fedbench.federation.callbacks import Callback, default_callbacks
    from fedbench.federation.loop import run_experiment

    class Meddler(Callback):  # another process writing into the store's folder after round 1
        def on_round_end(self, fed, entry):
            if entry["round"] == 1:
                for path in fed.personal._backend.folder.glob("*.safetensors"):
                    _rewrite_in_place(path)

    cfg = tiny_cfg("local", rounds=2)  # every client keeps its whole model as personal state
    cfg.federation.personal_store = "disk"
    with pytest.raises(CheckpointError, match="changed while the run used it") as err:
        run_experiment(cfg, callbacks=[*default_callbacks(), Meddler()])
    _one_line(err)
    assert not (Path(cfg.tracking.results_dir) / "tiny" / "personal-store").exists()


def test_a_killed_runs_store_folder_is_removed_by_the_next_store(tmp_path):
    from fedbench.federation import personal_store as ps

    parent = tmp_path / "personal-store"
    dead = parent / f"{_DiskPrefix()}999999999-{ps._HOST}-abc"  # no such pid
    other_host = parent / f"{_DiskPrefix()}999999999-00000000-abc"  # a machine sharing the folder
    for folder in (dead, other_host):
        folder.mkdir(parents=True)
        (folder / "0.safetensors").write_bytes(b"x")
    store = ps.PersonalStore({"p": torch.zeros(1)}, 2, "disk", parent)
    assert not dead.exists() and other_host.exists() and store._backend.folder.exists()
    store.close()


def _DiskPrefix() -> str:  # noqa: N802
    from fedbench.federation.personal_store import _DiskBackend

    return _DiskBackend.PREFIX
