"""Small, valid, all-different images for the stand-ins: a two-colour gradient in a random
direction plus noise, encoded as the release's format (JPEG or PNG) at a side of a few dozen
pixels with a varying aspect ratio, or as raw pixel planes (CIFAR's binary records).

The noise comes from a small bank of pre-drawn tiles cut at random offsets, so each image costs a
few array operations and one encode (about 0.1 ms for a 48 px JPEG), which keeps the full-size
stand-ins at minutes; every file still differs, so nothing downstream can deduplicate them.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

BANK_TILES, BANK_SIDE, NOISE = 8, 128, 24


class Pictures:
    """Images drawn from one seeded generator. ``side``: (smallest, largest) longer side in pixels;
    ``aspect``: (min, max) of height / width; ``square``: a fixed side instead (Tiny-ImageNet's 64)."""

    def __init__(
        self,
        rng: np.random.Generator,
        fmt: str = "JPEG",
        side: tuple[int, int] = (24, 64),
        aspect: tuple[float, float] = (0.75, 1.33),
        square: int | None = None,
        quality: int = 85,
    ):
        self.rng, self.fmt, self.side, self.aspect, self.square, self.quality = (
            rng,
            fmt,
            side,
            aspect,
            square,
            quality,
        )
        self.bank = rng.integers(
            -NOISE, NOISE + 1, size=(BANK_TILES, BANK_SIDE, BANK_SIDE, 3), dtype=np.int16
        )

    def size(self) -> tuple[int, int]:
        """(height, width) of the next image."""
        if self.square:
            return self.square, self.square
        longer = int(self.rng.integers(self.side[0], self.side[1] + 1))
        ratio = float(self.rng.uniform(*self.aspect))  # height / width
        if ratio >= 1:
            return longer, max(8, int(round(longer / ratio)))
        return max(8, int(round(longer * ratio))), longer

    def pixels(self, height: int, width: int, count: int = 1) -> np.ndarray:
        """``count`` uint8 images [count, height, width, 3] (at most the bank's tile side)."""
        r = self.rng
        start = r.integers(0, 256, size=(count, 1, 1, 3)).astype(np.float32)
        end = r.integers(0, 256, size=(count, 1, 1, 3)).astype(np.float32)
        tilt = r.random((count, 1, 1, 1), dtype=np.float32)
        ys, xs = axes(height, width)
        ramp = ys * tilt + xs * (1 - tilt)
        tile = r.integers(0, BANK_TILES, size=count)
        oy, ox = r.integers(0, BANK_SIDE - height + 1), r.integers(0, BANK_SIDE - width + 1)
        noise = self.bank[tile, oy : oy + height, ox : ox + width]
        return np.clip(start + (end - start) * ramp + noise, 0, 255).astype(np.uint8)

    def encode(self, pixels: np.ndarray) -> bytes:
        buf = io.BytesIO()
        image = Image.fromarray(pixels)
        if self.fmt == "JPEG":
            image.save(buf, format="JPEG", quality=self.quality)
        else:
            image.save(buf, format=self.fmt)
        return buf.getvalue()

    def make(self) -> bytes:
        """One encoded image."""
        return self.encode(self.pixels(*self.size())[0])


@lru_cache(maxsize=4096)
def axes(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """0..1 ramps down and across an image of this size, shaped to broadcast over [N, H, W, 3]."""
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[None, :, None, None]
    return ys, np.linspace(0.0, 1.0, width, dtype=np.float32)[None, None, :, None]


def planes(pixels: np.ndarray) -> np.ndarray:
    """[N, H, W, 3] uint8 -> [N, 3 * H * W]: the red, green and blue planes one after the other,
    row-major, as CIFAR's binary records store them."""
    return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)).reshape(len(pixels), -1)
