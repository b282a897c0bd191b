"""Where a round's time goes, measured from the loop's callback hooks (no change to the loop).

:class:`PhaseTimer` is a :class:`~fedbench.federation.callbacks.Callback` that wraps other
callbacks (for example the checkpoint callback) and forwards every hook to them, so it sees the
start and end of each of their calls and can charge that time to a named phase. Pass it as the
only callback of a run (``run_experiment(cfg, callbacks=[timer])``). Per round it splits the wall
time into:

- ``fit``: from ``on_round_start`` to the last client's ``on_client_end`` (the executor running the
  round's client fits, with the aggregator's ``configure_fit`` and the tasks' assembly);
- ``aggregation``: from the last client's end to ``on_validation_start``;
- ``validation``: from ``on_validation_start`` to ``on_round_end`` (the global model scored on the
  validation split, the best-round bookkeeping);
- one phase per wrapped callback (its time in any hook during the round, e.g. ``checkpoint``);
- ``other``: the rest of the round's wall time (client sampling before ``on_round_start``, ...).

A round's wall time runs from the end of the previous round (or ``on_run_start``) to the end of
the wrapped callbacks' ``on_round_end``, so the phases add up to it exactly and the rounds never
overlap.
"""

from __future__ import annotations

import time
from typing import Any

from fedbench.federation.callbacks import Callback

CORE_PHASES = ("fit", "aggregation", "validation")


class PhaseTimer(Callback):
    """Per-round phase times in seconds (``rounds``: one dict per round, with ``wall``)."""

    def __init__(self, wrapped: dict[str, Callback] | None = None, clock=time.perf_counter):
        self.wrapped = dict(wrapped or {})
        clash = set(self.wrapped) & {*CORE_PHASES, "other", "wall"}
        if clash:
            raise ValueError(
                f"PhaseTimer: wrapped callback names {sorted(clash)} clash with its own phase names"
            )
        self.clock = clock
        self.rounds: list[dict[str, float]] = []
        self.run_start: float | None = None
        self._mark: float | None = None  # end of the previous round (or the run's start)

    @property
    def phases(self) -> tuple[str, ...]:
        return (*CORE_PHASES, *self.wrapped, "other")

    def _forward(self, hook: str, *args) -> None:
        for name, cb in self.wrapped.items():
            t = self.clock()
            getattr(cb, hook)(*args)
            if self._open is not None:
                spent = self.clock() - t
                self._open["wrapped"][name] += spent
                self._open["wrapped_total"] += spent

    def _note(self, mark: str) -> None:
        """A mark: the time now and the wrapped callbacks' time so far (subtracted from intervals)."""
        self._open[mark] = (self.clock(), self._open["wrapped_total"])

    def _between(self, a: str, b: str) -> float:
        (ta, wa), (tb, wb) = self._open[a], self._open[b]
        return max(0.0, (tb - ta) - (wb - wa))

    # ----- hooks ---------------------------------------------------------------------------------
    def on_run_start(self, fed) -> None:
        self._open: dict[str, Any] | None = None
        self.run_start = self._mark = self.clock()
        self._forward("on_run_start", fed)

    def on_round_start(self, fed, round_index, clients) -> None:
        self._open = {
            "begin": (self._mark, 0.0),
            "wrapped": dict.fromkeys(self.wrapped, 0.0),
            "wrapped_total": 0.0,
        }
        self._note("start")
        self._open["last_client"] = self._open["start"]  # stays so when every sampled client dropped
        self._forward("on_round_start", fed, round_index, clients)

    def on_client_end(self, fed, result) -> None:
        self._note("last_client")
        self._forward("on_client_end", fed, result)

    def on_validation_start(self, fed, round_index) -> None:
        self._note("validation")
        self._forward("on_validation_start", fed, round_index)

    def on_round_end(self, fed, entry) -> None:
        self._note("validation_end")
        self._open.setdefault("validation", self._open["validation_end"])
        self._forward("on_round_end", fed, entry)
        self._note("end")
        o = self._open
        times = {
            "fit": self._between("start", "last_client"),
            "aggregation": self._between("last_client", "validation"),
            "validation": self._between("validation", "validation_end"),
            **o["wrapped"],
        }
        wall = o["end"][0] - o["begin"][0]
        times["other"] = max(0.0, wall - sum(times.values()))
        times["wall"] = wall
        self.rounds.append(times)
        self._mark, self._open = o["end"][0], None

    def on_run_end(self, fed, record) -> None:
        self._forward("on_run_end", fed, record)

    def close(self) -> None:
        for cb in self.wrapped.values():
            cb.close()

    # ----- summaries -----------------------------------------------------------------------------
    def totals(self) -> dict[str, float]:
        """Each phase (and ``wall``) summed over the rounds."""
        return {k: sum(r[k] for r in self.rounds) for k in (*self.phases, "wall")}

    def overhead_share(self, compute: tuple[str, ...] = ("fit", "validation")) -> float:
        """The share of the rounds' wall time spent outside ``compute`` phases (0..1)."""
        t = self.totals()
        return (t["wall"] - sum(t[k] for k in compute)) / t["wall"] if t["wall"] > 0 else 0.0
