"""Decoded pixels of a dataset, cached once per machine and read memory-mapped.

Every image is decoded and resized once to the backbone's square (``size``, ``mode``, resampling)
and stored as uint8 ``[rows, 3, S, S]`` (the layout a batch needs, so a batch is one gather) in a
cache entry (:mod:`fedbench.cache.entries`). The entry is keyed by the images' *origin* (the
download and its stamp, the pre-resize option) and the resize, not by the run's split or options,
so a new ``split_seed`` reuses it, and a subset (FedPrime's 8 dishes) or a repetition of rows
(MM-IMDb ``plot: each``: one poster per movie however many plots) reads an entry through a row map.
Normalisation and the missing-image constant are applied per batch on the device
(:class:`PixelNorm`), so the cache stays 4x smaller than floats and serves ViT and CLIP at 224 alike.

The build decodes in parallel threads (Pillow decodes and resizes outside the GIL) a chunk of
about :data:`CHUNK_BYTES` at a time, writes each chunk to the file and drops it: its peak memory is
a chunk, never the dataset. Before it starts, the free disk is checked against the exact size.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from fedbench.batch import IMAGE_MISSING
from fedbench.cache import entries
from fedbench.cache.arrays import MappedRows, write_rows
from fedbench.cache.preflight import check_disk, human
from fedbench.data.base import ModalData

MISSING_PIXEL = 1.0  # MAP: a missing image is an all-ones tensor after normalisation
CHUNK_BYTES = 128 << 20
KIND = "pixels"
VERSION = 1  # bump when the decode/resize below changes what a row's bytes are


def decode_threads() -> int:
    return max(1, min(16, os.cpu_count() or 1))


def resize(image: np.ndarray | None, size: int, mode: str, resample: str) -> tuple[np.ndarray, bool]:
    """(uint8 [size, size, 3], whether there was an image): ``squash`` the whole image to the square
    (ViLT, ViT), or ``crop``: shorter side to ``size``, then the centre square (CLIP)."""
    from PIL import Image

    if image is None:  # no image on disk for this row: a white canvas (the missing table decides the rest)
        return np.full((size, size, 3), 255, dtype=np.uint8), False
    im = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
    method = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[resample]
    if mode == "crop":
        w, h = im.size
        scale = size / min(w, h)
        im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), method)
        left, top = (im.size[0] - size) // 2, (im.size[1] - size) // 2
        im = im.crop((left, top, left + size, top + size))
    else:
        im = im.resize((size, size), method)
    return np.asarray(im, dtype=np.uint8), True


def image_origin(images) -> tuple[str, np.ndarray, object]:
    """(origin key, each row's origin row, the source over origin rows) of an image source: a
    source that knows its origin (:meth:`EncodedImages.origin`, :meth:`PixelImages.origin`) says
    so; any other source is its own origin."""
    origin = getattr(images, "origin", None)
    if callable(origin):
        return origin()
    return str(images.key), np.arange(len(images), dtype=np.int64), images


def cached_pixels(
    data: ModalData, size: int, mode: str = "squash", resample: str = "bicubic"
) -> tuple[MappedRows, int]:
    """(uint8 ``[N, 3, size, size]`` column of every row of ``data``, rows that had no image)."""
    key, rows, source = image_origin(data.images)
    family = entries.family_key(KIND, origin=key, size=size, mode=mode, resample=resample, version=VERSION)
    found = entries.find(KIND, family, rows)
    if found is None:
        wanted = np.unique(rows)
        _build(source, wanted, family, size, mode, resample, data.name)
        found = entries.find(KIND, family, rows)
        assert found is not None, "a pixel cache entry just built was not found"
    entry, at = found
    present = np.asarray(entry.array("present"))[at]
    column = MappedRows(entry.array("pixels"), at, key=f"{family}/{entry.folder.name}")
    return column, int((~present).sum())


def _build(source, wanted: np.ndarray, family: str, size: int, mode: str, resample: str, name: str) -> None:
    row_bytes = 3 * size * size
    check_disk(
        entries.rows_root(),
        row_bytes * len(wanted),
        f"the {size}px pixel cache of {name} ({len(wanted):,} images)",
        "free disk space, point FEDBENCH_CACHE at a larger disk, or lower backbone.options.image_size",
    )
    folder = entries.new_folder(KIND, family, wanted)
    try:
        chunk = max(1, CHUNK_BYTES // row_bytes)
        present = np.zeros(len(wanted), dtype=bool)
        started, last = time.monotonic(), time.monotonic()

        def chunks():
            nonlocal last
            buf = np.empty((chunk, size, size, 3), dtype=np.uint8)
            with ThreadPoolExecutor(max_workers=decode_threads()) as pool:
                for start in range(0, len(wanted), chunk):
                    part = wanted[start : start + chunk]

                    def one(j: int, part=part) -> bool:
                        buf[j], ok = resize(source[int(part[j])], size, mode, resample)
                        return ok

                    present[start : start + len(part)] = list(pool.map(one, range(len(part))))
                    yield buf[: len(part)].transpose(0, 3, 1, 2)
                    if time.monotonic() - last > 15:
                        done = start + len(part)
                        rate = done / (time.monotonic() - started)
                        print(
                            f"  pixels of {name} at {size}px: {done:,} of {len(wanted):,} images "
                            f"({rate:.0f}/s, {human(done * row_bytes)} written)",
                            file=sys.stderr,
                            flush=True,
                        )
                        last = time.monotonic()

        write_rows(folder / "pixels.npy", (len(wanted), 3, size, size), np.uint8, chunks())
        write_rows(folder / "present.npy", (len(wanted),), bool, [present])
        write_rows(folder / entries.ROWS, (len(wanted),), np.int64, [wanted])
        entries.finish(
            folder, KIND, family, wanted, {"dataset": name, "size": size, "mode": mode, "resample": resample}
        )
    except BaseException:
        entries.remove(folder)
        raise


class PixelNorm(nn.Module):
    """uint8 [B, 3, S, S] -> normalised float; rows whose code is IMAGE_MISSING become MAP's constant."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        x = (pixels.float() / 255.0 - self.mean) / self.std
        missing = (code == IMAGE_MISSING).view(-1, 1, 1, 1)
        return torch.where(missing, torch.full_like(x, MISSING_PIXEL), x)
