"""The on-disk row caches: arrays written in chunks equal arrays written at once, memory-mapped
columns gather the rows numpy's indexing gives, pixel entries are keyed by the images' origin (a
subset and a repetition read one entry through a row map, a new split seed reuses it), token ids
equal the tokenizer's own output, and ``fedbench cache`` lists and frees what is on disk."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from processes import HANG_GUARD_S

from fedbench.backbones import pixels as pixels_mod
from fedbench.backbones import tokens as tokens_mod
from fedbench.backbones.pixels import cached_pixels
from fedbench.backbones.tokens import cached_tokens
from fedbench.cache import entries
from fedbench.cache.arrays import MappedRows, open_rows, write_rows
from fedbench.data.base import ArrayImages, ModalData
from fedbench.data.sources import EncodedImages


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _jpeg(k: int, w: int = 20, h: int = 12) -> bytes:
    pixels = (np.arange(w * h * 3).reshape(h, w, 3) * (k + 1) % 251).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")  # lossless, so the reference decode is exact
    return buf.getvalue()


class Blobs:
    def __init__(self, n: int):
        self.data = [_jpeg(k) if k % 7 else None for k in range(n)]  # every 7th row has no image

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        return self.data[i]

    def name(self, i):
        return f"blob {i}"


def _data(images, n: int | None = None) -> ModalData:
    n = len(images) if n is None else n
    return ModalData(
        name="fixture",
        labels=np.zeros(n, dtype=np.int64),
        label_names=["a"],
        texts=[""] * n,
        images=images,
        splits={"train": np.arange(n), "val": np.arange(0), "test": np.arange(0)},
    )


def _reference(blob: bytes | None, size: int) -> np.ndarray:
    """PIL's own decode and bicubic squash, written out independently of fedbench."""
    if blob is None:
        return np.full((3, size, size), 255, dtype=np.uint8)
    im = Image.open(io.BytesIO(blob)).convert("RGB").resize((size, size), Image.BICUBIC)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def test_chunked_write_equals_numpy_save(tmp_path):
    array = np.random.default_rng(0).integers(0, 255, (37, 3, 5), dtype=np.uint8)
    write_rows(tmp_path / "a.npy", array.shape, np.uint8, [array[i : i + 8] for i in range(0, 37, 8)])
    np.save(tmp_path / "b.npy", array)
    assert np.array_equal(np.load(tmp_path / "a.npy"), array)
    assert np.array_equal(open_rows(tmp_path / "a.npy"), np.load(tmp_path / "b.npy", mmap_mode="r"))
    with pytest.raises(ValueError, match="rows written"):
        write_rows(tmp_path / "c.npy", (40, 3, 5), np.uint8, [array])
    assert not (tmp_path / "c.npy").exists()  # a failed write leaves nothing


def test_mapped_rows_gather_like_numpy(tmp_path):
    array = np.arange(60, dtype=np.int32).reshape(20, 3)
    np.save(tmp_path / "x.npy", array)
    rows = np.array([5, 5, 0, 19, 3])
    col = MappedRows(open_rows(tmp_path / "x.npy"), rows, dtype=torch.long)
    index = torch.tensor([4, 0, 1, 1])
    assert col.shape == (5, 3) and col.dtype == torch.long
    assert torch.equal(col[index], torch.as_tensor(array[rows[index.numpy()]]).long())
    assert torch.equal(col[1:3], torch.as_tensor(array[rows[1:3]]).long())
    out = col.empty(4)
    assert col.gather(index, out=out) is out and torch.equal(out, col[index])


def test_pixels_equal_pil_in_any_chunking_and_build_once(monkeypatch):
    blobs = Blobs(23)
    images = EncodedImages(blobs, key="k")
    monkeypatch.setattr(pixels_mod, "CHUNK_BYTES", 5 * 3 * 16 * 16)  # chunks of 5 rows
    col, absent = cached_pixels(_data(images), 16)
    expected = np.stack([_reference(b, 16) for b in blobs.data])
    assert absent == sum(b is None for b in blobs.data)
    assert np.array_equal(col[torch.arange(23)].numpy(), expected)
    (entry,) = entries.entries("pixels")
    data_file = (entry.folder / "pixels.npy").read_bytes()
    entries.remove(entry)
    monkeypatch.setattr(pixels_mod, "CHUNK_BYTES", 1 << 30)  # one chunk: the same bytes
    cached_pixels(_data(images), 16)
    (again,) = entries.entries("pixels")
    assert (again.folder / "pixels.npy").read_bytes() == data_file


def test_a_subset_and_a_repetition_read_the_full_entry():
    blobs = Blobs(30)
    full = EncodedImages(blobs, key="all", origin_key="origin")
    cached_pixels(_data(full), 8)
    built = []
    real_build = pixels_mod._build
    pixels_mod._build = lambda *a, **k: built.append(1) or real_build(*a, **k)
    try:
        rows = np.array([29, 3, 3, 12, 0])  # reordered, repeated
        subset = full.take(rows, key="subset", size=None, origin_key="origin")
        col, absent = cached_pixels(_data(subset), 8)
    finally:
        pixels_mod._build = real_build
    assert built == []  # served by the entry of all 30 rows
    expected = np.stack([_reference(blobs.data[r], 8) for r in rows])
    assert np.array_equal(col[torch.arange(5)].numpy(), expected)
    assert absent == sum(blobs.data[r] is None for r in rows)
    assert len(entries.entries("pixels")) == 1


def test_a_new_split_seed_reuses_the_pixel_entry(tmp_path):
    from data_fixtures import build, make_food101

    make_food101(tmp_path / "food")
    a = build("food101", 0, root=str(tmp_path / "food"), split="official", val_fraction=0.4)
    b = build("food101", 1, root=str(tmp_path / "food"), split="official", val_fraction=0.4)
    assert not np.array_equal(a.splits["val"], b.splits["val"])  # the seed changed the split
    cached_pixels(a, 8)
    cached_pixels(b, 8)
    assert len(entries.entries("pixels")) == 1


def test_two_processes_share_one_entry(tmp_path):
    images = ArrayImages(
        np.random.default_rng(1).integers(0, 255, (12, 6, 6, 3), dtype=np.uint8), key="shared"
    )
    col, _ = cached_pixels(_data(images), 8)
    code = (
        "import numpy as np, sys; from fedbench.data.base import ArrayImages, ModalData; "
        "from fedbench.backbones.pixels import cached_pixels; from fedbench.cache import entries; "
        "imgs = ArrayImages(np.random.default_rng(1).integers(0, 255, (12, 6, 6, 3), dtype=np.uint8), "
        "key='shared'); "
        "d = ModalData('f', np.zeros(12, dtype=np.int64), ['a'], ['']*12, imgs, {'train': np.arange(12)}); "
        "col, _ = cached_pixels(d, 8); maps = open('/proc/self/maps').read(); "
        "print(len(entries.entries('pixels')), str(col.array.filename) in maps, int(col[[3]].sum()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=HANG_GUARD_S
    )
    count, mapped, total = out.stdout.split()
    assert count == "1" and mapped == "True"  # the child mapped the parent's file, built nothing
    assert int(total) == int(col[[3]].sum())


def test_token_ids_equal_the_tokenizer_in_any_chunking(monkeypatch):
    from hf_fixtures import tiny_vilt_dir
    from transformers import BertTokenizer

    from fedbench.backbones.tokens import tokenize

    tok = BertTokenizer.from_pretrained(str(tiny_vilt_dir()))
    texts = [" ".join(str(k) for k in range(i % 9)) for i in range(11)]
    monkeypatch.setattr(tokens_mod, "CHUNK_TEXTS", 4)
    ids, keep = cached_tokens(tok, texts, 6)
    ref = tok(texts, padding="max_length", truncation=True, max_length=6, return_tensors="pt")
    assert torch.equal(ids[torch.arange(11)], ref["input_ids"]) and ids.dtype == torch.long
    assert torch.equal(keep[torch.arange(11)], ref["attention_mask"].bool())
    assert torch.equal(tokenize(tok, texts, 6)[0], ref["input_ids"])
    monkeypatch.setattr(tokens_mod, "_build", lambda *a, **k: pytest.fail("tokenised twice"))
    again, _ = cached_tokens(tok, texts, 6)  # a second run maps the file
    assert torch.equal(again[torch.arange(11)], ref["input_ids"])


def test_cache_list_and_clean(capsys, cache):
    from fedbench.cache.commands import cache_command

    images = ArrayImages(np.zeros((4, 5, 5, 3), dtype=np.uint8), key="z")
    cached_pixels(_data(images), 8)
    (cache / "rows" / ".tmp-pixels-x-y-999999999-1").mkdir()  # a build killed half-way
    assert cache_command(["list"]) == 0
    listed = capsys.readouterr().out
    assert "pixels" in listed and "4 rows" in listed and "1 unfinished builds" in listed
    assert cache_command(["clean", "--all", "--dry-run"]) == 0
    assert len(entries.entries("pixels")) == 1
    assert cache_command(["clean", "--all"]) == 0
    assert entries.entries("pixels") == [] and entries.unfinished() == []


def test_a_cache_that_cannot_fit_is_refused_in_one_line(monkeypatch):
    from fedbench.cache import preflight
    from fedbench.errors import ConfigError

    monkeypatch.setattr(preflight, "free_disk", lambda folder: 1000)
    images = ArrayImages(np.zeros((4, 5, 5, 3), dtype=np.uint8), key="big")
    with pytest.raises(
        ConfigError, match=r"pixel cache of fixture \(4 images\) needs .* free; free disk space"
    ):
        cached_pixels(_data(images), 64)
    assert entries.entries("pixels") == [] and entries.unfinished() == []
