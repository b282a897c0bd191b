"""The lean Lightning Trainer used for every client fit (one per client per round)."""

from __future__ import annotations

import logging
import re
import warnings

import lightning as L

from fedbench.config import TrainConfig
from fedbench.interrupt import raise_if_interrupted, surfacing_interrupts

for name in ("lightning", "lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
    logging.getLogger(name).setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
warnings.filterwarnings("ignore", message=".*Precision bf16-mixed is not supported.*")


class _StopWhenInterrupted(L.Callback):
    """Stops a fit at the next batch after Ctrl-C or SIGTERM, even when the signal's own exception
    was dropped (it landed while Python ran a finaliser)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        raise_if_interrupted()


def make_trainer(train: TrainConfig, epochs: int, max_steps: int = -1) -> L.Trainer:
    """No checkpointing, logger, progress bar or model summary inside a client fit: the federation
    keeps its own state and shows its own progress."""
    accelerator = "gpu" if train.accelerator == "cuda" else train.accelerator
    return L.Trainer(
        max_epochs=epochs,
        max_steps=max_steps,  # -1: all epochs; a client with partial work stops earlier
        accelerator=accelerator,
        devices=train.devices,
        precision=train.precision,  # concrete: validate() resolved auto
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        accumulate_grad_batches=train.accumulate,
        deterministic=False,
        callbacks=[_StopWhenInterrupted()],
    )


# Lightning's error when its teardown follows a loader whose iterator never started
_TEARDOWN_LEN = re.compile(r"call `iter\(combined_loader\)` first")


def fit(trainer: L.Trainer, module: L.LightningModule, loader) -> None:
    """``trainer.fit`` that raises what stopped the fit. When a loader's iterator fails to start (or
    Ctrl-C lands there: our loader gathers its first batch then), Lightning's teardown asks
    ``len(combined_loader)`` and raises ``RuntimeError`` over the real error or interrupt."""
    with surfacing_interrupts():
        try:
            trainer.fit(module, loader)
        except RuntimeError as err:
            hidden = err.__context__
            if hidden is None or not _TEARDOWN_LEN.search(str(err)):
                raise
            raise hidden from None
