"""Optional Weights & Biases logging that can never break or slow down a benchmark run.

Run records are the source of truth; W&B is a convenience view. So:

- disabled (``enabled=False``, ``FEDBENCH_WANDB=0`` or ``WANDB_MODE=disabled``): every method is a
  no-op and ``wandb`` is not even imported (it is slow to import and starts a service process);
- no ``WANDB_API_KEY`` in the environment: offline mode, so a laptop or a cluster node without
  network never blocks on a login prompt or a connection timeout (sync later with ``wandb sync``);
- ``wandb`` missing or failing: one warning, then no-op; the run goes on.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from fedbench.tracking.record_shape import is_finite_number

__all__ = ["WandbRun", "round_metrics", "wandb_mode"]


def wandb_mode(enabled: bool) -> str:
    """The mode a :class:`WandbRun` would use: ``"disabled"``, ``"offline"`` or ``"online"``."""
    if not enabled or os.environ.get("FEDBENCH_WANDB", "").strip() == "0":
        return "disabled"
    requested = os.environ.get("WANDB_MODE", "").strip().lower()
    if requested == "disabled":
        return "disabled"
    if requested in ("offline", "dryrun") or not os.environ.get("WANDB_API_KEY"):
        return "offline"
    return "online"


class WandbRun:
    """One W&B run per benchmark run, used as ``with WandbRun(...) as wb: wb.log({...}, step=r)``.

    The run starts in the constructor (so it also works without ``with``); leaving the ``with`` block
    finishes it, marking it failed when an exception escaped.
    """

    def __init__(
        self,
        enabled: bool,
        project: str,
        group: str | None,
        name: str,
        config: dict[str, Any],
        dir: Path,
    ) -> None:
        self.mode = wandb_mode(enabled)
        self._run: Any = None
        if self.mode == "disabled":
            return
        try:
            os.environ.setdefault(
                "WANDB_SILENT", "true"
            )  # one sweep = many runs: keep the console for fedbench
            import wandb
        except Exception as err:  # ImportError, or a broken install failing at import time
            self._disable(
                f"W&B logging off: cannot import wandb ({err}); pip install wandb or set FEDBENCH_WANDB=0"
            )
            return
        try:
            Path(dir).mkdir(parents=True, exist_ok=True)
            self._run = wandb.init(
                project=project,
                group=group,
                name=name,
                config=config,
                dir=str(dir),
                mode=self.mode,
                reinit="create_new",
            )
        except Exception as err:
            self._disable(
                f"W&B logging off: wandb.init failed ({type(err).__name__}: {err}); set FEDBENCH_WANDB=0"
            )

    @property
    def active(self) -> bool:
        """True while logging goes to a real W&B run."""
        return self._run is not None

    @property
    def run_dir(self) -> Path | None:
        """Local folder of the W&B run (``.../wandb/offline-run-...``), or None when inactive."""
        return Path(self._run.dir).parent if self._run is not None else None

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Log ``metrics`` at federation round ``step`` (steps must not decrease)."""
        self._call(lambda run: run.log(dict(metrics), step=int(step)))

    def summary(self, d: dict[str, Any]) -> None:
        """Set run-level values (final and selected metrics, bytes, wall time)."""
        self._call(lambda run: run.summary.update(dict(d)))

    def finish(self, exit_code: int = 0) -> None:
        """Close the run; safe to call more than once."""
        run, self._run = self._run, None
        if run is not None:
            try:
                run.finish(exit_code=exit_code)
            except Exception as err:
                warnings.warn(
                    f"W&B finish failed ({type(err).__name__}: {err}); the run record is unaffected",
                    stacklevel=2,
                )

    def __enter__(self) -> WandbRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)

    def _call(self, action: Any) -> None:
        """Run ``action(run)``; on the first W&B error warn once and stop logging for this run."""
        if self._run is None:
            return
        try:
            action(self._run)
        except Exception as err:
            run, self._run = self._run, None
            self._disable(
                f"W&B logging off after an error ({type(err).__name__}: {err}); the run record is unaffected"
            )
            try:
                run.finish(exit_code=1)
            except Exception:
                pass

    def _disable(self, message: str) -> None:
        self._run = None
        self.mode = "disabled"
        warnings.warn(message, stacklevel=3)


_ROUND_BASICS = {"round", "val", "train_loss", "bytes_up", "bytes_down", "lr"}


def round_metrics(entry: dict[str, Any]) -> dict[str, float]:
    """What W&B gets for one round of the record: ``val/*``, ``train/loss``, ``train/lr``, ``bytes/*``,
    and every scalar the aggregator reported (``server/<key>``, one dict level deep as
    ``server/<key>/<sub>``: FedPrime's prompt usage and W_q drift, PPT's pool size, FedMVP's completion
    quality). Lists and matrices (client ids, aggregation weights, CKA) stay in the record only."""
    metrics = {f"val/{k}": v for k, v in entry["val"].items()}
    metrics |= {
        "train/loss": entry["train_loss"],
        "bytes/up": entry["bytes_up"],
        "bytes/down": entry["bytes_down"],
    }
    if is_finite_number(entry.get("lr")):
        metrics["train/lr"] = entry["lr"]
    for key, value in entry.items():
        if key in _ROUND_BASICS:
            continue
        if is_finite_number(value):
            metrics[f"server/{key}"] = value
        elif isinstance(value, dict):
            metrics |= {f"server/{key}/{sub}": v for sub, v in value.items() if is_finite_number(v)}
    return metrics
