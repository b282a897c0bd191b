"""The round loop's side concerns as callbacks: progress display, round checkpoints, W&B and the
run record. The loop calls ``on_run_start``, ``on_round_start``, ``on_client_end``,
``on_validation_start`` (after aggregation, before the round's validation score), ``on_round_end``
and ``on_run_end`` on each in order; ``close`` always runs, also when the run fails or is stopped.
"""

from __future__ import annotations

from typing import Any

from fedbench.federation.progress import RoundProgress
from fedbench.methods.base import ClientUpdate
from fedbench.tracking.records import write_record
from fedbench.tracking.wandb_log import WandbRun, round_metrics


class Callback:
    def on_run_start(self, fed) -> None: ...

    def on_round_start(self, fed, round_index: int, clients: list[int]) -> None: ...

    def on_client_end(self, fed, result: ClientUpdate) -> None: ...

    def on_validation_start(self, fed, round_index: int) -> None: ...

    def on_round_end(self, fed, entry: dict[str, Any]) -> None: ...

    def on_run_end(self, fed, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class ProgressCallback(Callback):
    def on_run_start(self, fed) -> None:
        cfg = fed.cfg
        title = f"{cfg.method.name} {cfg.missing.type}@{cfg.missing.rate} seed {cfg.seed}"
        self.bar = RoundProgress(cfg.tracking.progress, title, cfg.federation.rounds, fed.start_round)

    def on_round_start(self, fed, round_index, clients) -> None:
        self.bar.start_round(round_index, len(clients))

    def on_client_end(self, fed, result) -> None:
        self.bar.client_done(result.client_id, result.loss)

    def on_round_end(self, fed, entry) -> None:
        metric = fed.exp.bundle.metric
        self.bar.end_round(entry["round"] - 1, metric, entry["val"][metric])

    def close(self) -> None:
        if hasattr(self, "bar"):
            self.bar.close()


class CheckpointCallback(Callback):
    """A checkpoint after every round; removed once the record is written."""

    def on_round_end(self, fed, entry) -> None:
        fed.checkpoint(entry["round"])

    def on_run_end(self, fed, record) -> None:
        fed.checkpoint_path.unlink(missing_ok=True)


class WandbCallback(Callback):
    def on_run_start(self, fed) -> None:
        cfg = fed.cfg
        name = f"{cfg.method.name}-{cfg.missing.type}{cfg.missing.rate}-s{cfg.seed}"
        self.run = WandbRun(
            cfg.tracking.wandb,
            cfg.tracking.wandb_project,
            cfg.tracking.sweep,
            name,
            cfg.to_dict(),
            fed.results_dir,
        )
        self.run.__enter__()

    def on_round_end(self, fed, entry) -> None:
        self.run.log(round_metrics(entry), step=entry["round"])

    def on_run_end(self, fed, record) -> None:
        if record["status"] == "diverged":
            self.run.summary(
                {"status": "diverged", **{f"diverged/{k}": v for k, v in record["diverged"].items()}}
            )
        else:
            self.run.summary({f"final/{c}/{k}": v for c, m in record["final"].items() for k, v in m.items()})

    def close(self) -> None:
        if hasattr(self, "run"):
            self.run.__exit__(None, None, None)


class RecordCallback(Callback):
    def on_run_end(self, fed, record) -> None:
        write_record(fed.results_dir, record)


def default_callbacks() -> list[Callback]:
    """In order: the record is written before the checkpoint it supersedes is removed."""
    return [ProgressCallback(), WandbCallback(), RecordCallback(), CheckpointCallback()]
