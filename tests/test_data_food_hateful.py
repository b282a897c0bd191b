"""UPMC Food-101 and Hateful Memes from fixtures in their release layouts (and a hub parquet copy)."""

import numpy as np
import pytest
from data_fixtures import FOOD, build, close, data_env, make_food101, make_hatememes, write_hub_parquet  # noqa: F401

from fedbench.errors import DataError


def _class(f):
    return f.rsplit("_", 1)[0]


def test_food101_map_split_labels_and_texts(tmp_path):
    fx = make_food101(tmp_path)
    data = build("food101", root=str(tmp_path))
    files = [f for s in ("train", "val", "test") for f in fx["files"][s] if f in fx["texts"]]
    assert len(data) == len(files) == 49  # sushi_1.jpg has no text and is dropped, as MAP does
    assert data.label_names == FOOD  # class_idx.json's order, not alphabetical
    assert [data.label_names[y] for y in data.labels] == [_class(f) for f in files]
    assert data.texts == [fx["texts"][f] for f in files]
    for split in ("train", "val", "test"):
        assert [files[i] for i in data.splits[split]] == [f for f in fx["files"][split] if f in fx["texts"]]
    assert data.metric.task == "multiclass" and data.metric.primary == "accuracy"
    assert data.info["text_source"] == "text.json" and data.info["dropped_without_text"] == 1
    assert close(data.images[0][2, 2], 0)  # ramen_0.jpg is the fixture's first image


@pytest.mark.parametrize("header", [True, False])
def test_food101_official_split_from_the_csv_files(tmp_path, header):
    fx = make_food101(tmp_path, map_files=False, header=header)
    data = build("food101", root=str(tmp_path), split="official", val_fraction=0.25)
    assert data.label_names == sorted(FOOD)
    rows = data.info["source_splits"]
    assert rows == {"train": 39, "test": 10}
    test_classes = sorted(data.label_names[y] for y in data.labels[data.splits["test"]])
    assert test_classes == sorted(FOOD)  # every class's _4 image is in images/test
    val = data.labels[data.splits["val"]]
    assert sorted(val.tolist()) == list(range(10))  # one of each class's 3-4 train images, stratified
    assert all(", with a comma" in t for t in data.texts)  # quoted csv fields keep their commas
    assert data.info["text_source"] == "texts/*_titles.csv"
    assert set(data.texts) == set(fx["texts"].values())


def test_food101_fedprime_cut_and_missing_map_split(tmp_path):
    make_food101(tmp_path)
    data = build("food101", root=str(tmp_path), variant="fedprime")
    first8 = [
        "apple_pie",
        "baby_back_ribs",
        "baklava",
        "beef_carpaccio",
        "beef_tartare",
        "beet_salad",
        "beignets",
        "bibimbap",
    ]
    assert data.label_names == first8
    assert np.bincount(data.labels).tolist() == [5] * 8 and len(data.splits["test"]) == 8
    other = tmp_path / "other"
    make_food101(other, map_files=False)
    with pytest.raises(DataError, match="split.json.*missing_aware_prompts.*split to official"):
        build("food101", root=str(other))


@pytest.mark.parametrize("nested", [False, True])
def test_hateful_memes_release_layout(tmp_path, nested):
    fx = make_hatememes(tmp_path, nested=nested)
    data = build("hatememes", root=str(tmp_path))
    recs = [r for r in fx["records"].values() if r["split"] != "dev_unseen"]
    assert len(data) == 16
    assert data.metric.task == "binary" and data.metric.primary == "auroc"
    assert data.label_names == ["not-hateful", "hateful"] and data.labels.ndim == 1
    assert data.labels.tolist() == [r["label"] for r in recs] and data.texts == [r["text"] for r in recs]
    for ours, theirs in (("train", "train"), ("val", "dev_seen"), ("test", "test_seen")):
        assert [recs[i]["id"] for i in data.splits[ours]] == [r["id"] for r in recs if r["split"] == theirs]
    assert np.array_equal(
        data.images[3][0, 0], np.array([(37 * 3) % 256, (91 * 3 + 50) % 256, (13 * 3 + 100) % 256])
    )  # PNG: exact


def test_hateful_memes_refuses_an_unlabelled_test_file(tmp_path):
    make_hatememes(tmp_path, phase1_test=True)
    with pytest.raises(DataError, match="without a label.*test_seen.jsonl") as err:
        build("hatememes", root=str(tmp_path))
    assert "\n" not in str(err.value)


def test_hateful_memes_hub_parquet_copy(tmp_path):
    import datasets
    from data_fixtures import image_bytes

    expected = {}
    for split, n in (("train", 6), ("dev_seen", 3), ("dev_unseen", 2), ("test_seen", 3), ("test_unseen", 2)):
        labels = [i % 2 for i in range(n)]
        texts = [f"{split} meme {i}" for i in range(n)]
        cols = {
            "id": list(range(n)),
            "image": [{"bytes": image_bytes(i, "PNG"), "path": None} for i in range(n)],
            "text": texts,
            "label": labels,
        }
        feats = {
            "id": datasets.Value("int64"),
            "image": datasets.Image(),
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["not-hateful", "hateful"]),
        }
        write_hub_parquet(tmp_path / "data" / f"{split}-00000-of-00001.parquet", cols, feats)
        expected[split] = (labels, texts)
    data = build("hatememes", root=str(tmp_path))
    assert data.info["layout"] == "parquet" and len(data) == 12
    for ours, theirs in (("train", "train"), ("val", "dev_seen"), ("test", "test_seen")):
        assert data.labels[data.splits[ours]].tolist() == expected[theirs][0]
        assert [data.texts[i] for i in data.splits[ours]] == expected[theirs][1]
