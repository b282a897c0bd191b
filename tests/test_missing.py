"""Missing-modality tables: exact counts, the MAP code convention, protocols, and refusals."""

import json

import numpy as np
import pytest

from fedbench.data import missing as M
from fedbench.errors import ConfigError


def rng(seed=0):
    return np.random.default_rng(seed)


def counts(codes):
    """Independent tally (not missing_histogram) of codes 0, 1, 2."""
    codes = list(np.asarray(codes).tolist())
    return codes.count(0), codes.count(1), codes.count(2)


def test_code_convention_matches_map():
    assert (M.COMPLETE, M.TEXT_MISSING, M.IMAGE_MISSING) == (0, 1, 2)


@pytest.mark.parametrize(
    "n, rate, kind, both_ratio, expected",
    [
        (1000, 0.7, "text", 0.5, (300, 700, 0)),
        (1000, 0.7, "image", 0.5, (300, 0, 700)),
        (1000, 0.7, "both", 0.5, (300, 350, 350)),
        # 0.7 * 101 = 70.7 -> 71 missing; 0.3 * 71 = 21.3 -> 21 lose the image, 50 the text
        (101, 0.7, "both", 0.3, (30, 50, 21)),
        (10, 0.3, "both", 1.0, (7, 0, 3)),
        (50, 0.0, "both", 0.5, (50, 0, 0)),
        (50, 1.0, "text", 0.5, (0, 50, 0)),
        (50, 1.0, "both", 0.5, (0, 25, 25)),
        (0, 0.7, "both", 0.5, (0, 0, 0)),
    ],
)
def test_per_sample_exact_counts(n, rate, kind, both_ratio, expected):
    codes = M.per_sample_missing(n, rate, kind, both_ratio, rng())
    assert codes.dtype == np.int8 and codes.shape == (n,)
    assert counts(codes) == expected


def test_per_sample_is_seeded_and_uniform():
    a = M.per_sample_missing(200, 0.5, "both", rng=rng(3))
    b = M.per_sample_missing(200, 0.5, "both", rng=rng(3))
    c = M.per_sample_missing(200, 0.5, "both", rng=rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # Every position is equally likely to be missing: 2000 tables of 20 at rate 0.5.
    g = rng(5)
    hits = sum((M.per_sample_missing(20, 0.5, "text", rng=g) != 0).astype(int) for _ in range(2000))
    freq = hits / 2000
    assert np.all(np.abs(freq - 0.5) < 0.06)  # binomial sd is 0.011, so 0.06 is > 5 sd


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"rate": -0.1}, "missing.rate"),
        ({"rate": 1.5}, "missing.rate"),
        ({"rate": "lots"}, "missing.rate"),
        ({"missing_type": "audio"}, "missing.type"),
        ({"both_ratio": 2.0}, "missing.both_ratio"),
        ({"both_ratio": -1.0}, "missing.both_ratio"),
    ],
)
def test_per_sample_refuses_bad_values(kwargs, field):
    args = {"n": 10, "rate": 0.5, "missing_type": "both", "both_ratio": 0.5, "rng": rng()} | kwargs
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as err:
        M.per_sample_missing(**args)
    assert "\n" not in str(err.value)


def test_rng_is_required():
    with pytest.raises(TypeError):
        M.per_sample_missing(10, 0.5, "text")


def _clients(sizes):
    starts = np.cumsum([0] + list(sizes))
    return [np.arange(a, b) for a, b in zip(starts[:-1], starts[1:], strict=True)]


def test_per_client_codes_are_constant_per_client():
    clients = _clients([5, 7, 3, 10, 6] * 20)
    n = sum(len(c) for c in clients)
    codes = M.per_client_missing(clients, n, 0.5, "both", rng(1))
    for idx in clients:
        assert len(set(codes[idx].tolist())) == 1
    per_client = np.array([codes[idx][0] for idx in clients])
    assert set(per_client.tolist()) == {0, 1, 2}


def test_per_client_probabilities():
    clients = _clients([2] * 4000)
    n = 8000
    codes = M.per_client_missing(clients, n, 0.3, "both", rng(2))
    first = codes[::2]  # one code per client
    lacking = first != 0
    assert abs(lacking.mean() - 0.3) < 0.03  # sd 0.007
    assert abs((first[lacking] == 2).mean() - 0.5) < 0.05  # image vs text, sd 0.014
    assert set(M.per_client_missing(clients, n, 1.0, "text", rng(0)).tolist()) == {1}
    assert set(M.per_client_missing(clients, n, 1.0, "image", rng(0)).tolist()) == {2}
    assert set(M.per_client_missing(clients, n, 0.0, "both", rng(0)).tolist()) == {0}
    with pytest.raises(
        ConfigError, match=r"^missing\.rate: 1\.2 is outside \[0\.0, 1\.0\]"
    ):  # the field the user sets
        M.per_client_missing(clients, n, 1.2, "both", rng(0))


def test_per_client_leaves_unowned_samples_complete():
    codes = M.per_client_missing([np.array([0, 1]), np.array([4])], 6, 1.0, "image", rng(0))
    assert codes.tolist() == [2, 2, 0, 0, 2, 0]


def test_heterogeneous_counts_per_client():
    clients = _clients([40, 30, 50])
    codes = M.heterogeneous_missing(clients, 120, [0.5, 0.0, 0.8], ["text", "image", "both"], 0.25, rng(0))
    assert counts(codes[clients[0]]) == (20, 20, 0)
    assert counts(codes[clients[1]]) == (30, 0, 0)
    # 0.8 * 50 = 40 missing; 0.25 * 40 = 10 lose the image
    assert counts(codes[clients[2]]) == (10, 30, 10)
    per_client_ratio = M.heterogeneous_missing(clients, 120, [1.0] * 3, ["both"] * 3, [0.0, 1.0, 0.5], rng(0))
    assert counts(per_client_ratio) == (0, 40 + 25, 30 + 25)


def test_heterogeneous_refuses_wrong_lengths_and_types():
    clients = _clients([4, 4])
    with pytest.raises(
        ValueError, match="rates needs one entry per client"
    ):  # a caller's bug, not a user's value
        M.heterogeneous_missing(clients, 8, [0.5], ["text", "text"], 0.5, rng())
    with pytest.raises(ConfigError, match=r"^missing\.type: 'video' is not valid"):
        M.heterogeneous_missing(clients, 8, [0.5, 0.5], ["text", "video"], 0.5, rng())


def test_condition_codes():
    n = 200
    assert counts(M.test_condition_codes(n, "complete")) == (200, 0, 0)
    assert counts(M.test_condition_codes(n, "text_only")) == (0, 0, 200)  # text present, image missing
    assert counts(M.test_condition_codes(n, "image_only")) == (0, 200, 0)
    assert counts(M.test_condition_codes(n, "both_missing", rng=rng())) == (60, 70, 70)
    as_train = M.test_condition_codes(n, "as_train", 0.3, "image", 0.5, rng(9))
    assert np.array_equal(as_train, M.per_sample_missing(n, 0.3, "image", 0.5, rng(9)))
    with pytest.raises(ConfigError, match="as_train"):
        M.test_condition_codes(n, "half")


def test_missing_histogram_hand_example():
    hist = M.missing_histogram(np.array([0, 1, 1, 2, 2, 2], dtype=np.int8))
    assert hist == {"complete": 1, "text_missing": 2, "image_missing": 3}
    assert json.loads(json.dumps(hist)) == hist
    assert M.missing_histogram([]) == {"complete": 0, "text_missing": 0, "image_missing": 0}
    with pytest.raises(ConfigError):
        M.missing_histogram([0, 3])
