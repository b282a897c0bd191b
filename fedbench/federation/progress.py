"""Progress over rounds and clients with the current metric: a live bar on a terminal, one log
line per round otherwise (CI logs, files)."""

from __future__ import annotations

import sys
import time


class RoundProgress:
    def __init__(self, enabled: bool, title: str, rounds: int, start_round: int = 0):
        self.enabled = enabled
        self.title = title
        self.rounds = rounds
        self.live = None
        self.t0 = time.time()
        if enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.live = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                transient=True,
            )
            self.live.start()
            self.task_rounds = self.live.add_task(
                f"{title} rounds", total=rounds, completed=start_round, info=""
            )
            self.task_clients = self.live.add_task("  clients", total=1, info="")

    def start_round(self, round_index: int, n_clients: int) -> None:
        if self.live:
            self.live.reset(self.task_clients, total=n_clients, info=f"round {round_index + 1}")

    def client_done(self, client_id: int, loss: float) -> None:
        if self.live:
            self.live.advance(self.task_clients)
            self.live.update(self.task_clients, info=f"client {client_id} loss {loss:.3f}")

    def end_round(self, round_index: int, metric: str, value: float) -> None:
        if self.live:
            self.live.update(self.task_rounds, completed=round_index + 1, info=f"val {metric} {value:.3f}")
        elif self.enabled:
            print(
                f"[{self.title}] round {round_index + 1}/{self.rounds} val {metric} {value:.4f} "
                f"({time.time() - self.t0:.0f}s)",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.live:
            self.live.stop()
