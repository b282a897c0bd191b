"""The papers' reported numbers, beside fedbench's on the board of their dataset.

The numbers live in one data file, ``experiments/paper_numbers.yaml`` (its header describes the
format): per paper table, the dataset, metric and the setting (config paths) it was measured in,
and per number the method, test condition and value. A board section gets a "Paper's numbers"
block when some of its cells match: same dataset, same ``method.name``, and every setting path of
the number equal in the cell's run identity. A cell then reads ``fedbench / paper``, with the
source said once above the table. Nothing appears where nothing matches.

A malformed entry stops the board with one line naming the file, the entry and the field: the file
is edited by hand, and a typo would otherwise quietly drop a number from every board. That
includes a method or dataset name no registry knows (``fedprme`` would match no run, ever).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedbench.batch import TEST_CONDITIONS
from fedbench.errors import ConfigError
from fedbench.tracking.board_model import Section, flat_identity, metric_measure
from fedbench.tracking.board_stats import DASH, cell_text, collect, table_head, table_row
from fedbench.tracking.record_shape import is_finite_number

__all__ = ["PAPER_NUMBERS", "PaperNumber", "load_paper_numbers", "paper_block"]

PAPER_NUMBERS = Path(__file__).resolve().parents[2] / "experiments" / "paper_numbers.yaml"
_TABLE_FIELDS = {"paper", "source", "dataset", "metric", "setting", "numbers"}
_NUMBER_FIELDS = {"method", "setting", "condition", "value"}
_UNREACHABLE_FIELDS = {"paper", "tables", "tried", "why"}


@dataclass(frozen=True)
class PaperNumber:
    """One number a paper reports, and the runs it is comparable with."""

    paper: str
    source: str
    dataset: str
    method: str
    setting: tuple[tuple[str, Any], ...]  # (dotted config path, value), sorted by path
    condition: str
    metric: str
    value: float  # in %, as the board shows

    def matches(self, flat: dict[str, str]) -> bool:
        """Whether a run with this flattened identity (see ``flat_identity``) was run in this setting."""
        return all(path in flat and json.loads(flat[path]) == value for path, value in self.setting)


def load_paper_numbers(path: Path | None = None) -> list[PaperNumber]:
    """Read and check the numbers file; [] when there is none (an installed package without experiments/)."""
    from fedbench.yaml_files import read_mapping

    path = Path(path) if path is not None else PAPER_NUMBERS
    if not path.is_file():
        return []
    raw = read_mapping(path, "papers' numbers file")
    tables = raw.get("tables")
    if not isinstance(tables, list):
        raise ConfigError(f"{path}: expected a top-level `tables:` list; see the header of the file")
    _check_unreachable(path, raw.get("unreachable", []))
    return [number for i, table in enumerate(tables, 1) for number in _table(path, i, table)]


def _check_unreachable(path: Path, entries: Any) -> None:
    """The tables no source reached: each names the paper, the tables, the sources tried and why."""
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: `unreachable` must be a list of {', '.join(sorted(_UNREACHABLE_FIELDS))}")
    for i, entry in enumerate(entries, 1):
        where = f"{path}: unreachable entry {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is not a mapping of {', '.join(sorted(_UNREACHABLE_FIELDS))}")
        _known(where, entry, _UNREACHABLE_FIELDS)
        for key in ("paper", "tables", "why"):
            _text(where, entry, key)
        if not isinstance(entry.get("tried"), list) or not entry["tried"]:
            raise ConfigError(f"{where}: `tried` must list the sources read")


def _table(path: Path, i: int, table: Any) -> list[PaperNumber]:
    from fedbench.data.registry import DATASETS

    where = f"{path}: table {i}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} is not a mapping of {', '.join(sorted(_TABLE_FIELDS))}")
    _known(where, table, _TABLE_FIELDS)
    head = {k: _text(where, table, k) for k in ("paper", "source", "dataset", "metric")}
    _registered(where, "dataset", head["dataset"], DATASETS.names())
    setting = _setting(where, table.get("setting", {}))
    numbers = table.get("numbers")
    if not isinstance(numbers, list) or not numbers:
        raise ConfigError(f"{where} ({head['paper']}, {head['source']}): `numbers` must be a non-empty list")
    from fedbench.methods.registry import available

    out = []
    for j, number in enumerate(numbers, 1):
        here = f"{where} ({head['paper']}, {head['source']}), number {j}"
        if not isinstance(number, dict):
            raise ConfigError(f"{here} is not a mapping of {', '.join(sorted(_NUMBER_FIELDS))}")
        _known(here, number, _NUMBER_FIELDS)
        condition = _text(here, number, "condition")
        if condition not in TEST_CONDITIONS:
            raise ConfigError(f"{here}: condition {condition!r} is not one of {', '.join(TEST_CONDITIONS)}")
        value = number.get("value")
        if not is_finite_number(value):
            raise ConfigError(f"{here}: value must be a number (the paper's %), got {value!r}")
        merged = dict(setting) | dict(_setting(here, number.get("setting", {})))
        method = _text(here, number, "method")
        _registered(here, "method", method, available())
        out.append(
            PaperNumber(
                head["paper"],
                head["source"],
                head["dataset"],
                method,
                tuple(sorted(merged.items())),
                condition,
                head["metric"],
                float(value),
            )
        )
    return out


def _registered(where: str, what: str, name: str, known: list[str]) -> None:
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"{where}: {what} {name!r} is not registered; {hint}the {what}s are {', '.join(known)}"
        )


def _known(where: str, entry: dict[str, Any], fields: set[str]) -> None:
    unknown = sorted(str(k) for k in set(entry) - fields)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {', '.join(unknown)}; the fields are {', '.join(sorted(fields))}"
        )


def _text(where: str, entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: `{key}` must be a non-empty string, got {value!r}")
    return value.strip()


def _setting(where: str, setting: Any) -> tuple[tuple[str, Any], ...]:
    ok = isinstance(setting, dict) and all(isinstance(k, str) and "." in k for k in setting)
    if not ok or any(isinstance(v, (dict, list)) for v in setting.values()):
        raise ConfigError(
            f"{where}: `setting` must map dotted config paths to values, "
            f"e.g. {{missing.type: text}}; got {setting!r}"
        )
    return tuple(sorted(setting.items()))


def paper_block(section: Section, numbers: list[PaperNumber], dataset: str, metric: str) -> list[str]:
    """Markdown: fedbench's cell beside the paper's number for each matching (setting, method); [] if none."""
    found: dict[tuple[int, int], dict[tuple[str, str], PaperNumber]] = {}
    for si, setting in enumerate(section.settings):
        for mi, method in enumerate(section.methods):
            runs = section.cells.get((method, setting))
            if not runs:
                continue
            flat = flat_identity(runs[0])  # a cell's runs differ in the seed only
            name = json.loads(flat.get("method.name", "null"))
            for n in numbers:
                if n.dataset == dataset and n.method == name and n.matches(flat):
                    found.setdefault((si, mi), {})[n.condition, n.metric] = n
    if not found:
        return []
    shown = {key for cell in found.values() for key in cell}
    columns = [(c, m) for c in TEST_CONDITIONS for m in sorted({m for cc, m in shown if cc == c})]
    sources = list(dict.fromkeys(f"{n.paper}, {n.source}" for cell in found.values() for n in cell.values()))
    marks = len(sources) > 1
    by_setting = len(section.settings) > 1
    out = ["### Paper's numbers", ""]
    out.append(
        "fedbench's value (mean ± std over seeds, final round) / the paper's, where the paper reports "
        "this method in this setting. Source"
        + ("s: " if marks else ": ")
        + "; ".join(f"[{i}] {s}" if marks else s for i, s in enumerate(sources, 1))
        + "."
    )
    out.append("")
    out += table_head(
        [
            *(["setting"] if by_setting else []),
            "method",
            *(c if m == metric else f"{c} ({m})" for c, m in columns),
        ]
    )
    for (si, mi), cell in sorted(found.items()):
        setting, method = section.settings[si], section.methods[mi]
        texts = []
        for condition, m in columns:
            n = cell.get((condition, m))
            if n is None:
                texts.append(DASH)
                continue
            ours = cell_text(collect(section.cells[method, setting], metric_measure(m, condition)), False)
            mark = f" [{sources.index(f'{n.paper}, {n.source}') + 1}]" if marks else ""
            texts.append(f"{ours} / {n.value:g}{mark}")
        out.append(table_row([*([setting.label] if by_setting else []), method, *texts]))
    return [*out, ""]
