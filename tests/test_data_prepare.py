"""``fedbench data prepare`` / ``data list``: a missing file, a truncated image and a wrong checksum
each give one clear line and write nothing; a good download is converted once and reused while
its index files are unchanged."""

import json
import os

import data_fixtures as fx
import numpy as np
import pytest
from data_fixtures import build, data_env, make_cifar_binary, make_cub, make_mmimdb, truncate  # noqa: F401

from fedbench.data import prepare
from fedbench.data.commands import data_command, dataset_status
from fedbench.data.prepare import prepare_dataset
from fedbench.errors import ConfigError, DataError


class Echo:
    def __init__(self):
        self.out, self.err = [], []

    def __call__(self, line, file=None):
        (self.err if file is not None else self.out).append(line)


def _prepare_fails(name, root):
    echo = Echo()
    with pytest.raises(DataError, match="nothing was written") as err:
        prepare_dataset(name, root, echo=echo)
    assert "\n" not in str(err.value)
    return echo.err


def _nothing_written(root):
    cache = os.environ["FEDBENCH_CACHE"]
    return not (root / ".fedbench").exists() and not (
        os.path.isdir(cache) and os.path.exists(os.path.join(cache, "datasets", "prepared.json"))
    )


def test_missing_file_is_one_line_and_nothing_is_written(tmp_path):
    make_mmimdb(tmp_path)
    (tmp_path / "images" / "1000014.jpeg").unlink()
    lines = _prepare_fails("mmimdb", tmp_path)
    assert len(lines) == 1
    assert (
        "missing 1 of 28 posters" in lines[0]
        and "1000014.jpeg" in lines[0]
        and "archive.org/download/mmimdb" in lines[0]
    )
    assert _nothing_written(tmp_path)


def test_truncated_image_is_one_line_and_nothing_is_written(tmp_path):
    make_cub(tmp_path)
    victim = sorted((tmp_path / "CUB_200_2011" / "images" / "002.Laysan_Albatross").iterdir())[3]
    truncate(victim)
    lines = _prepare_fails("cub200", tmp_path)
    assert len(lines) == 1 and "truncated images: 1 of 30" in lines[0] and str(victim) in lines[0]
    assert _nothing_written(tmp_path)


def test_wrong_checksum_is_one_line_and_nothing_is_written(tmp_path):
    make_cifar_binary(tmp_path, "cifar10")
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"not the archive")
    lines = _prepare_fails("cifar10", tmp_path)
    assert len(lines) == 1
    assert "wrong checksum" in lines[0] and "c32a1d4ab5d03f1284b67883e8d87530" in lines[0]
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in lines[0]
    assert _nothing_written(tmp_path)


def test_each_problem_gets_its_own_line(tmp_path):
    make_mmimdb(tmp_path)
    (tmp_path / "images" / "1000014.jpeg").unlink()
    (tmp_path / "labels" / "1000021.json").unlink()
    (tmp_path / "mmimdb.tar.gz").write_bytes(b"partial download")
    lines = _prepare_fails("mmimdb", tmp_path)
    assert len(lines) == 3
    assert any("wrong checksum" in x and "sha256" in x for x in lines)
    assert any("1000014.jpeg" in x for x in lines) and any("1000021.json" in x for x in lines)


def test_prepare_writes_a_datasets_readable_copy_and_reuses_it(tmp_path):
    import datasets

    make_mmimdb(tmp_path)
    echo = Echo()
    target = prepare_dataset("mmimdb", tmp_path, echo=echo)
    assert target == tmp_path / ".fedbench" / "mmimdb"
    assert any("prepared 28 rows (train 14, dev 7, test 7) from the map layout" in x for x in echo.out)
    meta = json.loads((target / "meta.json").read_text())
    rows = datasets.Dataset.from_file(str(target / meta["rows_file"]))
    assert rows.num_rows == 28 and {"id", "split", "label", "texts", "image"} <= set(rows.column_names)
    assert (
        rows[0]["label"] == json.loads((tmp_path / "labels" / f"{rows[0]['id']}.json").read_text())["genres"]
    )
    again = Echo()
    prepare_dataset("mmimdb", tmp_path, echo=again)
    assert "already prepared" in again.out[0]
    assert build("mmimdb", root=str(tmp_path)).info["prepared"]


def test_failed_reprepare_keeps_the_previous_copy(tmp_path):
    make_cub(tmp_path)
    target = prepare_dataset("cub200", tmp_path, echo=Echo())
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    truncate(sorted((tmp_path / "CUB_200_2011" / "images" / "001.Black_footed_Albatross").iterdir())[0])
    with pytest.raises(DataError):
        prepare_dataset("cub200", tmp_path, force=True, echo=Echo())
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before


def test_changed_index_files_make_a_prepared_copy_stale(tmp_path):
    fx = make_mmimdb(tmp_path)
    prepare_dataset("mmimdb", tmp_path, echo=Echo())
    split = fx["split"]
    split["test"] = split["test"][:-1]
    (tmp_path / "split.json").write_text(json.dumps(split))
    prepare._SOURCES.clear()
    with pytest.warns(UserWarning, match="older than the files"):
        data = build("mmimdb", root=str(tmp_path))
    assert len(data) == 27 and not data.info["prepared"]


def test_prepared_copy_serves_when_the_raw_files_are_gone(tmp_path):
    make_cifar_binary(tmp_path, "cifar10")
    raw = build("cifar10", root=str(tmp_path))
    prepare_dataset("cifar10", tmp_path, echo=Echo())
    for f in (tmp_path / "cifar-10-batches-bin").iterdir():
        f.unlink()
    prepare._SOURCES.clear()
    fast = build("cifar10", root=str(tmp_path))
    assert fast.info["prepared"] and np.array_equal(fast.labels, raw.labels)
    assert np.array_equal(fast.images.load_all(), raw.images.load_all())


def test_read_only_root_prepares_under_the_cache(tmp_path, monkeypatch):
    read_only = tmp_path / "ro"
    make_cifar_binary(read_only, "cifar10")
    access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(read_only) else access(p, mode))
    target = prepare_dataset("cifar10", read_only, echo=Echo())
    assert str(target).startswith(os.environ["FEDBENCH_CACHE"]) and not (read_only / ".fedbench").exists()
    prepare._SOURCES.clear()
    assert build("cifar10", root=str(read_only)).info["prepared"]


def test_data_command_prepare_and_list(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_cub(tmp_path / "data" / "cub200")
    make_cifar_binary(tmp_path / "elsewhere", "cifar10")
    assert data_command(["prepare", "cifar10", "--root", str(tmp_path / "elsewhere")]) == 0
    assert "prepared 120 rows" in capsys.readouterr().out
    assert data_command(["prepare", "cub200", "--root=data/cub200", "--deep"]) == 0
    status = {name: state for name, state, _ in dataset_status()}
    assert status["emoji"] == "built in"
    assert status["cifar10"].startswith(f"prepared: {tmp_path / 'elsewhere'} (120 rows, binary)")
    assert "prepared:" in status["cub200"] and "30 rows" in status["cub200"]
    assert status["mmimdb"] == "not prepared: fedbench data prepare mmimdb --root DIR"
    capsys.readouterr()
    assert data_command(["list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) >= 9 and any(x.startswith("cifar10") and "prepared:" in x for x in listed)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["prepare", "mmimdb"], "--root DIR"),
        (["prepare", "--root", "x"], "dataset name"),
        (["prepare", "mmimdb", "--root", "x", "--fast"], "unexpected argument '--fast'"),
        (["unpack"], "unknown command 'unpack'"),
        (["list", "extra"], "takes no arguments"),
    ],
)
def test_data_command_bad_arguments(argv, expected):
    with pytest.raises(ConfigError, match=expected):
        data_command(argv)


def test_prepare_refuses_unknown_and_built_in_datasets(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        prepare_dataset("imagenet", tmp_path)
    with pytest.raises(DataError, match="nothing to prepare"):
        prepare_dataset("emoji", tmp_path)
    with pytest.raises(DataError, match="does not exist.*cs.toronto.edu"):
        prepare_dataset("cifar100", tmp_path / "absent")


def test_skip_damaged_keeps_them_as_missing_images(tmp_path):
    make_cub(tmp_path)
    victim = sorted((tmp_path / "CUB_200_2011" / "images" / "003.Sooty_Albatross").iterdir())[0]
    truncate(victim)
    with pytest.raises(DataError, match=r"cannot decode the image .*Sooty_Albatross") as err:
        build("cub200", root=str(tmp_path), split="official").images[
            20
        ]  # unprepared: decoding fails in one line
    assert "\n" not in str(err.value)
    echo = Echo()
    target = prepare_dataset("cub200", tmp_path, skip_damaged=True, echo=echo)
    assert any("1 damaged images kept as missing images" in x for x in echo.out)
    assert json.loads((target / "meta.json").read_text())["damaged_images"] == [str(victim)]
    prepare._SOURCES.clear()
    data = build("cub200", root=str(tmp_path), split="official")
    assert data.images[20] is None and data.images[19] is not None


MAKERS = {
    "food101": fx.make_food101,
    "hatememes": fx.make_hatememes,
    "flowers102": fx.make_flowers,
    "cifar100": lambda root: fx.make_cifar_parquet(root, "cifar100"),
    "tinyimagenet": fx.make_tinyimagenet_parquet,
}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_prepared_and_raw_give_the_same_data(tmp_path, name):
    MAKERS[name](tmp_path)
    raw = build(name, root=str(tmp_path))
    prepare_dataset(name, tmp_path, echo=Echo())
    prepare._SOURCES.clear()
    fast = build(name, root=str(tmp_path))
    assert fast.info["prepared"] and not raw.info["prepared"]
    assert (
        np.array_equal(fast.labels, raw.labels)
        and fast.texts == raw.texts
        and fast.label_names == raw.label_names
    )
    assert all(np.array_equal(fast.splits[k], raw.splits[k]) for k in ("train", "val", "test"))
    assert all(np.array_equal(fast.images[i], raw.images[i]) for i in range(len(raw)))
    assert fast.fingerprint == raw.fingerprint
