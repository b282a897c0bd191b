"""What the leaderboard shows, before it is drawn: sections, settings, method rows and measures.

A board only compares runs of one bench plan: records are grouped into sections by their sweep name
(runs with none share an "Other runs" section). Inside a section, a run is described by its
identity (:func:`~fedbench.tracking.records.record_identity`) flattened to dotted paths
(``missing.rate``, ``federation.rounds``, ``method.options.mu``). Paths equal in every run of the
section are the section's shared settings; the others vary, and split three ways:

- ``method.name`` and method options: the *row* (``fedprime``, or ``fedprox (mu=0.1)`` when a
  method was run with several option values);
- ``seed``: the runs summarised in one cell;
- everything else: the *setting* (a column of the at-a-glance table, e.g. ``text@0.1``). Settings
  that differ only in the missing rate form one *group*, which gets one detail table. A setting's
  label leaves out the partition options its partitioner does not read (``PARTITION_OPTIONS``: no
  alpha on an imbalanced split), unless two settings would then read the same.

So two runs that differ in anything that can change a result never land in one cell.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fedbench.batch import MISSING_TYPES
from fedbench.data.partition import PARTITION_OPTIONS
from fedbench.errors import DataError
from fedbench.tracking.record_file import record_problem
from fedbench.tracking.records import dedupe_records, metric_value, record_identity, strict_json

__all__ = [
    "OTHER_RUNS",
    "Section",
    "Setting",
    "board_runs",
    "valid_runs",
    "build_sections",
    "bytes_up_mb",
    "flat_identity",
    "metric_measure",
    "primary_metric",
]

OTHER_RUNS = "Other runs"
PROTOCOL, TYPE, RATE, RATIO = "missing.protocol", "missing.type", "missing.rate", "missing.both_ratio"
_FIRST = (PROTOCOL, TYPE, RATE)  # setting paths in this order, then the rest alphabetically
_OPTIONS = "method.options."
_PARTITION_FIELDS = {f"partition.{f}" for fields in PARTITION_OPTIONS.values() for f in fields}


@dataclass(frozen=True)
class Setting:
    """One column of the at-a-glance table: the values of the section's varying setting paths."""

    key: tuple[str | None, ...]  # canonical JSON per setting path; None = path absent in this run
    label: str  # e.g. "text@0.1" or "text@0.7, rounds=10"
    group: str  # detail-table title, shared by settings that differ only in the missing rate
    rate: float | None


@dataclass
class Section:
    """The runs of one sweep, with what they share and the rows x settings they span."""

    name: str
    runs: list[dict[str, Any]]
    shared: dict[str, str]  # path -> canonical JSON value, equal in every run
    varying: list[str]  # paths that differ between runs (method options only where a row shows them)
    methods: list[str] = field(default_factory=list)  # row labels, sorted
    settings: list[Setting] = field(default_factory=list)  # columns, in a stable natural order
    cells: dict[tuple[str, Setting], list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def commands(self) -> list[str]:
        """The commands that produced these runs (``config.tracking.command``), first seen first."""
        found = [((r.get("config") or {}).get("tracking") or {}).get("command") for r in self.runs]
        return list(dict.fromkeys(c for c in found if isinstance(c, str) and c))

    def groups(self) -> list[tuple[str, list[Setting]]]:
        grouped: dict[str, list[Setting]] = defaultdict(list)
        for setting in self.settings:
            grouped[setting.group].append(setting)
        return list(grouped.items())

    def shared_text(self) -> str:
        """The shared identity fields a reader needs, compactly (``per_sample missingness, ...``)."""
        v = {path: json.loads(text) for path, text in self.shared.items()}
        parts = []
        if PROTOCOL in v:
            parts.append(f"{v[PROTOCOL]} missingness")
        if TYPE in v:
            parts.append(
                f"missing {v[TYPE]}"
                + (f" (both_ratio {show(v[RATIO])})" if v[TYPE] == "both" and RATIO in v else "")
            )
        if RATE in v:
            parts.append(f"rate {show(v[RATE])}")
        if "partition.name" in v:
            parts.append(_partition_text(v))
        if "partition.n_clients" in v:
            parts.append(f"{v['partition.n_clients']} clients")
        per_round = v.get("federation.clients_per_round")
        if per_round is not None:
            parts.append(f"{per_round} per round")
        elif "federation.client_fraction" in v:
            fraction = v["federation.client_fraction"]
            parts.append("all per round" if fraction == 1 else f"a {show(fraction)} fraction per round")
        for path, unit in (("federation.rounds", "round"), ("federation.local_epochs", "local epoch")):
            if path in v:
                parts.append(f"{v[path]} {unit}{'' if v[path] == 1 else 's'}")
        for path in ("data.options.label", "data.label"):
            if path in v:
                parts.append(f"{v[path]} labels")
                break
        if "backbone.name" in v:
            parts.append(f"{v['backbone.name']} backbone")
        if "train.precision" in v:  # auto resolves per machine: say which one these runs had
            parts.append(v["train.precision"])
        return ", ".join(parts)


def board_runs(records: list[dict[str, Any]], dataset: str) -> list[dict[str, Any]]:
    """The runs a board of ``dataset`` shows: valid records of that dataset, newest per identity."""
    return valid_runs(records, dataset)[0]


def valid_runs(records: list[dict[str, Any]], dataset: str) -> tuple[list[dict[str, Any]], int]:
    """(valid records of ``dataset``, newest per identity; how many were skipped as invalid).

    Records read from files are already checked (:mod:`~fedbench.tracking.record_file`); records
    handed over in memory are checked here the same way (shape, scores in range, run id = hash of
    the identity), and an invalid one is skipped with one warning naming its run id and the reason.
    """
    kept, skipped = [], 0
    for record in records:
        if isinstance(record, dict) and record.get("dataset") != dataset:
            continue
        problem = record_problem(record)
        if problem is not None:
            name = record.get("run_id") if isinstance(record, dict) else None
            warnings.warn(f"skipping run record {name!r}: {problem}; fix or delete it", stacklevel=3)
            skipped += 1
            continue
        kept.append(record)
    return dedupe_records(kept), skipped


def primary_metric(runs: list[dict[str, Any]], dataset: str) -> str:
    """The one metric every run reports as primary (``record["metric"]``); mixing is refused."""
    metrics = sorted({str(r.get("metric")) for r in runs})
    if len(metrics) != 1:
        raise DataError(
            f"records of {dataset!r} use different primary metrics {metrics}; "
            "move the stale runs out of results/"
        )
    return metrics[0]


def metric_measure(
    metric: str, condition: str | None, source: str = "final"
) -> Callable[[dict], float | None]:
    """A record's ``metric`` (×100) under ``condition`` from ``source`` (see ``metric_value``)."""

    def value(record: dict[str, Any]) -> float | None:
        raw = metric_value(record, metric, condition, source)
        return None if raw is None else 100.0 * raw

    return value


def bytes_up_mb(record: dict[str, Any]) -> float | None:
    """Mean over rounds of the bytes all sampled clients sent up, in MB (10^6 bytes)."""
    sent = [r["bytes_up"] for r in record.get("rounds") or [] if r.get("bytes_up") is not None]
    return sum(sent) / len(sent) / 1e6 if sent else None


def flat_identity(record: dict[str, Any]) -> dict[str, str]:
    """A run's identity as dotted paths to canonical JSON (``{"missing.rate": "0.7", ...}``)."""
    return _flatten(record_identity(record))


def build_sections(runs: list[dict[str, Any]]) -> list[Section]:
    """Group deduplicated ``runs`` by sweep name (sorted, "Other runs" last) and lay each out."""
    by_sweep: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        sweep = run.get("sweep")
        by_sweep[sweep if isinstance(sweep, str) and sweep else OTHER_RUNS].append(run)
    names = sorted(by_sweep, key=lambda n: (n == OTHER_RUNS, n))
    return [_layout(name, by_sweep[name]) for name in names]


def _layout(name: str, runs: list[dict[str, Any]]) -> Section:
    flats = [flat_identity(r) for r in runs]
    paths = set().union(*flats)
    shared = {p: flats[0][p] for p in paths if all(p in f and f[p] == flats[0][p] for f in flats)}
    varying = sorted(set(paths) - set(shared), key=_path_order)
    setting_paths = [p for p in varying if p != "seed" and not p.startswith("method.")]

    method_of = [str(json.loads(f.get("method.name", '"?"'))) for f in flats]
    labels, shown_options = list(method_of), set()
    for method in sorted(set(method_of)):
        mine = [f for f, m in zip(flats, method_of, strict=True) if m == method]
        options = sorted({p for f in mine for p in f if p.startswith(_OPTIONS)})
        differ = [p for p in options if len({f.get(p) for f in mine}) > 1]
        shown_options.update(differ)
        for i, f in enumerate(flats):
            if method_of[i] == method and differ:
                shown = ", ".join(
                    f"{p[len(_OPTIONS) :]}={show(json.loads(f[p])) if p in f else 'default'}" for p in differ
                )
                labels[i] = f"{method} ({shown})"
    # options that are fixed per method (each method's own, spelled out with its defaults) vary
    # between methods only because the methods differ: the row already says that
    varying = [p for p in varying if not p.startswith(_OPTIONS) or p in shown_options]
    section = Section(name, runs, shared, varying)

    first_flat: dict[tuple[str | None, ...], dict[str, str]] = {}
    for flat in flats:
        first_flat.setdefault(tuple(flat.get(p) for p in setting_paths), flat)
    settings = {key: _setting(key, setting_paths, flat) for key, flat in first_flat.items()}
    clash = Counter(s.label for s in settings.values())
    settings = {
        key: _setting(key, setting_paths, first_flat[key], hide=False) if clash[s.label] > 1 else s
        for key, s in settings.items()
    }
    for run, flat, label in zip(runs, flats, labels, strict=True):
        section.cells.setdefault((label, settings[tuple(flat.get(p) for p in setting_paths)]), []).append(run)
    section.methods = sorted(set(labels))
    section.settings = sorted(
        settings.values(), key=lambda s: [_order(p, v) for p, v in zip(setting_paths, s.key, strict=True)]
    )
    return section


def _path_order(path: str) -> tuple[bool, int, str]:
    """Missing protocol, type and rate first, then alphabetically with a part's ``name`` before its
    options (``partition=dirichlet, alpha=0.5``)."""
    return (path not in _FIRST, _FIRST.index(path) if path in _FIRST else 0, path.removesuffix(".name"))


def used_by_partition(path: str, flat: dict[str, str]) -> bool:
    """False for a partition option that the run's partitioner does not read."""
    name = _plain(flat.get("partition.name"))
    return (
        path not in _PARTITION_FIELDS
        or name not in PARTITION_OPTIONS
        or path[len("partition.") :] in PARTITION_OPTIONS[name]
    )


def _setting(
    key: tuple[str | None, ...], paths: list[str], flat: dict[str, str], hide: bool = True
) -> Setting:
    """Label a setting by what varies: ``text@0.1`` for type and rate, ``name=value`` for the rest
    (with ``hide``, leaving out the partition options its partitioner does not read)."""
    values = {p: v for p, v in zip(paths, key, strict=True) if not hide or used_by_partition(p, flat)}
    mtype, rate = _plain(flat.get(TYPE)), _plain(flat.get(RATE))
    protocol = [str(_plain(values[PROTOCOL]))] if PROTOCOL in values else []
    others = [f"{_short(p, paths)}={show(_plain(v))}" for p, v in values.items() if p not in _FIRST]
    core = f"{mtype}@{show(rate)}" if mtype is not None else f"rate {show(rate)}"
    label = ", ".join([" ".join([*protocol, core]), *others])
    group = ", ".join([f"Missing {mtype}" if mtype is not None else "Runs", *protocol, *others])
    return Setting(key, label, group, float(rate) if isinstance(rate, (int, float)) else None)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``; leaves as canonical JSON so equality is exact."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = json.dumps(strict_json(value), sort_keys=True)
    return out


def _plain(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value) if isinstance(value, (str, int)) else json.dumps(value)


def _short(path: str, paths: list[str]) -> str:
    """The last part of a dotted path (its section for a ``name``: ``partition=iid``), unless
    another varying path shortens the same way."""

    def short(p: str) -> str:
        parts = p.split(".")
        return parts[-2] if parts[-1] == "name" and len(parts) > 1 else parts[-1]

    return short(path) if sum(short(p) == short(path) for p in paths) == 1 else path


def _order(path: str, text: str | None) -> tuple[int, float, str]:
    """Sort key of one setting value: absent first, missing types in MISSING_TYPES order, numbers by value."""
    value = _plain(text)
    if text is None or value is None:
        return (0, 0.0, "")
    if path == TYPE and value in MISSING_TYPES:
        return (1, float(MISSING_TYPES.index(value)), "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, float(value), "")
    return (2, 0.0, str(text))


def _partition_text(v: dict[str, Any]) -> str:
    name = v["partition.name"]
    if name == "dirichlet" and "partition.alpha" in v:
        return f"dirichlet(alpha={show(v['partition.alpha'])})"
    if name == "shards" and "partition.shards_per_client" in v:
        return f"shards({v['partition.shards_per_client']} per client)"
    return str(name)
