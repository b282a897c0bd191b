"""CUB-200-2011 and Oxford-102 Flowers with Reed captions, from fixtures in the original layouts."""

import numpy as np
import pytest
from data_fixtures import build, close, data_env, make_cub, make_flowers  # noqa: F401

from fedbench.data.captioned import FLOWER_NAMES
from fedbench.errors import DataError


def test_cub_official_split_labels_and_captions(tmp_path):
    fx = make_cub(tmp_path)
    data = build("cub200", root=str(tmp_path), split="official", caption="first")
    assert len(data) == fx["n"] == 30
    assert data.label_names == ["Black footed Albatross", "Laysan Albatross", "Sooty Albatross"]
    assert data.labels.tolist() == [k // 10 for k in range(30)]
    assert data.texts == [fx["captions"][str(k + 1)][0] for k in range(30)]
    official_train = {k for k in range(30) if (k % 10) % 2 == 0}  # train_test_split.txt: even n is train
    assert set(data.splits["test"].tolist()) == set(range(30)) - official_train
    assert set(data.splits["train"].tolist()) | set(data.splits["val"].tolist()) == official_train
    assert close(data.images[0][3, 3], 1)
    assert data.metric.primary == "accuracy"


def test_cub_fedmvp_split_is_90_10_per_class_and_seeded(tmp_path):
    make_cub(tmp_path)
    data = build("cub200", root=str(tmp_path))
    for c in range(3):
        assert (data.labels[data.splits["test"]] == c).sum() == 1  # 10% of 10
        assert (data.labels[data.splits["val"]] == c).sum() == 1  # 10% of the 9 left
        assert (data.labels[data.splits["train"]] == c).sum() == 8
    assert sorted(np.concatenate(list(data.splits.values())).tolist()) == list(range(30))
    other = build("cub200", root=str(tmp_path), split_seed=1)
    same = build("cub200", root=str(tmp_path))
    assert np.array_equal(same.splits["test"], data.splits["test"])
    assert not all(np.array_equal(other.splits[k], data.splits[k]) for k in data.splits)


def test_caption_choices(tmp_path):
    fx = make_cub(tmp_path)
    random0 = build("cub200", root=str(tmp_path))
    joined = build("cub200", root=str(tmp_path), caption="all")
    for k in range(30):
        caps = fx["captions"][str(k + 1)]
        assert random0.texts[k] in caps
        assert joined.texts[k] == " ".join(caps)
    picked = {fx["captions"][str(k + 1)].index(random0.texts[k]) for k in range(30)}
    assert len(picked) > 3  # not always the same caption
    assert build("cub200", root=str(tmp_path)).texts == random0.texts  # the pick is seeded


def test_flowers_official_setid_split_and_names(tmp_path):
    fx = make_flowers(tmp_path)
    data = build("flowers102", root=str(tmp_path), split="official", caption="first")
    assert len(FLOWER_NAMES) == 102 and data.label_names[:2] == ["pink primrose", "hard-leaved pocket orchid"]
    assert data.labels.tolist() == [v - 1 for v in fx["labels"]]
    for ours, key in (("train", "trnid"), ("val", "valid"), ("test", "tstid")):
        assert (data.splits[ours] + 1).tolist() == fx["sets"][key]
    assert data.texts == [fx["captions"][k + 1][0] for k in range(30)]
    fedmvp = build("flowers102", root=str(tmp_path))
    assert len(fedmvp.splits["test"]) == 3 and len(fedmvp.splits["val"]) == 3


def test_missing_captions_and_images_name_the_download(tmp_path):
    make_cub(tmp_path)
    victim = next((tmp_path / "cvpr2016_cub" / "text_c10" / "002.Laysan_Albatross").iterdir())
    victim.unlink()
    with pytest.raises(DataError, match=r"missing 1 of 30 caption files.*reedscot/cvpr2016") as err:
        build("cub200", root=str(tmp_path))
    assert victim.name in str(err.value)
    flowers = tmp_path / "flowers"
    make_flowers(flowers)
    (flowers / "jpg" / "image_00007.jpg").unlink()
    with pytest.raises(DataError, match=r"image_00007.jpg.*102flowers.tgz"):
        build("flowers102", root=str(flowers))
