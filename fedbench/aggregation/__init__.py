"""Shared server-side math: weighted means, probabilistic prompt matching, CKA weights.

Pure functions over tensors, with no Lightning or method state, so each rule is unit-tested
against an independent computation and reused by several methods.
"""

from fedbench.aggregation.cka import cka_weights, linear_cka
from fedbench.aggregation.prob_matching import (
    MatchResult,
    PopularityNet,
    ScaleNet,
    assign_client,
    client_cost,
    client_log_likelihood,
    match_prompts,
    matching_objective,
)
from fedbench.aggregation.weighted import state_bytes, weighted_mean

__all__ = [
    "MatchResult",
    "PopularityNet",
    "ScaleNet",
    "assign_client",
    "cka_weights",
    "client_cost",
    "client_log_likelihood",
    "linear_cka",
    "match_prompts",
    "matching_objective",
    "state_bytes",
    "weighted_mean",
]
