"""Each client's personal state (the tensors a method keeps per client), created lazily.

A client that has never been sampled holds the method's initial personal state; that state is
kept once, not once per client, so 10,000 clients of which 300 were ever sampled cost 301 states.
A client's own state is stored the first time it is set (after its first fit).

Two backends:

- ``memory`` (default): the states are the tensors the clients returned, kept in a dict;
- ``disk``: one safetensors file per stored state in a run-scoped folder (loaded on ``get``),
  for very many clients; files are never rewritten in place (a new state is a new file), so a
  snapshot (the validation-selected round's states) stays readable while the run goes on. A file
  is read into memory whole and checked against the size and SHA-256 it was written with, never
  memory-mapped: a mapped file that another process truncates or rewrites kills the run with
  SIGBUS and no message, while a checked read fails with one line naming the file. The folder is
  removed when the store closes (the loop closes it also after errors), when the process exits,
  and, for a process that was killed, by the next store created beside it.

The store also tracks which clients changed since the last checkpoint (:attr:`dirty`), so a
checkpoint writes only those.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import socket
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

from fedbench.config import STORE_KINDS
from fedbench.errors import CheckpointError, ConfigError
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

    PREFIX = "fedbench-personal-"

    def __init__(self, parent: Path | None):
        if parent is not None:
            Path(parent).mkdir(parents=True, exist_ok=True)
            _remove_orphans(Path(parent), self.PREFIX)
        self.folder = Path(tempfile.mkdtemp(prefix=f"{self.PREFIX}{os.getpid()}-{_HOST}-", dir=parent))
        self.counter = itertools.count()
        self.written: dict[str, tuple[int, str]] = {}  # name -> (size, sha256) as written
        self._finalizer = weakref.finalize(
            self, shutil.rmtree, str(self.folder), True
        )  # also at interpreter exit

    def put(self, state: State) -> str:
        from safetensors.torch import save

        name = f"{next(self.counter)}.safetensors"
        data = save({k: v.detach().cpu().contiguous().clone() for k, v in state.items()})
        (self.folder / name).write_bytes(data)
        self.written[name] = (len(data), hashlib.sha256(data).hexdigest())
        return name

    def get(self, key: str) -> State:
        from safetensors.torch import load

        path = self.folder / key
        size, digest = self.written.get(key, (None, None))
        try:
            data = path.read_bytes()
        except OSError as err:
            raise self._changed(path, f"it cannot be read any more ({err.strerror})") from None
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            raise self._changed(
                path, f"it holds {len(data):,} bytes that are not the {size:,} this run wrote"
            )
        return load(data)

    @staticmethod
    def _changed(path: Path, what: str) -> CheckpointError:
        return CheckpointError(
            f"federation.personal_store: the client state file {path} changed while the run used it "
            f"({what}); nothing else may write in that folder: run the same command again to resume from the "
            "last round"
        )

    def drop_all_but(self, live: set) -> None:
        for name in set(self.written) - live:
            (self.folder / name).unlink(missing_ok=True)
            del self.written[name]

    def close(self) -> None:
        self._finalizer()
        parent = self.folder.parent
        if parent.name == "personal-store":
            try:
                parent.rmdir()  # only when no other run's store is in it
            except OSError:
                pass


_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[
    :8
]  # results folders may be shared between machines


def _remove_orphans(parent: Path, prefix: str) -> None:
    """Remove store folders of this machine's processes that no longer exist (a killed run cannot
    clean up after itself)."""
    for folder in parent.glob(f"{prefix}*"):
        pid, host, *_ = [*folder.name[len(prefix) :].split("-"), "", ""]
        if host == _HOST and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


class PersonalStore:
    """Personal state per client id in ``range(n_clients)``; see the module docstring.

    ``get(c)`` (also ``store[c]``) is client c's state, the initial one if c never set one;
    ``set(c, state)`` stores c's new state and marks c dirty; ``sampled()`` lists the clients
    with their own state; ``items()`` yields (client, state) for those; ``groups()`` gives each
    distinct state once with the clients that hold it.
    """

    def __init__(
        self,
        initial: State,
        n_clients: int,
        kind: str = "memory",
        folder: Path | None = None,
        *,
        _backend=None,
    ):
        if kind not in STORE_KINDS:
            raise ConfigError(
                f"federation.personal_store: must be one of {', '.join(STORE_KINDS)}, got {kind!r}"
            )
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
