"""Linear probes that pick PPT's offline task: how separable the emoji labels are from the frozen
image backbone alone, read where PPT's head reads (the [CLS] token with no prompt and no text).

PPT is an image-classification method; the offline stand-in for CIFAR is emoji images through the
embedded backbone with every text missing (``[CLS][SEP]`` + the 3x3 image tokens). A task where
methods can separate needs a frozen feature that is informative but far from solving it: a probe
well above the majority class and well below 100%. Printed per label set (category: 9 classes,
subcategory: ~100) and feature: ``cls_image`` (frozen [CLS] output, image only: what a prompt-free
PPT head reads), ``tokens_image`` (mean of the projected image tokens, before the transformer) and
``cls_both`` (frozen [CLS] with image and text: the multimodal extension). The probe is a
multinomial logistic regression on standardised features, its C chosen on the validation split;
test accuracy is reported at that C (the test split never picks anything).

    .venv/bin/python benchmarks/ppt_probe.py            # both label sets, ~3 min the first time
    .venv/bin/python benchmarks/ppt_probe.py --labels subcategory
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from fedbench.batch import COMPLETE, TEXT_MISSING
from fedbench.config import ExperimentConfig
from fedbench.data.loader import make_loader
from fedbench.federation.parts import featurized
from fedbench.federation.resolve import resolve

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


@torch.no_grad()
def features(bundle, backbone, index: np.ndarray, code: int) -> dict[str, np.ndarray]:
    """Frozen [CLS] (after all layers, no prompt) and mean projected image tokens for ``index``."""
    cls, tokens = [], []
    for batch in make_loader(
        bundle, index, np.full(len(index), code, dtype=np.int8), batch_size=128, shuffle=False
    ):
        x, keep = backbone.embed(batch)
        cls.append(backbone.readout(backbone.run_layers(x, keep), 0))
        tokens.append(backbone.image_bank[batch["image"]].mean(1))
    return {"cls": torch.cat(cls).numpy(), "tokens": torch.cat(tokens).numpy()}


def probe(train_x, train_y, val_x, val_y, test_x, test_y) -> tuple[float, float, float]:
    """(C, validation accuracy, test accuracy) of the validation-selected logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    tr, va, te = (scaler.transform(a) for a in (train_x, val_x, test_x))
    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(tr, train_y)
        val = float((model.predict(va) == val_y).mean())
        if best is None or val > best[1]:
            best = (c, val, float((model.predict(te) == test_y).mean()))
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--labels", nargs="+", default=["category", "subcategory"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    for label in args.labels:
        t0 = time.time()
        cfg = ExperimentConfig()
        cfg.data.options = {"label": label}
        bundle, backbone = featurized(resolve(cfg))
        labels = bundle.labels.numpy()
        split = {k: np.sort(bundle.splits[k]) for k in ("train", "val", "test")}
        train_counts = np.bincount(labels[split["train"]], minlength=bundle.num_classes)
        majority = float(np.bincount(labels[split["test"]]).max() / len(split["test"]))
        print(
            f"\n{label}: {bundle.num_classes} classes, train/val/test "
            f"{len(split['train'])}/{len(split['val'])}/{len(split['test'])}, train samples per class min "
            f"{train_counts.min()} median {int(np.median(train_counts))} max {train_counts.max()}, test "
            f"majority {majority:.3f}"
        )
        feats = {
            code: {k: features(bundle, backbone, split[k], code) for k in split}
            for code in (TEXT_MISSING, COMPLETE)
        }
        for name, code, key in (
            ("cls_image", TEXT_MISSING, "cls"),
            ("tokens_image", TEXT_MISSING, "tokens"),
            ("cls_both", COMPLETE, "cls"),
        ):
            f = feats[code]
            c, val, test = probe(
                f["train"][key],
                labels[split["train"]],
                f["val"][key],
                labels[split["val"]],
                f["test"][key],
                labels[split["test"]],
            )
            print(f"  {name:13s} val {val:.3f}  test {test:.3f}  (C={c:g})")
        print(f"  ({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
