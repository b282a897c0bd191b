"""PPT's baselines (methods.md §3c, §5-7) on one prompted backbone: shallow VPT with 10 tokens and
PFPT's adaptor head, each aggregated by its FL rule.

- ``fedavg-pt``: FedAvg of prompts and head (by sample count).
- ``fedprox-pt``: + (mu/2)||w - w_global||^2 on the client, mu 1e-3, from round 2.
- ``scaffold-pt``: SCAFFOLD, control variates through the per-client fit payload, server lr 1.
- ``fedopt-pt``: server Adam on the averaged pseudo-gradient; its state is checkpointed.
- ``gmm-pt``: the global prompts are the means of a Bayesian GMM over all clients' prompt tokens.

pFedPG (a server-side personalised prompt generator) is :mod:`fedbench.methods.pfedpg`.
"""

from __future__ import annotations

from fedbench.methods.fedavg import FedAvgAggregator
from fedbench.methods.ppt.plan import PLAN
from fedbench.methods.ppt.prompted import REQUIRES
from fedbench.methods.prompt_baselines.fedopt import FedOptPTAggregator, FedOptPTOptions
from fedbench.methods.prompt_baselines.gmm import GMMPTAggregator, GMMPTOptions
from fedbench.methods.prompt_baselines.scaffold import (
    ScaffoldPTAggregator,
    ScaffoldPTOptions,
    ScaffoldVPTModule,
)
from fedbench.methods.prompt_baselines.vpt import (
    FedOptVPTModule,
    FedProxPTOptions,
    FedProxVPTModule,
    VPTModule,
    VPTOptions,
)
from fedbench.methods.registry import MethodSpec, register

_BASE = (
    "Shallow VPT (10 prompt tokens before layer 0) on the frozen backbone, PFPT's adaptor head "
    "(Linear 512, dropout 0.5, Linear) on the [CLS] (on the torchvision-vit backbone: on its frozen "
    "1000-way ImageNet head, as the code), local Adam (0.9, 0.98, eps 1e-6); on PPT's protocol (see ppt). "
)

SPECS = [
    MethodSpec(
        name="fedavg-pt",
        client=VPTModule,
        aggregator=FedAvgAggregator,
        options=VPTOptions,
        description="PPT baseline: FedAvg of shallow VPT prompts and adaptor head",
        notes=_BASE + "Prompts and head averaged by client sample count.",
        bench_plan=PLAN,
        requires=REQUIRES,
    ),
    MethodSpec(
        name="fedprox-pt",
        client=FedProxVPTModule,
        aggregator=FedAvgAggregator,
        options=FedProxPTOptions,
        description="PPT baseline: FedProx (mu 1e-3 from round 2) over VPT prompts and head",
        notes=_BASE + "FedAvg server; clients add (mu/2)||w - w_global||^2 over prompts and head, mu 1e-3, "
        "from round 2 on (prox_from_round), as PFPT.",
        bench_plan=PLAN,
        requires=REQUIRES,
    ),
    MethodSpec(
        name="scaffold-pt",
        client=ScaffoldVPTModule,
        aggregator=ScaffoldPTAggregator,
        options=ScaffoldPTOptions,
        description="PPT baseline: SCAFFOLD (option II) over VPT prompts and head",
        notes=_BASE.replace(
            "local Adam (0.9, 0.98, eps 1e-6)",
            "local plain SGD at train.lr * lr_scale (20), or at "
            "the option step (PPT's paper tables: 1e-3, PFPT's run_scaffold_*.sh)",
        )
        + "SCAFFOLD option II: the server keeps c and each client's c_i (checkpointed) and sends them with "
        "each fit; clients step along g + c - c_i and return c_i+ - c_i; server lr 1, uniform model mean, "
        "N = the federation's client count (PFPT's code defaults it to a hard-coded 100). Clients start from "
        "the current global model (PFPT: from their own stale copy).",
        bench_plan=PLAN,
        needs_server_context=True,
        requires=REQUIRES,
    ),
    MethodSpec(
        name="fedopt-pt",
        client=FedOptVPTModule,
        aggregator=FedOptPTAggregator,
        options=FedOptPTOptions,
        description=(
            "PPT baseline: FedAdam (server Adam on the averaged pseudo-gradient) over VPT prompts and head"
        ),
        notes=_BASE
        + "Server Adam on g = x - weighted mean(y_i) (FedAdam, Reddi et al.: lr 1e-2, betas 0.9/0.99, eps "
        "1e-3, no bias correction; PFPT: lr 5e-5, 0.9/0.98, 1e-6, bias-corrected); the Adam state is "
        "checkpointed with the round. Clients start from the server model (client_start=mean: from the plain "
        "mean, as PFPT's code). PPT's paper tables run PFPT's settings: server_lr 5e-5, beta2 0.98, eps "
        "1e-6, bias_correction, client_start=mean.",
        bench_plan=PLAN,
        requires=REQUIRES,
    ),
    MethodSpec(
        name="gmm-pt",
        client=VPTModule,
        aggregator=GMMPTAggregator,
        options=GMMPTOptions,
        description="PPT baseline: global prompts = means of a Bayesian GMM over all clients' prompt tokens",
        notes=_BASE
        + "A Bayesian Gaussian mixture (scikit-learn, n_components = n_init = 10, diagonal covariances "
        "(covariance_type=full is PFPT's, about 2 min per aggregation at width 384 on one CPU thread), "
        "seeded) is fitted to the union of the clients' prompt tokens; its means, by weight, are the global "
        "prompts; the head is FedAvg'd.",
        bench_plan=PLAN,
        requires=REQUIRES,
    ),
]

for _spec in SPECS:
    register(_spec)
