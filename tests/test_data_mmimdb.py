"""MM-IMDb from a fixture in MAP's and in the archive's layout: labels, plots, splits, both protocols."""

import numpy as np
import pytest
from data_fixtures import FEDPRIME_TOP8, build, close, data_env, make_mmimdb  # noqa: F401

from fedbench.data.mmimdb import GENRES
from fedbench.errors import ConfigError, DataError


def _order(fx):
    return fx["split"]["train"] + fx["split"]["dev"] + fx["split"]["test"]


@pytest.mark.parametrize("layout", ["map", "archive"])
def test_map_protocol(tmp_path, layout):
    fx = make_mmimdb(tmp_path / "mmimdb", layout)
    data = build("mmimdb", root=str(tmp_path / "mmimdb"))
    order, movies = _order(fx), fx["movies"]
    assert len(data) == len(order) == 28
    assert data.label_names == list(GENRES) and len(GENRES) == 23
    assert data.metric.task == "multilabel" and data.metric.primary == "f1_macro"
    assert data.labels.shape == (28, 23) and set(np.unique(data.labels)) <= {0, 1}
    for row, mid in enumerate(order):
        m = movies[mid]
        assert {GENRES[j] for j in np.flatnonzero(data.labels[row])} == {
            g for g in m["genres"] if g in GENRES
        }
        longest = max(m["plots"], key=len) if m["plots"] else ""
        assert data.texts[row] == longest
        assert close(data.images[row][4, 4], m["k"])
    talk_show = order.index(next(mid for mid, m in movies.items() if m["genres"] == ["Talk-Show"]))
    assert data.labels[talk_show].sum() == 0  # a genre outside MAP's list is dropped, as MAP does
    for ours, theirs in (("train", "train"), ("val", "dev"), ("test", "test")):
        assert [order[i] for i in data.splits[ours]] == fx["split"][theirs]
    assert data.info["layout"] == layout and data.info["movies_without_plot"] == 1


def test_plot_choices_and_one_row_per_plot(tmp_path):
    fx = make_mmimdb(tmp_path)
    order, movies = _order(fx), fx["movies"]
    first = build("mmimdb", root=str(tmp_path), plot="first")
    joined = build("mmimdb", root=str(tmp_path), plot="all")
    assert first.texts == [movies[m]["plots"][0] if movies[m]["plots"] else "" for m in order]
    assert joined.texts == [" ".join(movies[m]["plots"]) for m in order]
    each = build("mmimdb", root=str(tmp_path), plot="each")
    expected = [(m, p) for m in order for p in (movies[m]["plots"] or [""])]
    assert len(each) == len(expected) > len(order)
    assert each.texts == [p for _, p in expected]
    owners = [m for m, _ in expected]
    for ours, theirs in (("train", "train"), ("val", "dev"), ("test", "test")):
        assert {owners[i] for i in each.splits[ours]} == set(fx["split"][theirs])
        assert sorted(each.splits[ours].tolist()) == [
            i for i, m in enumerate(owners) if m in fx["split"][theirs]
        ]
    assert [order[g] for g in each.groups] == owners  # every plot of a movie shares its group


def test_fedprime_single_label_top8(tmp_path):
    fx = make_mmimdb(tmp_path)
    data = build("mmimdb", root=str(tmp_path), variant="fedprime", val_fraction=0.25)
    movies = fx["movies"]
    kept = [
        mid
        for mid in _order(fx)
        if len(movies[mid]["genres"]) == 1 and movies[mid]["genres"][0] in FEDPRIME_TOP8
    ]
    assert data.label_names == FEDPRIME_TOP8  # most common first; ties in MAP's genre order; Sport left out
    assert data.metric.task == "multiclass" and data.metric.primary == "macro_f1"
    assert data.labels.ndim == 1 and len(data) == len(kept) == 23
    assert [FEDPRIME_TOP8[y] for y in data.labels] == [movies[m]["genres"][0] for m in kept]
    test = {kept[i] for i in data.splits["test"]}
    assert test == {m for m in kept if movies[m]["split"] == "test"}
    pool = {kept[i] for i in np.concatenate([data.splits["train"], data.splits["val"]])}
    assert pool == {m for m in kept if movies[m]["split"] in ("train", "dev")}  # dev merged into train
    assert not set(data.splits["train"]) & set(data.splits["val"]) and len(data.splits["val"]) > 0
    again = build("mmimdb", root=str(tmp_path), variant="fedprime", val_fraction=0.25)
    assert np.array_equal(again.splits["val"], data.splits["val"])  # seeded by the split seed
    assert "split_seed 0" in data.info["protocol"]


def test_prepared_copy_gives_the_same_data(tmp_path):
    from fedbench.data.prepare import prepare_dataset

    make_mmimdb(tmp_path)
    raw = build("mmimdb", root=str(tmp_path), plot="each")
    prepare_dataset("mmimdb", tmp_path, echo=lambda *a, **k: None)
    from fedbench.data import prepare

    prepare._SOURCES.clear()
    fast = build("mmimdb", root=str(tmp_path), plot="each")
    assert fast.info["prepared"] and not raw.info["prepared"]
    assert np.array_equal(fast.labels, raw.labels) and fast.texts == raw.texts
    assert all(np.array_equal(fast.splits[k], raw.splits[k]) for k in raw.splits)
    assert all(np.array_equal(fast.images[i], raw.images[i]) for i in range(len(raw)))
    assert fast.fingerprint == raw.fingerprint and fast.images.key == raw.images.key


def test_user_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="data.options.root"):
        build("mmimdb")
    with pytest.raises(ConfigError, match="data.options.variant"):
        build("mmimdb", root=str(tmp_path), variant="fedprime8")
    with pytest.raises(ConfigError, match="data.options.plot"):
        build("mmimdb", root=str(tmp_path), plot="shortest")
    with pytest.raises(DataError, match="archive.org/download/mmimdb") as err:
        build("mmimdb", root=str(tmp_path / "nowhere"))
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="split.json") as err:
        build("mmimdb", root=str(tmp_path))  # the folder exists but holds nothing
    assert "\n" not in str(err.value)
