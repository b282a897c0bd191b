"""Frozen per-row work: a block is computed once, from its own rows only, and read from disk after;
PPT's query features come from those blocks and equal the frozen backbone's read-out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedbench.cache.frozen import FrozenTable, small_blocks


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_blocks_are_computed_once_from_their_own_rows():
    calls = []

    def compute(rows):
        calls.append(rows.tolist())
        return {
            "square": torch.as_tensor(rows, dtype=torch.float64)[:, None] ** 2,
            "id": torch.as_tensor(rows),
        }

    table = FrozenTable("demo", "k1", 10, compute, chunk=4)
    got = table.rows(torch.tensor([9, 1, 1, 5]))
    assert torch.equal(got["square"][:, 0], torch.tensor([81.0, 1, 1, 25], dtype=torch.float64))
    assert torch.equal(got["id"], torch.tensor([9, 1, 1, 5]))
    assert sorted(calls) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]  # whole blocks, the last one short
    again = FrozenTable("demo", "k1", 10, lambda rows: pytest.fail("computed again"), chunk=4)
    assert torch.equal(again.rows(np.array([2]))["id"], torch.tensor([2]))  # read from disk
    with pytest.raises(IndexError):
        table.rows([10])


def test_smoke_runs_use_small_blocks():
    from fedbench.cache.frozen import SMOKE_CHUNK, frozen_chunk

    assert frozen_chunk(64) == 64
    with small_blocks():
        assert frozen_chunk(64) == SMOKE_CHUNK
    assert frozen_chunk(64) == 64


def test_ppt_query_features_are_the_frozen_readout_of_each_block():
    from fixtures import tiny_pair

    from fedbench.methods.ppt.prompted import QUERY_CHUNK, frozen_readout, query_features, visible_tokens

    bundle, backbone = tiny_pair()
    backbone.bundle = bundle
    rows = torch.tensor([70, 3, 140, 3])
    code = torch.tensor([1, 1, 1, 0])
    batch = bundle.batch(rows, code)
    got = query_features(backbone, batch)

    def block_readout(first, code_value):  # the read-out of the block of QUERY_CHUNK rows holding a row
        block = torch.arange(first, min(first + QUERY_CHUNK, len(bundle.labels)))
        b = bundle.batch(block, torch.full((len(block),), code_value))
        return frozen_readout(backbone, *visible_tokens(backbone, b))

    for i, (r, c) in enumerate(zip(rows.tolist(), code.tolist(), strict=True)):
        first = r // QUERY_CHUNK * QUERY_CHUNK
        assert torch.equal(got[i], block_readout(first, c)[r - first].float())
    # and, up to float rounding, what the un-prompted pass gives on the batch itself
    torch.testing.assert_close(
        got, frozen_readout(backbone, *visible_tokens(backbone, batch)).float(), atol=1e-5, rtol=1e-5
    )
