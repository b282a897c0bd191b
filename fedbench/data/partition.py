"""Split one training set among federated clients.

Every partition returns a list with one sorted index array per client; the arrays are disjoint and
together cover every sample, so no data is silently dropped and a run's partition can be audited
from its report. All randomness comes from the ``np.random.Generator`` passed in (see
``fedbench.seeds``), so the same seed gives the same clients.

Label skew follows the papers fedbench reproduces: Dirichlet per class (FedMA / PPT / FED-PRIME),
pathological shards (McMahan et al.), PPT's one-dominant-class "imbalanced" split, and skew in
client size only (quantity skew).
"""

from __future__ import annotations

import inspect

import numpy as np

from fedbench.config import PARTITION_NAMES
from fedbench.errors import ConfigError


def _check_clients(labels, n_clients) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ConfigError(f"labels must be a 1-D array, got shape {labels.shape}")
    if int(n_clients) != n_clients or n_clients < 1:
        raise ConfigError(f"partition.n_clients must be a positive integer, got {n_clients!r}")
    if n_clients > len(labels):
        raise ConfigError(
            f"more clients than samples ({n_clients} > {len(labels)}); lower partition.n_clients"
        )
    return labels


def _check_alpha(alpha: float, field: str = "partition.alpha") -> float:
    try:
        alpha = float(alpha)
    except (TypeError, ValueError):
        raise ConfigError(f"{field} must be a number > 0, got {alpha!r}") from None
    if not np.isfinite(alpha) or alpha <= 0:
        raise ConfigError(f"{field} must be > 0, got {alpha}")
    return float(alpha)


def _check_min_size(n: int, n_clients: int, min_size: int) -> None:
    if n_clients * min_size > n:
        raise ConfigError(
            f"{n_clients} clients x min_size {min_size} needs {n_clients * min_size} samples but only {n} "
            "exist; lower partition.n_clients or partition.min_size"
        )


def _cut(indices: np.ndarray, shares: np.ndarray) -> list[np.ndarray]:
    """Cut ``indices`` into consecutive pieces of (rounded) relative sizes ``shares``."""
    cuts = np.round(np.cumsum(shares)[:-1] / shares.sum() * len(indices)).astype(int)
    return np.split(indices, cuts)


def _collect(pieces: list[list[np.ndarray]], n_clients: int) -> list[np.ndarray]:
    """Join each client's pieces into one sorted int64 array."""
    return [
        np.sort(np.concatenate(pieces[k] + [np.empty(0, np.int64)]).astype(np.int64))
        for k in range(n_clients)
    ]


def iid(labels, n_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Stratified equal split: every client gets each class in proportion; sizes differ by at most 1.

    Samples are shuffled within class, laid out class by class and dealt round-robin to clients in a
    random order, so the clients that get one sample more are random too.
    """
    labels = _check_clients(labels, n_clients)
    order = np.concatenate([rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)])
    owner = rng.permutation(n_clients)[np.arange(len(order)) % n_clients]
    by_owner = order[np.argsort(owner, kind="stable")]  # grouped by client: linear in clients, not quadratic
    return [
        np.sort(part) for part in np.split(by_owner, np.cumsum(np.bincount(owner, minlength=n_clients))[:-1])
    ]


def dirichlet(
    labels, n_clients: int, alpha: float, rng: np.random.Generator, min_size: int = 8, max_tries: int = 1000
) -> list[np.ndarray]:
    """Label skew: per class, client shares ~ Dir(alpha * 1); redrawn until every client has ``min_size``.

    Small alpha concentrates each class on few clients; large alpha approaches :func:`iid`. PPT
    (``dirichlet_split_noniid``) also redraws the whole partition until the smallest client is large
    enough, but its test is strict (``> least_samples``, 32 in its runs), so PPT's setting here is
    ``min_size=33``. PPT cuts at floor positions and does not shuffle within a class; this rounds
    the cuts and shuffles, which changes no client's expected share.
    """
    labels = _check_clients(labels, n_clients)
    alpha = _check_alpha(alpha)
    _check_min_size(len(labels), n_clients, min_size)
    by_class = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    for _ in range(max_tries):
        pieces: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for idx in by_class:
            shares = rng.dirichlet(np.full(n_clients, alpha))
            for k, part in enumerate(_cut(rng.permutation(idx), shares)):
                pieces[k].append(part)
        clients = _collect(pieces, n_clients)
        if min(len(c) for c in clients) >= min_size:
            return clients
    raise ConfigError(
        f"no Dirichlet(alpha={alpha}) partition gave all {n_clients} clients >= {min_size} samples in "
        f"{max_tries} tries; raise partition.alpha or lower partition.min_size / partition.n_clients"
    )


def shards(labels, n_clients: int, shards_per_client: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Pathological non-IID (McMahan et al.): sort by label, cut into equal shards, deal them out.

    With classes larger than a shard, a client sees at most ``2 * shards_per_client`` labels.
    """
    labels = _check_clients(labels, n_clients)
    if int(shards_per_client) != shards_per_client or shards_per_client < 1:
        raise ConfigError(
            f"partition.shards_per_client must be a positive integer, got {shards_per_client!r}"
        )
    n_shards = n_clients * shards_per_client
    if n_shards > len(labels):
        raise ConfigError(
            f"{n_shards} shards for {len(labels)} samples leaves empty shards; lower "
            "partition.shards_per_client"
        )
    shuffled = rng.permutation(len(labels))  # random order within each label after the stable sort
    by_label = shuffled[np.argsort(labels[shuffled], kind="stable")]
    pieces = np.array_split(by_label, n_shards)
    deal = rng.permutation(n_shards).reshape(n_clients, shards_per_client)
    return [np.sort(np.concatenate([pieces[s] for s in deal[k]])) for k in range(n_clients)]


def _cut_floor(indices: np.ndarray, shares: np.ndarray) -> list[np.ndarray]:
    """Cut ``indices`` at floor(cumsum(shares) * n), as PPT's partitioner does (the last piece takes
    the rest)."""
    cuts = np.floor(np.cumsum(shares)[:-1] / shares.sum() * len(indices)).astype(int)
    return np.split(indices, cuts)


def _dominant_groups(
    n_clients: int, n_classes: int, n_dominant: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """PPT's client groups: d shuffles of the T clients, laid end to end and cut at round(k d T / C).

    Group k (k = 0..C-1) lists the clients dominated by the k-th class; each client appears d
    times over all groups, and may appear twice in one group (it then gets two shares). Which
    classes get one slot more (when C does not divide d T) follows from the rounding, as in PPT.
    """
    slots = np.concatenate([rng.permutation(n_clients) for _ in range(n_dominant)])
    cuts = np.round(np.arange(1, n_classes) * (n_dominant * n_clients / n_classes)).astype(int)
    return np.split(slots, cuts)


def dominant_class(
    labels,
    n_clients: int,
    rng: np.random.Generator,
    dominant_share: float = 0.99,
    rest_alpha: float = 1.0,
    min_size: int = 1,
    n_dominant: int = 1,
    max_tries: int = 1000,
) -> list[np.ndarray]:
    """PPT's "imbalanced" split (``manual_allocating_noniid``; ``n_dominant`` is its ``n_dominated_class``).

    Clients are shuffled and cut into one group per class (see :func:`_dominant_groups`); a
    group's clients are dominated by that class. PPT uses ``n_dominant=1`` except on
    TinyImageNet (20 of 200 classes per client). For each class of n_c samples, floor(0.99 n_c)
    (``dominant_share``) are split evenly among its group (sizes differ by at most one), and the
    other n_c - floor(0.99 n_c) go to every other client with Dir(``rest_alpha`` * 1) shares, cut
    at floor positions as PPT does. The whole draw is repeated until every client holds
    ``min_size`` samples (PPT has no minimum here; its clients are large anyway).

    Beyond PPT, whose code fails in these cases: with fewer clients than classes, a class with an
    empty group is spread entirely by Dir(``rest_alpha``) over all clients, and a class whose group
    holds every client keeps its remainder among them. Samples are shuffled within their class first
    (PPT takes the first 99% in dataset order), so the dataset's order cannot leak into a client.
    """
    labels = _check_clients(labels, n_clients)
    if not 0.0 <= dominant_share <= 1.0:
        raise ConfigError(f"partition.dominant_share must be in [0, 1], got {dominant_share}")
    rest_alpha = _check_alpha(rest_alpha, "partition.rest_alpha")
    if isinstance(n_dominant, bool) or int(n_dominant) != n_dominant or n_dominant < 1:
        raise ConfigError(f"partition.n_dominant must be a positive integer, got {n_dominant!r}")
    _check_min_size(len(labels), n_clients, min_size)
    classes = np.unique(labels)
    by_class = [np.flatnonzero(labels == c) for c in classes]
    for _ in range(max_tries):
        groups = _dominant_groups(n_clients, len(classes), n_dominant, rng)
        pieces: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for idx, owners in zip(by_class, groups, strict=True):
            idx = rng.permutation(idx)
            n_dom = 0
            if len(owners):  # round() first: 0.29 * 100 is 28.999999999999996 in floating point
                n_dom = int(np.floor(round(dominant_share * len(idx), 9)))
                for k, part in zip(owners, np.array_split(idx[:n_dom], len(owners)), strict=True):
                    pieces[k].append(part)
            others = np.setdiff1d(np.arange(n_clients), owners)
            receivers = others if len(others) else np.unique(owners)
            shares = rng.dirichlet(np.full(len(receivers), rest_alpha))
            for k, part in zip(receivers, _cut_floor(idx[n_dom:], shares), strict=True):
                pieces[k].append(part)
        clients = _collect(pieces, n_clients)
        if min(len(c) for c in clients) >= min_size:
            return clients
    raise ConfigError(
        f"no dominant-class partition gave all {n_clients} clients >= {min_size} samples in {max_tries} "
        "tries; lower partition.min_size or partition.n_clients"
    )


def quantity_skew(
    labels, n_clients: int, alpha: float, rng: np.random.Generator, min_size: int = 8
) -> list[np.ndarray]:
    """Clients differ only in size: ``min_size`` each plus Dir(alpha) shares of the rest, drawn iid."""
    labels = _check_clients(labels, n_clients)
    alpha = _check_alpha(alpha)
    _check_min_size(len(labels), n_clients, min_size)
    shares = rng.dirichlet(np.full(n_clients, alpha))
    spare = len(labels) - n_clients * min_size
    sizes = min_size + np.diff(np.round(np.concatenate([[0.0], np.cumsum(shares)]) * spare).astype(int))
    cuts = np.cumsum(sizes)[:-1]
    return [np.sort(part) for part in np.split(rng.permutation(len(labels)), cuts)]


# The config fields (``partition.<field>``) each partitioner reads, beside ``name`` and
# ``n_clients`` which every one uses: the run setup passes exactly these, and the leaderboard shows
# only these in a setting's label (an imbalanced split has no alpha, a Dirichlet one no n_dominant).
PARTITION_OPTIONS: dict[str, tuple[str, ...]] = {
    "iid": (),
    "dirichlet": ("alpha", "min_size"),
    "shards": ("shards_per_client",),
    "dominant": ("min_size", "n_dominant"),
    "imbalanced": ("min_size", "n_dominant"),
    "quantity": ("alpha", "min_size"),
}

PARTITIONS = {
    "iid": iid,
    "dirichlet": dirichlet,
    "shards": shards,
    "dominant": dominant_class,
    "imbalanced": dominant_class,  # PPT's name for the same split
    "quantity": quantity_skew,
}
assert tuple(PARTITIONS) == PARTITION_NAMES, "fedbench.config.PARTITION_NAMES names the partitions"


def make_partition(name: str, labels, n_clients: int, rng: np.random.Generator, **kwargs) -> list[np.ndarray]:
    """Dispatch by config name; unknown names or options fail with the list of valid ones."""
    if name not in PARTITIONS:
        raise ConfigError(f"partition.name must be one of {', '.join(PARTITIONS)}, got {name!r}")
    fn = PARTITIONS[name]
    params = {
        k: v for k, v in inspect.signature(fn).parameters.items() if k not in ("labels", "n_clients", "rng")
    }
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(
            f"partition {name!r} does not take {', '.join(unknown)}; its options are "
            f"{', '.join(params) or 'none'}"
        )
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in kwargs]
    if missing:
        raise ConfigError(f"partition {name!r} needs {', '.join('partition.' + k for k in missing)}")
    if "alpha" in kwargs:
        _check_alpha(kwargs["alpha"])
    _check_clients(labels, n_clients)
    return fn(labels, n_clients, rng=rng, **kwargs)


def partition_report(client_indices, labels, n_classes: int, missing_codes=None) -> dict:
    """Per-client sizes, label histograms and (optionally) missing-pattern histograms, as plain ints."""
    from fedbench.data.missing import missing_histogram

    labels = np.asarray(labels)
    return {
        "n_clients": len(client_indices),
        "sizes": [int(len(idx)) for idx in client_indices],
        "label_histograms": [
            [int(v) for v in np.bincount(labels[np.asarray(idx, dtype=np.int64)], minlength=n_classes)]
            for idx in client_indices
        ],
        "missing_histograms": None
        if missing_codes is None
        else [
            missing_histogram(np.asarray(missing_codes)[np.asarray(idx, dtype=np.int64)])
            for idx in client_indices
        ],
    }
