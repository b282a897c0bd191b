"""Evaluation of a model state under the test conditions, with torchmetrics.

Plain no-grad loops rather than ``Trainer.validate``: evaluation runs many times per run (every
round on validation, once per condition at the end) and needs no Lightning machinery.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    multiclass_accuracy,
    multiclass_f1_score,
    multiclass_recall,
    multilabel_f1_score,
)

from fedbench.data.bundle import DataBundle
from fedbench.data.loader import make_loader


def autocast_for(precision: str, device: torch.device):
    if precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "16-mixed" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict(
    module, bundle: DataBundle, index: np.ndarray, codes: np.ndarray, *, batch_size: int, precision: str
):
    """Decisions and true labels for rows ``index`` with missing codes ``codes``: the predicted class
    (multiclass), per-label probabilities [N, C] (multilabel) or the positive-class probability
    (binary), so every metric of the task can be computed from them."""
    task = bundle.metric_spec.task
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    preds, labels = [], []
    with autocast_for(precision, device):
        for batch in make_loader(
            bundle, index, codes, batch_size=batch_size, shuffle=False, pin=device.type == "cuda"
        ):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            logits = module(batch)
            preds.append(decisions(logits, task).cpu())
            labels.append(batch["label"].cpu())
    module.train(was_training)
    return torch.cat(preds), torch.cat(labels)


def decisions(logits: torch.Tensor, task: str) -> torch.Tensor:
    if task == "multilabel":
        return torch.sigmoid(logits.float())
    if task == "binary":
        return torch.softmax(logits.float(), -1)[:, 1]
    return logits.argmax(-1)


def classification_metrics(
    preds: torch.Tensor, labels: torch.Tensor, num_classes: int, task: str = "multiclass"
) -> dict[str, float]:
    """The task's metrics: multiclass accuracy and macro-F1; MAP's four multi-label F1s (threshold
    0.5); binary AUROC and accuracy (Hateful Memes)."""
    if task == "multilabel":
        target = labels.long()
        out = {
            f"f1_{avg}": float(multilabel_f1_score(preds, target, num_classes, average=avg, zero_division=0))
            for avg in ("macro", "micro", "weighted")
        }
        hits = (preds >= 0.5).long()
        tp, fp, fn = (hits & target).sum(1), (hits & (1 - target)).sum(1), ((1 - hits) & target).sum(1)
        denom = 2 * tp + fp + fn
        out["f1_samples"] = float(
            torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.zeros_like(denom, dtype=torch.float))
            .float()
            .mean()
        )
        return out
    if task == "binary":
        target = labels.long()
        return {
            "auroc": float(binary_auroc(preds, target)),
            "accuracy": float(((preds >= 0.5).long() == target).float().mean()),
        }
    return {
        "accuracy": float(multiclass_accuracy(preds, labels, num_classes, average="micro")),
        "macro_f1": float(multiclass_f1_score(preds, labels, num_classes, average="macro")),
    }


def label_weighted_accuracy(
    preds: torch.Tensor, labels: torch.Tensor, num_classes: int, label_counts: np.ndarray
) -> float:
    """Accuracy on a test set reweighted to one client's label distribution: sum_y p_k(y) recall_y.

    A personalized score that uses the whole global test set (no per-client test split needed)
    and equals the accuracy the client would see if its test data followed its training labels.
    """
    recall = multiclass_recall(preds, labels, num_classes, average="none").double().numpy()
    present = np.bincount(labels.numpy(), minlength=num_classes) > 0
    weights = np.asarray(label_counts, dtype=float) * present  # classes absent from test carry no evidence
    if weights.sum() == 0:
        return float("nan")
    return float((weights * recall).sum() / weights.sum())
