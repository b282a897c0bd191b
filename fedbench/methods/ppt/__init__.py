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
    "head on the prompted [CLS] (on torchvision-vit: on its frozen 1000-way ImageNet head, as the code); "
    "local Adam (0.9, 0.98, eps 1e-6). Clients send the pool rows used in any "
    "local batch (usage counts / max); the server matches them with the probabilistic matcher (50 outer "
    "loops) and averages the projection and head by sample count; the global pool size per round is "
    "logged. fedbench's defaults, each one option away from the code (ppt-official sets them all): "
    "per-sample retrieval (selection=batch: batch-wise majority; eval_vote_batch: its test votes over "
    "chunks of that many samples), the query-key term pulls queries to keys, lambda_r*(kappa - sum cos) "
    "(retrieval_sign=push: the code's +lambda_r*sum cos). Why pull: the paper adapts L2P's selection, whose "
    "query-key term is a distance to minimise, and validation cannot tell the two apart (docs/ppt.md, "
    "measured on the quick cells over 3 seeds); under pull the pool shrinks to about kappa (every client "
    "retrieves the same prompts and the matcher merges their copies), under push more of it stays in use. "
    "The joint-likelihood cost (matcher_cost=official), a price of 2 nats per dimension "
    "for a new global prompt (new_centre=fixed; new_centre=none is the code, new_centre=auto the calibrated "
    "price, new_centre=drift its radius from the clients' own steps, which keeps the pool bounded over "
    "80 rounds where the fixed price lets it multiply: docs/ppt.md section 4), matching on standardised "
    "prompts (standardise=false) and centres = sample-weighted means of "
    "their matched prompts (centre_update=matcher); independent client copies every round (alias_shared: "
    "the code's aliased pool, ppt-official only). " + PROTOCOL_NOTE
)

PPT = register(
    MethodSpec(
        name="ppt",
        client=PPTModule,
        aggregator=PPTAggregator,
        options=PPTOptions,
        description=(
            "PPT/PFPT: L2P prompt pool aggregated by probabilistic matching (pool size per round logged)"
        ),
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
        description=(
            "PPT as the released code: batch-wise retrieval, +sum cos, official matcher cost, no new-centre "
            "price"
        ),
        notes="PPT with the released code's choices: selection=batch with test votes over batches of 16 "
        "(eval_vote_batch=16, the code's test loader), retrieval_sign=push, matcher_cost=official, "
        "new_centre=none, standardise=false, centre_update=matcher, and alias_shared=true: from round 2 the "
        "server's and every client's pool are one tensor (Algo/communication.py:98-101), so the round's "
        "clients train it one after another (cyclic schedule), each from the global projection and head with "
        "a fresh Adam, and the matcher gets identical copies of the last client's pool; round 1 trains "
        "separate copies. Otherwise as ppt. " + PROTOCOL_NOTE,
        bench_plan=PLAN,
        requires=REQUIRES,
        schedule="cyclic",  # the aliased pool is trained by one client after another (alias_shared)
    )
)
