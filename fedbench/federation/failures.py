"""Simulated client failures (as PFLlib, FLGo and FedScale offer): dropped clients, stragglers
against a round deadline, and partial local work. Every draw comes from the seed tree by
(round, client), so a run with failures is as reproducible as one without, whatever the executor."""

from __future__ import annotations

from dataclasses import dataclass, field

from fedbench.config import FailuresConfig
from fedbench.seeds import rng


@dataclass
class RoundFailures:
    dropped: list[int] = field(default_factory=list)
    work: dict[int, float] = field(default_factory=dict)  # clients that finish only part of their local steps

    def as_record(self) -> dict:
        return {"dropped": self.dropped, "partial_work": {str(c): round(w, 4) for c, w in self.work.items()}}


def draw_failures(cfg: FailuresConfig, seed: int, round_index: int, clients: list[int]) -> RoundFailures:
    out = RoundFailures()
    if cfg == FailuresConfig():
        return out
    for c in clients:
        u_drop, u_slow, u_part, u_frac = rng(seed, "failures", round_index, c).random(4)
        work = 1.0
        if u_slow < cfg.straggler_rate:
            work = min(1.0, cfg.deadline / cfg.slowdown)
        if u_part < cfg.partial_rate:
            work *= u_frac
        if u_drop < cfg.drop_rate or work <= 0.0:
            out.dropped.append(c)
        elif work < 1.0:
            out.work[c] = work
    return out
