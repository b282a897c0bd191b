"""The prefetching loader yields exactly the batches of the loader it replaced (the same order, the
same values, the same RNG draws), on the emoji benchmark's bundle and on a tiny ViLT's
memory-mapped one; errors reach the consumer, and an abandoned iteration stops its thread."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from fedbench.data.loader import BatchLoader, make_loader


class _OldRows(Dataset):  # the loader fedbench used before batches were prefetched, written out
    def __init__(self, index, codes):
        self.index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        self.codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        return i


def old_loader(bundle, index, codes, *, batch_size, shuffle, seed=0):
    rows = _OldRows(index, codes)

    def collate(positions):
        pos = torch.as_tensor(positions, dtype=torch.long)
        idx, code = rows.index[pos], rows.codes[pos]
        out = {name: col[idx] for name, col in bundle.columns.items()}
        if bundle.padded:
            width = int(out[bundle.padded[0]].sum(1).max())
            for name in bundle.padded:
                out[name] = out[name][:, :width]
        return {**out, "label": bundle.labels[idx], "code": code}

    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        rows, batch_size=batch_size, shuffle=shuffle, generator=gen, collate_fn=collate, num_workers=0
    )


def _same_batches(bundle, rows, prefetch):
    codes = np.arange(len(rows)) % 3
    for shuffle in (True, False):
        torch.manual_seed(7)
        old = [b for b in old_loader(bundle, rows, codes, batch_size=13, shuffle=shuffle, seed=5)]
        after_old = torch.rand(1)
        torch.manual_seed(7)
        new = [
            b
            for b in make_loader(
                bundle, rows, codes, batch_size=13, shuffle=shuffle, seed=5, prefetch=prefetch
            )
        ]
        assert torch.equal(torch.rand(1), after_old)  # the same draws from the global RNG
        assert len(old) == len(new)
        for a, b in zip(old, new, strict=True):
            assert a.keys() == b.keys()
            for k in a:
                assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("prefetch", [0, 2])
def test_tiny_vilt_batches_are_the_old_loaders(prefetch, tmp_path, monkeypatch):
    from fixtures import tiny_data
    from hf_fixtures import tiny_vilt

    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    bundle = tiny_vilt().featurize(tiny_data(60))
    assert type(bundle.columns["pixels"]).__name__ == "MappedRows"
    _same_batches(bundle, np.sort(bundle.splits["train"]), prefetch)


@pytest.mark.slow
def test_emoji_batches_are_the_old_loaders():
    from fedbench.config import ExperimentConfig
    from fedbench.federation.parts import featurized
    from fedbench.federation.resolve import resolve

    cfg = ExperimentConfig()
    bundle, _ = featurized(resolve(cfg))
    _same_batches(bundle, np.sort(bundle.splits["train"]), 2)


def test_lightning_fits_on_the_same_batches(tmp_path, monkeypatch):
    """Lightning treats the loader as a DataLoader (it would call iter() once more on another
    iterable, shifting the shuffle): a fit sees the old loader's batches in order."""
    import lightning as L
    from fixtures import tiny_bundle

    bundle = tiny_bundle()
    rows = np.sort(bundle.splits["train"])
    codes = np.zeros(len(rows), dtype=np.int64)

    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen = []

        def training_step(self, batch, i):
            self.seen.append(batch["row"].clone())
            return (self.w * 0).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    module = Recorder()
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(module, make_loader(bundle, rows, codes, batch_size=8, shuffle=True, seed=3))
    expected = [b["row"] for b in old_loader(bundle, rows, codes, batch_size=8, shuffle=True, seed=3)]
    assert len(module.seen) == len(expected) and all(
        torch.equal(a, b) for a, b in zip(module.seen, expected, strict=True)
    )


def test_an_error_while_gathering_reaches_the_consumer():
    class Broken:
        columns, padded, labels = {}, (), torch.zeros(10)

        def batch(self, index, code, **kwargs):
            raise ValueError("damaged row")

    with pytest.raises(ValueError, match="damaged row"):
        next(iter(BatchLoader(Broken(), np.arange(10), np.zeros(10), batch_size=4, shuffle=False)))


def test_an_abandoned_iteration_stops_its_thread():
    from fixtures import tiny_bundle

    bundle = tiny_bundle()
    rows = np.sort(bundle.splits["train"])
    before = set(threading.enumerate())  # other tests' threads may end meanwhile: watch only ours
    it = iter(make_loader(bundle, rows, np.zeros(len(rows)), batch_size=2, shuffle=True))
    next(it)
    ours = [t for t in threading.enumerate() if t not in before and t.name.startswith("fedbench-batches")]
    assert ours, "the loader gathers on its own threads"
    del it
    gc.collect()
    deadline = time.time() + 10
    while any(t.is_alive() for t in ours) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(t.is_alive() for t in ours)
