"""PPT / PFPT (Weng et al., NeurIPS 2024): probabilistic federated prompt-tuning.

- ``ppt``: an L2P prompt pool on the frozen backbone, aggregated by probabilistic matching
  (methods.md §3), with fedbench's defaults where paper and code leave room (config.py).
- ``ppt-official``: the same with every option set to the released code's behaviour.

Its baselines (``fedavg-pt``, ``fedprox-pt``, ``scaffold-pt``, ``fedopt-pt``, ``gmm-pt``) live in
:mod:`fedbench.methods.prompt_baselines` and share :data:`PLAN`: PPT's protocols on an image task.
"""

from __future__ import annotations

from fedbench.methods.ppt.aggregator import PPTAggregator, PPTOfficialAggregator
from fedbench.methods.ppt.config import PPTOfficialOptions, PPTOptions
from fedbench.methods.ppt.model import PPTModule
from fedbench.methods.ppt.plan import PLAN, PROTOCOL_NOTE
from fedbench.methods.ppt.prompted import REQUIRES
from fedbench.methods.registry import MethodSpec, register

__all__ = ["PLAN", "PPTAggregator", "PPTModule", "PPTOfficialAggregator", "PPTOfficialOptions", "PPTOptions"]

NOTES = (
    "L2P pool (20 prompts, one token each, top-10 per sample) on the frozen backbone, query = the frozen "
    "[CLS] of the un-prompted input through a trainable projection, key = the normalised prompt, adaptor "
    "head on the prompted [CLS]; local Adam (0.9, 0.98, eps 1e-6). Clients send the pool rows used in any "
    "local batch (usage counts / max); the server matches them with the probabilistic matcher (50 outer "
    "loops) and averages the projection and head by sample count; the global pool size per round is "
    "logged. fedbench's defaults, each one option away from the code (ppt-official sets them all): "
    "per-sample retrieval (selection=batch: batch-wise majority), the query-key term pulls queries to "
    "keys, lambda_r*(kappa - sum cos) (retrieval_sign=push: +lambda_r*sum cos), the joint-likelihood "
    "cost (matcher_cost=official), a price of 2 nats per dimension for a new global prompt "
    "(new_centre=fixed; new_centre=none is the code, new_centre=auto the calibrated price), matching on "
    "standardised prompts (standardise=false) and centres = sample-weighted means of their matched "
    "prompts (centre_update=matcher). " + PROTOCOL_NOTE
)

PPT = register(
    MethodSpec(
        name="ppt",
        client=PPTModule,
        aggregator=PPTAggregator,
        options=PPTOptions,
        description="PPT/PFPT: L2P prompt pool aggregated by probabilistic matching (pool size per round logged)",
        notes=NOTES,
        bench_plan=PLAN,
        requires=REQUIRES,
    )
)
PPT_OFFICIAL = register(
    MethodSpec(
        name="ppt-official",
        client=PPTModule,
        aggregator=PPTOfficialAggregator,
        options=PPTOfficialOptions,
        description="PPT as the released code: batch-wise retrieval, +sum cos, official matcher cost, no new-centre price",
        notes="PPT with the released code's choices: selection=batch, retrieval_sign=push, matcher_cost=official, "
        "new_centre=none, standardise=false, centre_update=matcher. Otherwise as ppt. " + PROTOCOL_NOTE,
        bench_plan=PLAN,
        requires=REQUIRES,
        schedule="cyclic",  # the aliased pool is trained by one client after another (alias_shared)
    )
)
