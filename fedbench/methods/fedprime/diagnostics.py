"""Per-round diagnostics of FedPrime's retrieval: which prompts samples of each missing code use,
and how far each client's query projection has moved from its initial value.

Why these: FedPrime has no missing-aware prompts, so whatever it learns about a missing modality
must come through retrieval. If samples that miss their text retrieve the same prompts as complete
ones (``*_used_shared`` close to ``*_used_all``), the pools cannot specialise by missing pattern;
if only a few prompts are ever used (``*_used_all`` near kappa), the pools' capacity is idle. W_q
drift says whether the query projection learns at all (under the code's SGD it barely moves).

Client side, :class:`UsageTracker` records, per pool and missing code, the set of retrieved
prompt indices over a round's training batches. Server side, :func:`usage_summary` merges the
clients' records into flat per-round numbers (flat so that they plot and log as scalars).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fedbench.batch import MODALITY_CODES

CODE_NAMES = {code: name.replace(" ", "_") for code, name in MODALITY_CODES.items()}


class UsageTracker:
    """Retrieved prompt indices per pool and missing code, over one round of local training."""

    def __init__(self, pools: tuple[str, ...]):
        self.pools = pools
        self.reset()

    def reset(self) -> None:
        self.sets: dict[str, dict[int, set[int]]] = {p: {} for p in self.pools}

    def record(self, pool: str, indices: torch.Tensor, codes: torch.Tensor) -> None:
        """indices [B, kappa] retrieved for samples with missing codes [B]."""
        idx, codes = indices.detach().cpu(), codes.detach().cpu()
        for code in codes.unique().tolist():
            rows = idx[codes == code]
            self.sets[pool].setdefault(int(code), set()).update(rows.unique().tolist())

    def as_meta(self) -> dict[str, dict[str, list[int]]]:
        """{pool: {code: sorted indices}} with string keys (records are JSON)."""
        return {p: {str(c): sorted(s) for c, s in by_code.items()} for p, by_code in self.sets.items()}


def usage_summary(metas: list[dict[str, Any]], pools: tuple[str, ...]) -> dict[str, float]:
    """Flat per-round numbers from the clients' ``usage`` and ``query_drift`` metadata:

    - ``{pool}_used_{code}``: distinct prompts used by samples of that code, union over clients;
    - ``{pool}_used_all``: distinct prompts used by any sample; ``{pool}_used_shared``: those
      used by samples of more than one code;
    - ``{pool}_used_per_client``: mean over clients of each client's distinct prompts;
    - ``{pool}_query_drift``: mean over clients of ||W_q - W_q(0)||_F (and ``_rel``: divided by
      ||W_q(0)||_F).

    Inter indices refer to the inter pool all clients started the round from, so unions are
    meaningful; with the cyclic schedule too (the pool only changes at aggregation).
    """
    out: dict[str, float] = {}
    for pool in pools:
        union: dict[int, set[int]] = {}
        per_client = []
        for meta in metas:
            usage = meta.get("usage", {}).get(pool, {})
            mine: set[int] = set()
            for code, indices in usage.items():
                union.setdefault(int(code), set()).update(indices)
                mine.update(indices)
            if usage:
                per_client.append(len(mine))
        if union:
            for code, name in CODE_NAMES.items():
                if code in union:
                    out[f"{pool}_used_{name}"] = len(union[code])
            every = [i for s in union.values() for i in s]
            counts = np.bincount(every) if every else np.zeros(0, dtype=int)
            out[f"{pool}_used_all"] = int((counts > 0).sum())
            out[f"{pool}_used_shared"] = int((counts > 1).sum())
            out[f"{pool}_used_per_client"] = float(np.mean(per_client))
        drifts = [m["query_drift"][pool] for m in metas if pool in m.get("query_drift", {})]
        if drifts:
            out[f"{pool}_query_drift"] = float(np.mean([d[0] for d in drifts]))
            out[f"{pool}_query_drift_rel"] = float(np.mean([d[0] / max(d[1], 1e-12) for d in drifts]))
    return out
