"""Token ids of a dataset's texts, tokenised once per machine in chunks and read memory-mapped.

Tokenising MAP's Food-101 at 512 tokens in one call peaks at 8.7 GB; in chunks of
:data:`CHUNK_TEXTS` it stays near 100 MB, and the result (int32 ids, a bool keep mask) is written
to a cache entry (:mod:`fedbench.cache.entries`) keyed by the tokenizer's vocabulary and settings,
the length and the texts themselves, so every later run, sweep worker and Ray actor maps the same
file instead of tokenising again.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from fedbench.cache import entries
from fedbench.cache.arrays import MappedRows, write_rows

CHUNK_TEXTS = 4096
KIND = "tokens"


def tokenize(tokenizer, texts: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [N, max_len] (right-padded) and a keep mask [N, max_len], in memory (small inputs)."""
    tok = tokenizer(
        list(texts), padding="max_length", truncation=True, max_length=max_len, return_tensors="pt"
    )
    return tok["input_ids"].long(), tok["attention_mask"].bool()


def tokenizer_fingerprint(tokenizer) -> str:
    """What a tokenisation depends on: the class, the vocabulary, the special tokens, lower-casing."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    h.update(
        json.dumps(
            {k: v for k, v in tokenizer.init_kwargs.items() if isinstance(v, bool | int | str)},
            sort_keys=True,
        ).encode()
    )
    return h.hexdigest()[:16]


def texts_digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def cached_tokens(tokenizer, texts: list[str], max_len: int, name: str = "") -> tuple[MappedRows, MappedRows]:
    """(ids ``[N, max_len]`` int64, keep ``[N, max_len]`` bool) as memory-mapped columns."""
    family = entries.family_key(
        KIND, tokenizer=tokenizer_fingerprint(tokenizer), max_len=max_len, texts=texts_digest(texts)
    )
    rows = np.arange(len(texts), dtype=np.int64)
    found = entries.find(KIND, family, rows)
    if found is None:
        _build(tokenizer, texts, max_len, family, rows, name)
        found = entries.find(KIND, family, rows)
        assert found is not None, "a token cache entry just built was not found"
    entry, at = found
    ids = MappedRows(entry.array("ids"), at, dtype=torch.long, key=f"{family}/ids")
    return ids, PrefixMask(
        MappedRows(entry.array("lengths"), at, dtype=torch.long, key=f"{family}/lengths"), max_len
    )


class PrefixMask:
    """The keep mask of right-padded token rows, ``[N, width]`` bool, made per batch from each row's
    length (so the cache holds one int per row, not ``width`` bools)."""

    def __init__(self, lengths: MappedRows, width: int):
        self.lengths, self.width = lengths, width

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), self.width))

    @property
    def dtype(self) -> torch.dtype:
        return torch.bool

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, slice):
            index = torch.arange(len(self))[index]
        return self.gather(index)

    def gather(self, index, out: torch.Tensor | None = None) -> torch.Tensor:
        mask = torch.arange(self.width)[None, :] < self.lengths.gather(index)[:, None]
        return mask if out is None else out.copy_(mask)

    def empty(self, n: int, pin: bool = False) -> torch.Tensor:
        return torch.empty((n, self.width), dtype=torch.bool, pin_memory=pin)


def _build(tokenizer, texts: list[str], max_len: int, family: str, rows: np.ndarray, name: str) -> None:
    folder = entries.new_folder(KIND, family, rows)
    try:
        lengths: list[np.ndarray] = []

        def id_chunks():
            for start in range(0, len(texts), CHUNK_TEXTS):
                ids, keep = tokenize(tokenizer, texts[start : start + CHUNK_TEXTS], max_len)
                n = keep.sum(1)
                if not torch.equal(keep, torch.arange(max_len)[None, :] < n[:, None]):
                    raise ValueError(
                        f"{type(tokenizer).__name__} does not pad on the right; fedbench needs right padding"
                    )
                lengths.append(n.numpy().astype(np.int32))
                yield ids.numpy().astype(np.int32)

        write_rows(folder / "ids.npy", (len(texts), max_len), np.int32, id_chunks())
        write_rows(folder / "lengths.npy", (len(texts),), np.int32, lengths)
        write_rows(folder / entries.ROWS, (len(rows),), np.int64, [rows])
        entries.finish(
            folder,
            KIND,
            family,
            rows,
            {"dataset": name, "max_len": max_len, "tokenizer": type(tokenizer).__name__},
        )
    except BaseException:
        entries.remove(folder)
        raise
