"""GMM-PT (PFPT's baseline): global prompts as the means of a Bayesian Gaussian mixture.

The clients' prompt tokens are pooled into one cloud [sum_t n_t, d], a variational Bayesian
Gaussian mixture (scikit-learn's ``BayesianGaussianMixture``, Dirichlet-process weight prior) is
fitted to it, and the component means become the new global prompts. It is the simplest
"prompts as a set" aggregator: no matching, no client structure, so it is the baseline that the
probabilistic matcher (:mod:`.prob_matching`) is compared with.

What PFPT's code does (``Algo/communication.py``, branch ``simple_gmm_prompt``): the squeezed
[n_tokens, d] prompt of every participating client is stacked, a mixture with
``n_components = n_init = n_tokens`` and scikit-learn's defaults otherwise (full covariances,
100 iterations, k-means initialisation, *no* random_state) is fitted, and all ``n_tokens``
means are returned in component order, whatever their weights.

fedbench keeps those defaults and adds:

- a seed (``random_state``), so a round is reproducible;
- the number of global prompts is always ``n_prompts``: components are ranked by mixture weight,
  those with weight <= ``weight_threshold`` are dropped, the top ``n_prompts`` are kept, and if
  fewer remain the rest are filled with the mean token of the pooled cloud. With the defaults
  (threshold 0, ``n_components = n_prompts``) every component is kept, as in PFPT; only the order
  (by weight) differs, which a shallow prompt without position embeddings does not see. The fill
  value is where an unused Dirichlet-process component's mean drifts anyway (the prior mean is
  the data mean), so a threshold only makes that explicit.
- if the cloud holds fewer tokens than components, the component count is lowered to the
  token count (scikit-learn refuses otherwise) and the rest is filled as above.

Cost: full covariances in d dimensions cost O(d^3) per component per iteration, times n_init
restarts: seconds at d = 384 with 10 components, much more at d = 768. ``covariance_type="diag"``
is the cheap variant (not PFPT's).

Deep prompts (one prompt per layer) should be aggregated one layer at a time: every leading
dimension of a client tensor is flattened into the token axis.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["GMMPrompts", "gmm_prompts"]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@dataclass
class GMMPrompts:
    """The outcome of one GMM aggregation.

    prompts: [n_prompts, d] new global prompts, in the first client tensor's dtype and device.
    weights: [n_prompts] float64 mixture weight of each row's component; 0 for filled rows.
    n_kept: how many rows are component means (the rest are the pooled mean token).
    converged: whether the best of the restarts converged within ``max_iter``.
    """

    prompts: Tensor
    weights: Tensor
    n_kept: int
    converged: bool


def _pool_tokens(client_prompts: Sequence[Tensor]) -> np.ndarray:
    if len(client_prompts) == 0:
        raise ValueError("gmm_prompts: no client prompts to aggregate")
    d = client_prompts[0].shape[-1]
    rows = []
    for k, p in enumerate(client_prompts):
        if p.ndim < 2 or p.shape[-1] != d:
            raise ValueError(
                f"gmm_prompts: client {k} prompt has shape {tuple(p.shape)}; expected [..., n_tokens, {d}]"
            )
        rows.append(p.detach().to(device="cpu", dtype=torch.float64).reshape(-1, d).numpy())
    tokens = np.concatenate(rows)
    if not np.isfinite(tokens).all():
        raise ValueError("gmm_prompts: client prompts contain NaN or inf")
    return tokens


def gmm_prompts(
    client_prompts: Sequence[Tensor],
    n_prompts: int,
    *,
    seed: int,
    n_components: int | None = None,
    n_init: int | None = None,
    weight_threshold: float = 0.0,
    covariance_type: str = "full",
    max_iter: int = 100,
) -> GMMPrompts:
    """Fit a Bayesian GMM to the union of the clients' prompt tokens; return ``n_prompts`` global prompts.

    ``n_components`` and ``n_init`` default to ``n_prompts`` (PFPT). ``seed`` seeds the k-means
    initialisation of every restart. See the module docstring for the ranking and filling rule.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import BayesianGaussianMixture

    if isinstance(n_prompts, bool) or int(n_prompts) != n_prompts or n_prompts < 1:
        raise ValueError(f"gmm_prompts: n_prompts must be a positive integer, got {n_prompts!r}")
    n_components = int(n_prompts if n_components is None else n_components)
    n_init = int(n_prompts if n_init is None else n_init)
    if n_components < 1 or n_init < 1 or max_iter < 1:
        raise ValueError(
            f"gmm_prompts: n_components, n_init and max_iter must be >= 1, got {n_components}, {n_init}, "
            f"{max_iter}"
        )
    if not 0.0 <= weight_threshold < 1.0:
        raise ValueError(f"gmm_prompts: weight_threshold must be in [0, 1), got {weight_threshold}")
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"gmm_prompts: covariance_type must be one of {', '.join(COVARIANCE_TYPES)}, got "
            f"{covariance_type!r}"
        )
    tokens = _pool_tokens(client_prompts)
    gmm = BayesianGaussianMixture(
        n_components=min(n_components, len(tokens)),
        n_init=n_init,
        covariance_type=covariance_type,
        max_iter=int(max_iter),
        random_state=int(seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported through ``converged``
        gmm.fit(tokens)

    order = np.argsort(-gmm.weights_, kind="stable")
    order = order[gmm.weights_[order] > weight_threshold][: int(n_prompts)]
    n_fill = int(n_prompts) - len(order)
    prompts = np.concatenate([gmm.means_[order], np.repeat(tokens.mean(0, keepdims=True), n_fill, axis=0)])
    weights = np.concatenate([gmm.weights_[order], np.zeros(n_fill)])
    reference = client_prompts[0]
    return GMMPrompts(
        prompts=torch.from_numpy(prompts).to(device=reference.device, dtype=reference.dtype),
        weights=torch.from_numpy(weights),
        n_kept=len(order),
        converged=bool(gmm.converged_),
    )
