"""Raw pixels for FedMVP's official joint-encoder image branch (``joint_image="pixels"``).

The official ``Transformer_JointEncoder`` embeds the raw image with a convolution trained from
scratch (``models/fedmvp.py:496-508``), on images scaled ``x / 255 * 2 - 1`` and resized to
224 x 224 (``utils/dataset_utils.py:465-476``). The pixels come from the shared pixel cache
(:func:`fedbench.backbones.pixels.cached_pixels`: decoded once per machine, read memory-mapped),
squashed to ``pixel_size`` with bilinear resampling, of the dataset the backbone featurised.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fedbench.backbones.pixels import cached_pixels
from fedbench.errors import ConfigError

MISSING = 1.0  # a missing image (completer none / impute): the constant 1, as MAP's missing image


def pixel_column(backbone, size: int):
    """uint8 [N, 3, size, size] of every row of the dataset ``backbone`` featurised."""
    data = getattr(backbone, "source_data", None)
    if data is None:
        raise ConfigError(
            "method.options.joint_image=pixels needs the dataset's images, which this backbone was not given "
            "(run through fedbench's federation, which featurises through "
            "fedbench.backbones.registry.featurized)"
        )
    column, _ = cached_pixels(data, size, "squash", "bilinear")
    return column


def pixel_inputs(column, rows: Tensor, missing_row: int) -> Tensor:
    """[B, 3, S, S] float in [-1, 1] for feature-table rows ``rows``; ``missing_row`` (the table's
    missing-input row) is the constant :data:`MISSING`."""
    rows = torch.as_tensor(rows, dtype=torch.long).cpu()
    gap = rows == missing_row
    x = column[torch.where(gap, torch.zeros_like(rows), rows)].float() / 255.0 * 2.0 - 1.0
    x[gap] = MISSING
    return x
