"""GMM-PT: the global prompts are the means of a Bayesian Gaussian mixture fitted to the union of
the clients' prompt tokens (:func:`fedbench.aggregation.gmm.gmm_prompts`, scikit-learn); the head
is FedAvg'd by sample count, as PFPT's ``simple_gmm_prompt`` branch.

PFPT fits ``n_components = n_init = n_tokens`` with full covariances and no seed; fedbench seeds the
fit with the round's aggregation seed and keeps the n_tokens components in order of weight (the
order does not matter to shallow prompts without position embeddings).

Covariances are diagonal by default (``covariance_type="full"`` is PFPT's): a full covariance in
d dimensions costs a d x d Cholesky per component, EM iteration and restart. Measured on one
thread of a busy 2-core machine (5 clients x 10 tokens, d = 384, 10 components, 10 restarts), one
aggregation took 131 s with "full" and 0.3 s with "diag": "full" costs more per round than all the
local training of a quick-profile round. With
10 tokens per client and 5-10 clients, a full covariance is estimated from a handful of points
in 384 or 768 dimensions anyway, i.e. mostly from scikit-learn's ``reg_covar``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedbench import checks
from fedbench.aggregation.gmm import COVARIANCE_TYPES, gmm_prompts
from fedbench.aggregation.weighted import weighted_mean
from fedbench.methods.base import Aggregator, ClientUpdate, State
from fedbench.methods.prompt_baselines.vpt import PROMPTS_KEY, VPTOptions


@dataclass
class GMMPTOptions(VPTOptions):
    """covariance_type: scikit-learn's ("diag"; PFPT "full", see the module docstring); max_iter:
    EM iterations per restart (100, scikit-learn's and PFPT's)."""

    covariance_type: str = "diag"
    max_iter: int = 100

    def validate(self) -> None:
        super().validate()
        # the server fits its mixture to the clients' prompt tokens: it needs some
        checks.at_least("method.options.n_tokens", self.n_tokens, 1, "10")
        checks.choice("method.options.covariance_type", self.covariance_type, COVARIANCE_TYPES)
        checks.at_least("method.options.max_iter", self.max_iter, 1, "100")


class GMMPTAggregator(Aggregator):
    """GMM means for ``prompts``, FedAvg for the rest."""

    def __init__(self, options: GMMPTOptions, context=None):
        super().__init__(options, context)
        self._meta: dict[str, Any] = {}

    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        weights = [u.n_samples for u in updates]
        rest = [{k: v for k, v in u.state.items() if k != PROMPTS_KEY} for u in updates]
        out = weighted_mean(rest, weights) if rest[0] else {}
        fit = gmm_prompts(
            [u.state[PROMPTS_KEY] for u in updates],
            n_prompts=self.options.n_tokens,
            seed=seed % 2**32,
            covariance_type=self.options.covariance_type,
            max_iter=self.options.max_iter,
        )
        out[PROMPTS_KEY] = fit.prompts
        self._meta = {"gmm_components": fit.n_kept, "gmm_converged": fit.converged}
        return out

    def metadata(self) -> dict[str, Any]:
        return dict(self._meta)
