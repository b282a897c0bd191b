"""The full-size stand-ins of benchmarks/standins, written small: fedbench's own loaders read every
dataset with the counts of the real release times the scale (the real numbers are restated here
from data.md, not read from the generators), the output is deterministic for a seed, a folder that
is not a stand-in is never deleted, and a backbone written into an HF cache layout is found by
fedbench's builders through HF_HOME alone."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from data_fixtures import build, data_env  # noqa: F401  (autouse: a fresh FEDBENCH_CACHE per test)

from benchmarks.standins import make_dataset, make_weights
from fedbench.data.prepare import prepare_dataset

pytestmark = pytest.mark.slow

# the real releases (data.md §1): rows per split as the loader names them, and classes
REAL = {
    "food101": ({"train": 61_142, "val": 6_846, "test": 22_716}, 101),  # MAP's split.json: 90,704 files
    "mmimdb": ({"train": 15_552, "dev": 2_608, "test": 7_799}, 23),
    "hatememes": ({"train": 8_500, "dev": 500, "test": 1_000}, 2),
    "cub200": ({"train": 5_994, "test": 5_794}, 200),
    "flowers102": ({"train": 1_020, "val": 1_020, "test": 6_149}, 102),
    "cifar10": ({"train": 50_000, "test": 10_000}, 10),
    "cifar100": ({"train": 50_000, "test": 10_000}, 100),
}
FOOD_WITHOUT_TEXT = 48  # of the 90,704 files; MAP keeps 90,656
# scales at which no class falls below the stand-ins' floor of 3 rows per split, so the counts are
# exactly round(real * scale)
SCALES = {
    "food101": 0.05,
    "mmimdb": 0.04,
    "hatememes": 0.1,
    "cub200": 0.2,
    "flowers102": 0.3,
    "cifar10": 0.1,
    "cifar100": 0.1,
}
OPTIONS = {  # the options of experiments/*.yaml (and the other protocol where a dataset has two)
    "food101": [{"variant": "map", "split": "map"}, {"variant": "fedprime", "split": "map"}],
    "mmimdb": [
        {"variant": "map", "plot": "longest"},
        {"variant": "fedprime", "plot": "longest", "val_fraction": 0.1},
    ],
    "hatememes": [{}],
    "cub200": [{"split": "fedmvp", "caption": "random", "val_fraction": 0.1}, {"split": "official"}],
    "flowers102": [{"split": "fedmvp", "caption": "random", "val_fraction": 0.1}, {"split": "official"}],
    "cifar10": [{"val_fraction": 0.1}],
    "cifar100": [{"val_fraction": 0.1}, {"val_fraction": 0.1, "label": "coarse"}],
}


def prepare(name, root):
    lines = []
    prepare_dataset(name, root, echo=lambda *a, **k: lines.append(" ".join(map(str, a))))
    return lines


@pytest.mark.parametrize("name", list(REAL))
def test_loader_reads_the_standin_with_the_real_counts_times_the_scale(name, tmp_path):
    scale, (splits, classes) = SCALES[name], REAL[name]
    root = tmp_path / name
    report = make_dataset(name, root, scale=scale, seed=0)
    expected = {s: round(n * scale) for s, n in splits.items()}
    dropped = round(FOOD_WITHOUT_TEXT * scale) if name == "food101" else 0
    assert report.rows == sum(expected.values())
    assert f"prepared {sum(expected.values()) - dropped:,} rows" in prepare(name, root)[0]
    for options in OPTIONS[name]:
        data = build(name, root=str(root), **options)
        got = data.info["source_splits"]
        if name == "food101":  # the files without a text are dropped, each from its own split
            assert sum(got.values()) == sum(expected.values()) - dropped
            assert all(expected[s] - dropped <= got[s] <= expected[s] for s in expected)
            assert data.info["dropped_without_text"] == dropped
        else:
            assert got == expected
        if options.get("variant") != "fedprime" and options.get("label") != "coarse":
            assert data.num_classes == classes
            if name != "mmimdb":  # single-label: every class in every split (the stratified carving worked)
                labels = np.asarray(data.labels)
                assert all(len(np.unique(labels[v])) == classes for v in data.splits.values()), options
        assert all(len(v) > 0 for v in data.splits.values()), (
            options,
            {k: len(v) for k, v in data.splits.items()},
        )
        assert data.images[0].ndim == 3


def test_tinyimagenet_keeps_three_rows_per_class_below_the_real_share(tmp_path):
    make_dataset("tinyimagenet", tmp_path / "t", scale=0.01, seed=0)
    assert "prepared 1,600 rows (train 1,000, valid 600)" in prepare("tinyimagenet", tmp_path / "t")[0]
    data = build("tinyimagenet", root=str(tmp_path / "t"), val_fraction=0.1)
    # real 500 train / 50 val per class: 5 train each at 1%, and 3 val each (the floor) instead of 0.5
    assert data.num_classes == 200 and len(data.splits["test"]) == 600
    assert len(data.splits["train"]) + len(data.splits["val"]) == 1_000
    assert (
        len(list((tmp_path / "t" / "tiny-imagenet-200" / "test" / "images").iterdir())) == 100
    )  # 10,000 * 1%


def test_mmimdb_genres_are_multi_label_with_drama_commonest(tmp_path):
    make_dataset("mmimdb", tmp_path / "m", scale=0.04, seed=0)
    data = build("mmimdb", root=str(tmp_path / "m"), variant="map", plot="longest")
    share = np.asarray(data.labels).mean(axis=0)
    assert share.argmax() == 0 and share[0] > 0.3  # Drama (MAP's label 0)
    assert 1.5 < np.asarray(data.labels).sum(axis=1).mean() < 3.5
    words = [len(t.split()) for t in data.texts]
    assert 50 <= min(words) and max(words) <= 300


def digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".standin.json"):
        h.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_and_only_standins_are_overwritten(tmp_path):
    a = make_dataset("hatememes", tmp_path / "a", scale=0.02, seed=3)
    make_dataset("hatememes", tmp_path / "b", scale=0.02, seed=3)
    make_dataset("hatememes", tmp_path / "c", scale=0.02, seed=4)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")
    with pytest.raises(FileExistsError, match="not empty"):
        make_dataset("hatememes", tmp_path / "a", scale=0.02, seed=3)
    again = make_dataset("hatememes", tmp_path / "a", scale=0.02, seed=3, overwrite=True)
    assert again.rows == a.rows and digest(tmp_path / "a") == digest(tmp_path / "b")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "train.jsonl").write_text("{}\n")
    with pytest.raises(FileExistsError, match="refusing"):
        make_dataset("hatememes", tmp_path / "real", scale=0.02, overwrite=True)
    assert (tmp_path / "real" / "train.jsonl").exists()


TINY = {
    "vilt": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "clip-b32": dict(
        projection_dim=16,
        text_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            projection_dim=16,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            projection_dim=16,
        ),
    ),
}


def test_backbones_in_the_hf_cache_layout_load_through_fedbench_by_hf_home(tmp_path):
    from benchmarks.standins.backbones import check_weights

    hf_home = tmp_path / "hf"
    reports = {n: make_weights(n, hf_home, config_overrides=cfg) for n, cfg in TINY.items()}
    repo = hf_home / "hub" / "models--dandelin--vilt-b32-mlm"
    commit = (repo / "refs" / "main").read_text()
    assert (
        len(commit) == 40 and int(commit, 16) >= 0 and reports["vilt"].snapshot == repo / "snapshots" / commit
    )
    files = {p.name: p for p in (repo / "snapshots" / commit).iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "vocab.txt",
        "tokenizer.json",
        "preprocessor_config.json",
    } <= set(files)
    assert all(p.is_symlink() and p.resolve().parent == repo / "blobs" for p in files.values())
    assert len(files["vocab.txt"].read_text().splitlines()) == 30_522
    clip = reports["clip-b32"].snapshot
    vocab = json.loads((clip / "vocab.json").read_text())
    assert len(vocab) == 49_408 and vocab["<|startoftext|>"] == 49_406 and vocab["<|endoftext|>"] == 49_407
    assert json.loads((clip / "config.json").read_text())["vision_config"]["patch_size"] == 32
    with pytest.raises(FileExistsError):
        make_weights("vilt", hf_home, config_overrides=TINY["vilt"])
    assert "HF_HOME" not in os.environ or os.environ["HF_HOME"] != str(hf_home)
    lines = check_weights(list(TINY), hf_home)  # a fresh process with only HF_HOME and offline mode set
    assert [line.split()[:2] for line in lines] == [
        ["dandelin/vilt-b32-mlm", "ViltBackbone"],
        ["openai/clip-vit-base-patch32", "ClipBackbone"],
    ]
    assert int(lines[1].split()[2]) == reports["clip-b32"].params
