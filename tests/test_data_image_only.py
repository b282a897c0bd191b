"""CIFAR-10/100 (binary version, hub parquet copy, pickles refused) and Tiny-ImageNet (zip layout,
hub parquet copy), from fixtures."""

import pickle

import numpy as np
import pytest
from data_fixtures import (  # noqa: F401
    WNIDS,
    build,
    close,
    data_env,
    make_cifar_binary,
    make_cifar_parquet,
    make_tinyimagenet,
    make_tinyimagenet_parquet,
)

from fedbench.errors import DataError


def _check_cifar(data, fx, classes):
    train_labels, train_pixels = fx["train"]
    test_labels, test_pixels = fx["test"]
    n_train = len(train_labels)
    assert len(data) == n_train + len(test_labels) and len(data.label_names) == classes
    assert data.labels[:n_train].tolist() == train_labels.tolist()
    assert data.labels[n_train:].tolist() == test_labels.tolist()
    assert data.splits["test"].tolist() == list(range(n_train, len(data)))
    assert sorted(np.concatenate([data.splits["train"], data.splits["val"]]).tolist()) == list(range(n_train))
    assert np.array_equal(data.images[0], train_pixels[0]) and np.array_equal(
        data.images[n_train + 1], test_pixels[1]
    )
    assert data.texts == [""] * len(data) and data.info["modalities"] == ["image"]
    assert data.metric.primary == "accuracy"


def test_cifar10_binary_version(tmp_path):
    fx = make_cifar_binary(tmp_path, "cifar10")
    data = build("cifar10", root=str(tmp_path))
    _check_cifar(data, fx, 10)
    assert data.label_names[:3] == ["airplane", "automobile", "bird"] and data.info["layout"] == "binary"
    assert sorted(data.labels[data.splits["val"]].tolist()) == list(
        range(10)
    )  # 10 per class, 10% of each held out


def test_cifar100_binary_fine_and_coarse(tmp_path):
    fx = make_cifar_binary(tmp_path, "cifar100")
    fine = build("cifar100", root=str(tmp_path))
    _check_cifar(fine, fx, 100)
    coarse = build("cifar100", root=str(tmp_path), label="coarse")
    assert coarse.label_names[0] == "coarse_00" and len(coarse.label_names) == 20
    assert coarse.labels.tolist() == (fine.labels % 20).tolist()  # the fixture's coarse byte is fine % 20


@pytest.mark.parametrize("which", ["cifar10", "cifar100"])
def test_cifar_hub_parquet_copy(tmp_path, which):
    fx = make_cifar_parquet(tmp_path, which)
    data = build(which, root=str(tmp_path))
    _check_cifar(data, fx, 10 if which == "cifar10" else 100)
    assert data.info["layout"] == "parquet"
    if which == "cifar100":
        assert data.label_names[5] == "fine_005"  # ClassLabel names from the parquet metadata
        assert build(which, root=str(tmp_path), label="coarse").label_names[3] == "coarse_03"


def test_cifar_pickle_version_is_refused_unread(tmp_path):
    marker = tmp_path / "unpickled"

    class Plant:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ("data_batch_1", "batches.meta", "test_batch"):
        (folder / name).write_bytes(pickle.dumps(Plant()))
    with pytest.raises(DataError, match=r"pickles.*cifar-10-binary\.tar\.gz.*uoft-cs/cifar10") as err:
        build("cifar10", root=str(tmp_path))
    assert "\n" not in str(err.value) and not marker.exists()


def test_cifar_truncated_batch_file(tmp_path):
    make_cifar_binary(tmp_path, "cifar10")
    batch = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"truncated batch file: .*data_batch_3.bin"):
        build("cifar10", root=str(tmp_path))


def test_tinyimagenet_zip_layout(tmp_path):
    fx = make_tinyimagenet(tmp_path)
    data = build("tinyimagenet", root=str(tmp_path))
    assert data.label_names == sorted(WNIDS)
    train_ids = [f"{w}_{n}" for w in sorted(WNIDS) for n in range(10)]
    n_train = len(train_ids)
    assert data.labels[:n_train].tolist() == [sorted(WNIDS).index(fx["train"][i]) for i in train_ids]
    test = data.splits["test"]
    assert len(test) == 6 and data.labels[test].tolist() == [
        sorted(WNIDS).index(fx["val"][f"val_{n}"]) for n in range(6)
    ]
    assert len(data.splits["val"]) == 3 and len(data.splits["train"]) == 27
    assert close(data.images[test[0]][1, 1], 100)  # val_0.JPEG
    assert data.info["source_splits"] == {"train": 30, "valid": 6}  # the unlabelled test images are not read


def test_tinyimagenet_hub_parquet_copy_matches_label_order(tmp_path):
    fx = make_tinyimagenet_parquet(tmp_path)
    data = build("tinyimagenet", root=str(tmp_path))
    assert data.label_names == sorted(WNIDS) and data.info["layout"] == "parquet"
    assert [data.label_names[y] for y in data.labels[data.splits["test"]]] == fx["valid"]
    assert data.images[0].shape == (64, 64, 3)
