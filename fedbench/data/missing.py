"""Missing-modality simulation: one int8 code per sample.

Codes follow MAP's missing table: 0 = complete, 1 = text missing, 2 = image missing. No sample ever
lacks both (MAP's "both" means "a mix of text-missing and image-missing samples").

Three training protocols are offered, because the papers disagree on where heterogeneity lives:

* per-sample (MAP, FED-PRIME): an exact number ``round(rate * n)`` of samples is drawn over the
  whole split, so clients differ only by sampling noise;
* per-client (FedMultimodal): each client lacks one modality entirely, or not at all;
* heterogeneous: each client has its own rate and type.

Every function takes an explicit ``np.random.Generator`` so tables are reproducible from the seed tree.
"""

from __future__ import annotations

import numpy as np

from fedbench import checks
from fedbench.batch import (
    BOTH_MIX_RATE,
    BOTH_MIX_RATIO,
    COMPLETE,
    IMAGE_MISSING,
    MISSING_TYPES,
    TEST_CONDITIONS,
    TEXT_MISSING,
)
from fedbench.errors import ConfigError


def _require_rng(rng) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a seeded np.random.Generator (see fedbench.seeds.rng)")
    return rng


def per_sample_missing(
    n: int, rate: float, missing_type: str, both_ratio: float = 0.5, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Exactly ``round(rate * n)`` samples, drawn without replacement, lose one modality.

    For ``"both"``, ``round(both_ratio * n_missing)`` of them lose the image (MAP's convention: the
    ratio is the image-missing share) and the rest lose the text.
    """
    rate = checks.within("missing.rate", rate, 0.0, 1.0)
    both_ratio = checks.within("missing.both_ratio", both_ratio, 0.0, 1.0)
    checks.choice("missing.type", missing_type, MISSING_TYPES)
    rng = _require_rng(rng)
    if n < 0:
        raise ConfigError(f"number of samples must be >= 0, got {n}")
    codes = np.zeros(n, dtype=np.int8)
    n_missing = int(round(rate * n))
    chosen = rng.choice(n, size=n_missing, replace=False)  # random order, so a prefix is a random subset
    if missing_type == "text":
        codes[chosen] = TEXT_MISSING
    elif missing_type == "image":
        codes[chosen] = IMAGE_MISSING
    else:
        n_image = int(round(both_ratio * n_missing))
        codes[chosen[:n_image]] = IMAGE_MISSING
        codes[chosen[n_image:]] = TEXT_MISSING
    return codes


def per_client_missing(
    client_indices: list[np.ndarray], n: int, p_missing: float, missing_type: str, rng: np.random.Generator
) -> np.ndarray:
    """FedMultimodal: each client, independently with probability ``p_missing``, lacks one modality
    for all its samples (for ``"both"`` text or image with probability 1/2). Samples held by no
    client stay complete."""
    p_missing = checks.within(
        "missing.rate", p_missing, 0.0, 1.0
    )  # per_client: missing.rate is the chance a client lacks a modality
    checks.choice("missing.type", missing_type, MISSING_TYPES)
    rng = _require_rng(rng)
    k = len(client_indices)
    lacks = rng.random(k) < p_missing  # drawn for all clients at once: client k's fate ignores order
    picks_image = rng.random(k) < 0.5
    codes = np.zeros(n, dtype=np.int8)
    for idx, lack, image in zip(client_indices, lacks, picks_image, strict=True):
        if not lack:
            continue
        if missing_type == "text" or (missing_type == "both" and not image):
            codes[idx] = TEXT_MISSING
        else:
            codes[idx] = IMAGE_MISSING
    return codes


def heterogeneous_missing(
    client_indices: list[np.ndarray],
    n: int,
    rates: list[float],
    types: list[str],
    both_ratio: float | list[float] = 0.5,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Client ``k`` gets :func:`per_sample_missing` over its own samples at ``rates[k]``, ``types[k]``.

    ``both_ratio`` is one value for all clients or one per client.
    """
    rng = _require_rng(rng)
    k = len(client_indices)
    ratios = list(both_ratio) if np.ndim(both_ratio) else [both_ratio] * k
    for what, values in (("rates", rates), ("types", types), ("both_ratio", ratios)):
        if len(values) != k:
            raise ValueError(
                f"heterogeneous_missing: {what} needs one entry per client ({k}), got {len(values)}"
            )
    codes = np.zeros(n, dtype=np.int8)
    for i, idx in enumerate(client_indices):
        idx = np.asarray(idx)
        checks.choice("missing.type", types[i], MISSING_TYPES)
        checks.within(f"missing.rate +- missing.client_spread (client {i}'s rate)", rates[i], 0.0, 1.0)
        codes[idx] = per_sample_missing(len(idx), rates[i], types[i], ratios[i], rng)
    return codes


def test_condition_codes(
    n: int,
    condition: str,
    rate: float = 0.0,
    missing_type: str = "both",
    both_ratio: float = 0.5,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Codes for one evaluation condition on a test split of ``n`` samples.

    ``as_train`` redraws the training protocol (``rate``, ``missing_type``, ``both_ratio``);
    ``text_only`` means only the text is present (every image missing), ``image_only`` the reverse;
    ``both_missing`` is the fixed 0.7 / 0.5 mix used by MAP and FED-PRIME.
    """
    if condition == "as_train":
        return per_sample_missing(n, rate, missing_type, both_ratio, rng)
    if condition == "complete":
        return np.full(n, COMPLETE, dtype=np.int8)
    if condition == "text_only":
        return np.full(n, IMAGE_MISSING, dtype=np.int8)
    if condition == "image_only":
        return np.full(n, TEXT_MISSING, dtype=np.int8)
    if condition == "both_missing":
        return per_sample_missing(n, BOTH_MIX_RATE, "both", BOTH_MIX_RATIO, rng)
    raise ConfigError(f"eval condition must be one of {', '.join(TEST_CONDITIONS)}, got {condition!r}")


test_condition_codes.__test__ = False  # its name starts with "test_"; keep pytest from collecting it


def missing_histogram(codes) -> dict[str, int]:
    """Counts per code as plain ints (JSON-ready), for partition reports and audits."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size and (codes.min() < 0 or codes.max() > 2):
        raise ConfigError(f"missing codes must be 0, 1 or 2, found {sorted(set(codes.tolist()) - {0, 1, 2})}")
    counts = np.bincount(codes, minlength=3)
    return {"complete": int(counts[0]), "text_missing": int(counts[1]), "image_missing": int(counts[2])}
