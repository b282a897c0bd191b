"""Each client's personal state (the tensors a method keeps per client), created lazily.

A client that has never been sampled holds the method's initial personal state; that state is
kept once, not once per client, so 10,000 clients of which 300 were ever sampled cost 301 states.
A client's own state is stored the first time it is set (after its first fit).

Two backends:

- ``memory`` (default): the states are the tensors the clients returned, kept in a dict;
- ``disk``: one safetensors file per stored state in a run-scoped folder (loaded on ``get``),
  for very many clients; files are never rewritten in place (a new state is a new file), so a
  snapshot (the validation-selected round's states) stays readable while the run goes on.

The store also tracks which clients changed since the last checkpoint (:attr:`dirty`), so a
checkpoint writes only those.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fedbench.config import STORE_KINDS
from fedbench.errors import ConfigError
from fedbench.methods.base import State


class _MemoryBackend:
    """Keys are the states themselves."""

    def put(self, state: State) -> State:
        return state

    def get(self, key: State) -> State:
        return key

    def drop_all_but(self, live: set) -> None:  # the garbage collector frees what no store references
        pass

    def close(self) -> None:
        pass


class _DiskBackend:
    """Keys are file names of write-once safetensors files in ``folder``."""

    def __init__(self, parent: Path | None):
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix="fedbench-personal-", dir=parent))
        self.counter = itertools.count()
        self.written: set[str] = set()

    def put(self, state: State) -> str:
        from safetensors.torch import save_file

        name = f"{next(self.counter)}.safetensors"
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in state.items()}, str(self.folder / name))
        self.written.add(name)
        return name

    def get(self, key: str) -> State:
        from safetensors.torch import load_file

        return load_file(str(self.folder / key))

    def drop_all_but(self, live: set) -> None:
        for name in self.written - live:
            (self.folder / name).unlink(missing_ok=True)
        self.written &= live

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class PersonalStore:
    """Personal state per client id in ``range(n_clients)``; see the module docstring.

    ``get(c)`` (also ``store[c]``) is client c's state, the initial one if c never set one;
    ``set(c, state)`` stores c's new state and marks c dirty; ``sampled()`` lists the clients
    with their own state; ``items()`` yields (client, state) for those; ``groups()`` gives each
    distinct state once with the clients that hold it.
    """

    def __init__(self, initial: State, n_clients: int, kind: str = "memory", folder: Path | None = None, *, _backend=None):
        if kind not in STORE_KINDS:
            raise ConfigError(f"federation.personal_store: must be one of {', '.join(STORE_KINDS)}, got {kind!r}")
        self.kind, self.n_clients = kind, n_clients
        self.initial: State = {k: v.detach().clone() for k, v in initial.items()}
        self._backend = _backend or (_DiskBackend(folder) if kind == "disk" else _MemoryBackend())
        self._index: dict[int, object] = {}  # client -> backend key of its own state
        self.dirty: set[int] = set()

    # ----- the interface ---------------------------------------------------------------------------
    def get(self, c: int) -> State:
        if c in self._index:
            key = self._index[c]
            return {} if key is None else self._backend.get(key)
        if not 0 <= c < self.n_clients:
            raise KeyError(c)
        return self.initial

    __getitem__ = get

    def set(self, c: int, state: State) -> None:
        if not 0 <= c < self.n_clients:
            raise KeyError(c)
        self._index[c] = self._backend.put(state) if state else None  # None: an empty state
        self.dirty.add(c)

    def restore(self, states: dict[int, State]) -> None:
        """Set states read back from a checkpoint (not dirty: they are on disk already)."""
        for c, state in states.items():
            self.set(int(c), state)
            self.dirty.discard(int(c))

    def sampled(self) -> list[int]:
        return sorted(self._index)

    def items(self) -> Iterator[tuple[int, State]]:
        for c in self.sampled():
            yield c, self.get(c)

    def __len__(self) -> int:
        return self.n_clients

    def groups(self, clients: list[int] | None = None) -> list[tuple[State, list[int]]]:
        """Each distinct state once with the (sorted) clients holding it, among ``clients`` (all by
        default): every stored client alone, then the initial state with every client that has none."""
        wanted = range(self.n_clients) if clients is None else sorted(clients)
        own = [c for c in wanted if c in self._index]
        rest = [c for c in wanted if c not in self._index]
        out = [(self.get(c), [c]) for c in own]
        return out + ([(self.initial, rest)] if rest else [])

    def all_states(self) -> bool:
        """Whether every client has a state of its own."""
        return len(self._index) == self.n_clients

    # ----- snapshots and lifetime --------------------------------------------------------------------
    def spawn(self) -> PersonalStore:
        """An empty store (every client at the initial state) sharing this one's backend."""
        other = PersonalStore({}, self.n_clients, self.kind, _backend=self._backend)
        other.initial = self.initial
        return other

    def snapshot(self) -> PersonalStore:
        """A copy of the current states, to read, not to set; shares the backend (no copying)."""
        snap = self.spawn()
        snap._index = dict(self._index)
        return snap

    def prune(self, *others: PersonalStore) -> None:
        """Free stored states that neither this store nor ``others`` (its snapshots) reference."""
        live = {k for s in (self, *others) for k in s._index.values() if isinstance(k, str)}
        self._backend.drop_all_but(live)

    def close(self) -> None:
        self._backend.close()

    def nbytes(self) -> int:
        """Bytes of personal state held (the initial state once, plus every stored state)."""
        size = sum(t.numel() * t.element_size() for t in self.initial.values())
        return size * (1 + len(self._index))

