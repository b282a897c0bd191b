"""Content keys of tensors and columns, for cache keys: what the bytes are, not where they live."""

from __future__ import annotations

import hashlib

import torch

from fedbench.cache.folder import cache_key


def tensor_digest(*tensors: torch.Tensor) -> str:
    """A content hash of tensors (shapes, dtypes and bytes)."""
    h = hashlib.blake2b(digest_size=12)
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes())
    return h.hexdigest()


def column_digest(column) -> str:
    """A content key of a bundle column: a hash of a tensor's bytes, or for a memory-mapped column
    (:class:`~fedbench.cache.arrays.MappedRows`, a token keep mask) its cache key and row map, so
    a 40 GB pixel column is never read to be hashed."""
    if isinstance(column, torch.Tensor):
        return tensor_digest(column)
    inner = getattr(column, "lengths", column)  # a keep mask made from token lengths
    rows = getattr(inner, "rows", None)
    return cache_key(
        key=inner.key,
        width=list(column.shape[1:]),
        rows=tensor_digest(rows) if rows is not None else len(column),
    )
