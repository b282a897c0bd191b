"""What a board section says beyond its headline settings: every identity field its runs set away
from the defaults.

A section's "Shared:" line names the settings a reader expects (missingness, partition, clients,
rounds, labels, backbone, precision). Anything else that can change a result (simulated failures,
learning rate, batch size, a method's options, a dataset's or backbone's options) is only worth a
word when it is not the default; but then it must be said, or a run with half its clients dropped
reads like a clean one. The defaults are the config's own (``ExperimentConfig``) and each part's
options dataclass (the dataset's, the backbone's, each method's).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from fedbench.tracking.board_model import Section, flat_identity, show, used_by_partition

__all__ = ["DESCRIBED", "method_option_notes", "unusual_shared"]

# paths Section.shared_text() already puts in words (or that a board states elsewhere)
DESCRIBED = {
    "seed",
    "data.dataset",
    "missing.protocol",
    "missing.type",
    "missing.rate",
    "missing.both_ratio",
    "partition.name",
    "partition.alpha",
    "partition.shards_per_client",
    "partition.n_clients",
    "federation.clients_per_round",
    "federation.client_fraction",
    "federation.rounds",
    "federation.local_epochs",
    "data.options.label",
    "data.label",
    "backbone.name",
    "train.precision",
}
_OPTIONS = "method.options."


def unusual_shared(section: Section) -> list[str]:
    """``path=value`` for each shared identity path not in :data:`DESCRIBED` whose value is not the
    default (sorted by path); method options are left to :func:`method_option_notes`."""
    if not section.runs:
        return []
    flat = flat_identity(section.runs[0])
    defaults = _defaults(flat)
    out = []
    for path in sorted(section.shared):
        if path in DESCRIBED or path.startswith(_OPTIONS) or not used_by_partition(path, flat):
            continue
        value = json.loads(section.shared[path])
        if path not in defaults or defaults[path] != value:
            out.append(f"{path}={show(value)}")
    return out


def method_option_notes(section: Section) -> list[str]:
    """``method: option=value, ...`` per method of the section, for the options all its runs set
    away from the method's defaults (options that vary within the method are in its rows)."""
    flats = [flat_identity(r) for r in section.runs]
    by_method: dict[str, list[dict[str, str]]] = {}
    for flat in flats:
        by_method.setdefault(str(json.loads(flat.get("method.name", '"?"'))), []).append(flat)
    notes = []
    for method, mine in sorted(by_method.items()):
        defaults = _option_defaults("method", method)
        paths = sorted({p for f in mine for p in f if p.startswith(_OPTIONS)})
        fixed = [p for p in paths if len({f.get(p) for f in mine}) == 1 and p in mine[0]]
        unusual = [
            p
            for p in fixed
            if defaults is None or defaults.get(p[len(_OPTIONS) :], _ABSENT) != json.loads(mine[0][p])
        ]
        if defaults is not None and unusual:
            notes.append(
                f"{method} "
                + ", ".join(f"{p[len(_OPTIONS) :]}={show(json.loads(mine[0][p]))}" for p in unusual)
            )
    return notes


_ABSENT = object()


def _defaults(flat: dict[str, str]) -> dict[str, Any]:
    """Dotted path -> default value: the config's fields, and the options of the run's dataset and
    backbone (left out where the part is not registered here)."""
    from fedbench.config import NOT_IDENTITY, ExperimentConfig

    config = ExperimentConfig().to_dict()
    out: dict[str, Any] = {}
    for section, fields in config.items():
        if section in NOT_IDENTITY:
            continue
        if not isinstance(fields, dict):
            out[section] = fields
            continue
        out.update({f"{section}.{k}": v for k, v in fields.items() if k != "options"})
    for part, name_path in (("data", "data.dataset"), ("backbone", "backbone.name")):
        options = _option_defaults(part, str(json.loads(flat.get(name_path, "null"))))
        out.update({f"{part}.options.{k}": v for k, v in (options or {}).items()})
    return out


def _option_defaults(part: str, name: str) -> dict[str, Any] | None:
    """The defaults of a registered part's options dataclass ({} when it takes none; None when no
    part of that name is registered here). Read from the dataclass fields, not by building it, so
    options that must be given (a dataset's root) do not count as an error."""
    from fedbench.backbones.registry import BACKBONES
    from fedbench.data.registry import DATASETS
    from fedbench.methods.registry import METHODS

    registry = {"method": METHODS, "data": DATASETS, "backbone": BACKBONES}[part]
    if name not in registry:
        return None
    cls = registry.get(name).options
    if cls is None:
        return {}
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return json.loads(json.dumps(out, default=str))  # as a record holds them (tuples as lists)
