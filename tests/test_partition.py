"""Client partitions: coverage, determinism, and the skew each scheme promises, measured independently."""

import json

import numpy as np
import pytest
from scipy import stats

from fedbench.data import partition as P
from fedbench.errors import ConfigError

# 10 classes of 60 plus one small class of 13: an uneven last class catches rounding slips.
LABELS = np.concatenate([np.repeat(np.arange(10), 60), np.full(13, 10)])
N_CLASSES = 11

SCHEMES = {
    "iid": {},
    "dirichlet": {"alpha": 0.5},
    "shards": {"shards_per_client": 2},
    "dominant": {},
    "imbalanced": {"min_size": 20},
    "quantity": {"alpha": 1.0},
}


def rng(seed=0):
    return np.random.default_rng(seed)


def label_table(clients, labels=LABELS, n_classes=N_CLASSES):
    """Client x class counts, computed with a plain loop (independent of partition_report)."""
    table = np.zeros((len(clients), n_classes), dtype=int)
    for k, idx in enumerate(clients):
        for i in idx:
            table[k, labels[i]] += 1
    return table


def mean_tv_to_global(clients, labels=LABELS, n_classes=N_CLASSES):
    """Mean total-variation distance between each client's label mix and the global one."""
    table = label_table(clients, labels, n_classes)
    glob = table.sum(0) / table.sum()
    per = table / table.sum(1, keepdims=True)
    return float(np.mean(0.5 * np.abs(per - glob).sum(1)))


@pytest.mark.parametrize("name", list(SCHEMES))
def test_disjoint_cover_sorted_and_seeded(name):
    parts = P.make_partition(name, LABELS, 8, rng(1), **SCHEMES[name])
    assert len(parts) == 8
    flat = np.concatenate(parts)
    assert len(flat) == len(LABELS) and set(flat.tolist()) == set(range(len(LABELS)))
    for p in parts:
        assert p.dtype.kind == "i" and np.all(np.diff(p) > 0)
    again = P.make_partition(name, LABELS, 8, rng(1), **SCHEMES[name])
    other = P.make_partition(name, LABELS, 8, rng(2), **SCHEMES[name])
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


def test_iid_is_stratified_and_balanced():
    parts = P.iid(LABELS, 7, rng(0))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    table = label_table(parts)
    per_class = np.bincount(LABELS)
    for c in range(N_CLASSES):  # each class splits into floor/ceil of n_c / 7
        assert set(table[:, c].tolist()) <= {per_class[c] // 7, -(-per_class[c] // 7)}


def test_dirichlet_min_size_and_skew_levels():
    tight = P.dirichlet(LABELS, 10, 0.05, rng(0), min_size=20)
    assert min(len(p) for p in tight) >= 20
    # IID stratified has TV ~0 here; Dir(1e4) is close to it; Dir(0.1) concentrates classes.
    near_iid = np.mean([mean_tv_to_global(P.dirichlet(LABELS, 5, 1e4, rng(s))) for s in range(3)])
    skewed = np.mean([mean_tv_to_global(P.dirichlet(LABELS, 5, 0.1, rng(s))) for s in range(3)])
    assert near_iid < 0.05
    assert skewed > 0.4


def test_dirichlet_refuses_impossible_requests():
    with pytest.raises(ConfigError, match="min_size"):
        P.dirichlet(LABELS, 100, 0.5, rng(), min_size=8)  # 800 > 613 samples
    with pytest.raises(ConfigError, match="partition.alpha"):
        P.dirichlet(LABELS, 10, 0.001, rng(), min_size=60, max_tries=5)


def test_shards_limit_labels_per_client():
    # 613 samples / 16 shards -> shards of 38-39, classes of 60: a shard touches at most 2 classes
    parts = P.shards(LABELS, 8, 2, rng(0))
    table = label_table(parts)
    assert all((row > 0).sum() <= 2 * 2 for row in table)
    # every shard is a contiguous run in label order, so sizes are 2 shards of 38 or 39
    assert {len(p) for p in parts} <= {76, 77, 78}
    with pytest.raises(ConfigError, match="shards_per_client"):
        P.shards(LABELS, 400, 2, rng())


def test_dominant_class_one_client_per_class():
    labels = np.repeat(np.arange(10), 200)
    parts = P.dominant_class(labels, 10, rng(0))
    table = label_table(parts, labels, 10)
    # each class dominates exactly one client, which holds round(0.99 * 200) = 198 of it
    assert sorted(table.max(0).tolist()) == [198] * 10
    assert sorted(table.argmax(0).tolist()) == list(range(10))
    assert table.sum() == 2000


def test_dominant_class_shared_and_absent_dominants():
    labels = np.repeat(np.arange(10), 200)
    shared = label_table(P.dominant_class(labels, 20, rng(1)), labels, 10)
    for c in range(10):  # two dominants per class, 99 each
        top2 = np.sort(shared[:, c])[-2:]
        assert top2.tolist() == [99, 99]
    few = label_table(P.dominant_class(labels, 4, rng(2)), labels, 10)
    dominated = [c for c in range(10) if few[:, c].max() >= 198]
    assert len(dominated) == 4  # the other 6 classes are spread by Dir(1)
    for k in range(4):  # every client's biggest class holds >= 198 samples
        assert few[k].max() >= 198


def test_imbalanced_matches_ppt_shares():
    # Classes of 100 + 37 c samples (uneven, so floor(0.99 n) is tested), 25 clients for 10 classes.
    sizes = [100 + 37 * c for c in range(10)]
    labels = np.repeat(np.arange(10), sizes)
    parts = P.make_partition("imbalanced", labels, 25, rng(3))
    assert all(np.array_equal(a, b) for a, b in zip(parts, P.dominant_class(labels, 25, rng(3)), strict=True))
    table = label_table(parts, labels, 10)
    # PPT cuts the shuffled clients at round(2.5 k), k = 1..9 -> 2, 5, 8, 10, 12, 15, 18, 20, 22
    # (numpy rounds halves to even), so class c is dominated by this many clients:
    group_sizes = [2, 3, 3, 2, 2, 3, 3, 2, 2, 3]
    dominant = table.argmax(1)  # 99% split 2-3 ways dwarfs any 1% remainder
    for c in range(10):
        group = np.flatnonzero(dominant == c)
        assert len(group) == group_sizes[c]
        kept = sizes[c] * 99 // 100  # floor(0.99 n_c), in integers
        assert table[group, c].sum() == kept  # the remainder never returns to the dominant clients
        assert table[group, c].max() - table[group, c].min() <= 1  # an even split
        assert np.delete(table[:, c], group).sum() == sizes[c] - kept


def test_imbalanced_several_dominant_classes_per_client():
    # PPT's n_dominated_class (20 on TinyImageNet): here 10 clients x 4 slots over 20 classes of 200,
    # so 2 slots per class; each slot holds floor(0.99 * 200) / 2 = 99 samples, a remainder <= 2.
    labels = np.repeat(np.arange(20), 200)
    table = label_table(P.dominant_class(labels, 10, rng(4), n_dominant=4), labels, 20)
    slots = table // 99  # a client holding both slots of a class has 198 (+ nothing else of it)
    assert slots.sum(0).tolist() == [2] * 20  # every class fills its 2 slots
    assert slots.sum(1).tolist() == [4] * 10  # every client dominates 4 times
    assert all(table[slots[:, c] > 0, c].sum() == 198 for c in range(20))
    with pytest.raises(ConfigError, match="n_dominant"):
        P.dominant_class(labels, 10, rng(), n_dominant=0)


def test_imbalanced_remainder_follows_dirichlet_one():
    # 2 classes, 4 clients: each class's 1% goes to the 2 clients it does not dominate with
    # Dir(1, 1) = Beta(1, 1) shares, so the first receiver's share is uniform on [0, 1].
    labels = np.repeat([0, 1], 20000)
    shares = []
    for seed in range(100):
        table = label_table(P.dominant_class(labels, 4, rng(seed)), labels, 2)
        for c in range(2):
            receivers = np.flatnonzero(table[:, c] < 1000)
            assert len(receivers) == 2 and table[receivers, c].sum() == 200
            shares.append(table[receivers[0], c] / 200)
    assert stats.kstest(shares, "uniform").pvalue > 0.01


def test_imbalanced_resamples_until_min_size():
    # 4 clients, 10 classes of 20: 6 classes dominate nobody and are spread by Dir(1), so one draw
    # often leaves a client under 40 samples.
    labels = np.repeat(np.arange(10), 20)
    smallest = [min(map(len, P.dominant_class(labels, 4, rng(s)))) for s in range(20)]
    assert min(smallest) < 40  # without the floor the constraint is violated
    for s in range(20):
        parts = P.dominant_class(labels, 4, rng(s), min_size=40)
        assert min(map(len, parts)) >= 40 and sum(map(len, parts)) == 200
    with pytest.raises(ConfigError, match="min_size"):
        P.dominant_class(labels, 4, rng(), min_size=50, max_tries=20)  # needs 4 x exactly 50
    with pytest.raises(ConfigError, match="min_size"):
        P.dominant_class(labels, 4, rng(), min_size=51)


def test_dirichlet_resamples_until_min_size():
    smallest = [min(map(len, P.dirichlet(LABELS, 10, 0.3, rng(s), min_size=1))) for s in range(20)]
    assert min(smallest) < 30  # a single draw would often break the floor
    for s in range(20):
        parts = P.dirichlet(LABELS, 10, 0.3, rng(s), min_size=30)
        assert min(map(len, parts)) >= 30 and sum(map(len, parts)) == len(LABELS)


def test_quantity_skew_sizes():
    parts = P.quantity_skew(LABELS, 6, 0.3, rng(0), min_size=10)
    sizes = np.array([len(p) for p in parts])
    assert sizes.min() >= 10 and sizes.sum() == len(LABELS)
    assert sizes.max() > 2 * sizes.min()
    balanced = [len(p) for p in P.quantity_skew(LABELS, 6, 1e5, rng(0), min_size=10)]
    assert max(balanced) - min(balanced) <= 3
    with pytest.raises(ConfigError, match="min_size"):
        P.quantity_skew(LABELS, 100, 1.0, rng(), min_size=10)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: P.make_partition("random", LABELS, 4, rng()), "partition.name"),
        (lambda: P.make_partition("iid", LABELS, 1000, rng()), "more clients than samples"),
        (lambda: P.make_partition("iid", LABELS, 0, rng()), "n_clients"),
        (lambda: P.make_partition("dirichlet", LABELS, 4, rng(), alpha=0.0), "partition.alpha"),
        (lambda: P.make_partition("quantity", LABELS, 4, rng(), alpha=-1.0), "partition.alpha"),
        (lambda: P.make_partition("dirichlet", LABELS, 4, rng()), "partition.alpha"),
        (lambda: P.make_partition("iid", LABELS, 4, rng(), alpha=1.0), "alpha"),
        (lambda: P.make_partition("dominant", LABELS, 4, rng(), dominant_share=1.5), "dominant_share"),
    ],
)
def test_make_partition_refusals(call, message):
    with pytest.raises(ConfigError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_single_client_gets_everything():
    for name, kw in SCHEMES.items():
        kw = {"shards_per_client": 1} if name == "shards" else kw
        (only,) = P.make_partition(name, LABELS, 1, rng(), **kw)
        assert np.array_equal(only, np.arange(len(LABELS)))


def test_partition_report_hand_example():
    labels = np.array([0, 0, 1, 2])
    clients = [np.array([0, 2]), np.array([1, 3])]
    report = P.partition_report(clients, labels, 4, missing_codes=np.array([0, 1, 2, 2], dtype=np.int8))
    assert report == {
        "n_clients": 2,
        "sizes": [2, 2],
        "label_histograms": [[1, 1, 0, 0], [1, 0, 1, 0]],
        "missing_histograms": [
            {"complete": 1, "text_missing": 0, "image_missing": 1},
            {"complete": 0, "text_missing": 1, "image_missing": 1},
        ],
    }
    assert json.loads(json.dumps(report)) == report
    assert P.partition_report(clients, labels, 3)["missing_histograms"] is None
