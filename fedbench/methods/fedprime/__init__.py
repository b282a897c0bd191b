"""FedPrime (Phung et al., ICCV 2025) and its ablations FED-INTER and FED-INTRA.

- ``fedprime``: intra pool (FedAvg) + inter pool (probabilistic matching), personal query
  projections.
- ``fed-inter``: the inter pool alone, with the matching aggregator.
- ``fed-intra``: the intra pool alone, FedAvg only.

Spec: reference/methods.md §2 (and §3c for the matcher); choices where it leaves room are options
in :mod:`.config` and summarised in ``NOTES`` for the leaderboard.
"""

from __future__ import annotations

from fedbench.methods.fedprime.aggregator import FedPrimeAggregator
from fedbench.methods.fedprime.config import FedPrimeOptions
from fedbench.methods.fedprime.model import FedInterModule, FedIntraModule, FedPrimeModule
from fedbench.methods.registry import BenchPlan, MethodSpec, register

__all__ = ["FedInterModule", "FedIntraModule", "FedPrimeAggregator", "FedPrimeModule", "FedPrimeOptions"]

NOTES = (
    "Retrieval is per sample by default (selection=sample), so a test prediction does not depend on "
    "its batch; selection=batch is the official batch-wise majority. The retrieval regulariser pulls "
    "queries towards their prompts, lambda_r*(kappa - sum cos) (retrieval_sign=pull, lambda_r 0.01); "
    "the official code adds +lambda_r*sum cos (retrieval_sign=push). The pooler reads position 0, the "
    "first retrieved prompt, as the official code (pool_token=cls reads the text [CLS]). Inter prompts "
    "used in any local batch are matched with the PFPT matcher (5 outer loops) after dividing them by "
    "their RMS, with a new-centre cost of 2 nats per dimension (new_cluster_cost=null is the faithful "
    "matcher, which hardly merges), and each centre is the sample-weighted mean of its matched prompts "
    "(centre_update=matcher keeps the matcher's centres); the inter pool size is logged per round. "
    "Query projections stay on the clients (personal); the global model is scored with their "
    "sample-weighted mean, and the personalized score with each client's own."
)

# FedPrime's protocol: eta = 0.7 for each missing type, clients differing in their missing patterns
# (heterogeneous rates and text/image mixes) as well as their labels (Dirichlet).
PLAN = BenchPlan(
    baselines=("fedavg", "fedprox"),
    ablations=("fed-inter", "fed-intra"),
    types=("text", "image", "both"),
    protocol="heterogeneous",
    profiles={"quick": {"rates": [0.7], "seeds": [0, 1, 2], "overrides": {"federation": {"rounds": 5, "clients_per_round": 3}}}},
)

_ABLATION = (
    "Same client and options as fedprime with one pool of kappa prompts (as the official ablation code). "
)

FEDPRIME = register(
    MethodSpec(
        name="fedprime",
        client=FedPrimeModule,
        aggregator=FedPrimeAggregator,
        options=FedPrimeOptions,
        description="intra (FedAvg) + inter (probabilistic matching) prompt pools with input-adaptive retrieval",
        personalized=True,
        notes=NOTES,
        bench_plan=PLAN,
    )
)
FED_INTER = register(
    MethodSpec(
        name="fed-inter",
        client=FedInterModule,
        aggregator=FedPrimeAggregator,
        options=FedPrimeOptions,
        description="FedPrime ablation: the inter-client pool alone, aggregated by probabilistic matching",
        personalized=True,
        notes=_ABLATION + NOTES,
    )
)
FED_INTRA = register(
    MethodSpec(
        name="fed-intra",
        client=FedIntraModule,
        aggregator=FedPrimeAggregator,
        options=FedPrimeOptions,
        description="FedPrime ablation: the intra-client pool alone, aggregated by FedAvg",
        personalized=True,
        notes=_ABLATION + NOTES,
    )
)
