"""What a board section shows only when its runs log it: a value per round, completion quality.

- **Pool size per round.** A method whose aggregator reports ``pool_size`` in every round's record
  (PPT's global prompt pool, set by the probabilistic matcher) gets a table of the seed-mean pool
  size per round for each method and setting, and a plot beside the board
  (:func:`~fedbench.tracking.plots.plot_round_series`). PFPT follows this size over the rounds because
  the matcher decides it: a pool growing with clients x prompts means the matcher is not merging,
  one stuck at kappa means retrieval collapsed onto the same prompts. Any method that logs the key
  gets the block; a section where no run logs it gets nothing.
- **Completion quality.** FedMVP fills a missing modality before federation and records the
  quality of that completion in every round (``rounds[-1]["completion"]``, written by
  ``fedbench.methods.fedmvp.completion.completion_quality``). The detail table gains one column per
  quality key any run of the section reports, with its help line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fedbench.tracking.board_model import Section, Setting
from fedbench.tracking.board_stats import DASH, table_head, table_row
from fedbench.tracking.record_shape import is_finite_number

__all__ = ["COMPLETION_HELP", "POOL_KEY", "completion_columns", "pool_block", "round_series"]

POOL_KEY = "pool_size"
MAX_ROUND_COLUMNS = 10  # a longer run shows this many rounds, evenly spread, the last included

# column name -> (key in a round's "completion" dict, help); values are shares, shown ×100
_COMPLETION = {
    "text completion": (
        "text/label_agreement",
        "share of filled-in texts whose source (a retrieved public sample) has the sample's label, ×100",
    ),
    "image completion": (
        "image/label_agreement",
        "share of filled-in images whose source (a retrieved public sample) has the sample's label, ×100",
    ),
}
COMPLETION_HELP = {name: text for name, (_, text) in _COMPLETION.items()}


def _number(value: Any) -> float | None:
    return float(value) if is_finite_number(value) else None


def _completion_value(key: str) -> Callable[[dict[str, Any]], float | None]:
    def value(record: dict[str, Any]) -> float | None:
        rounds = record.get("rounds") or []
        last = rounds[-1] if rounds and isinstance(rounds[-1], dict) else {}
        quality = last.get("completion")
        raw = _number(quality.get(key)) if isinstance(quality, dict) else None
        return None if raw is None else 100.0 * raw

    return value


def completion_columns(
    runs: list[dict[str, Any]],
) -> list[tuple[str, Callable[[dict[str, Any]], float | None]]]:
    """Detail-table columns for the completion-quality keys that any of ``runs`` reports."""
    columns = [(name, _completion_value(key)) for name, (key, _) in _COMPLETION.items()]
    return [(name, value) for name, value in columns if any(value(r) is not None for r in runs)]


def _per_round(record: dict[str, Any], key: str) -> list[float | None] | None:
    """The run's ``key`` per round (None in a round without it), or None when no round has it. A dotted
    key reads into a round's dicts: ``val.accuracy`` is ``round["val"]["accuracy"]``."""
    values = [_lookup(r, key.split(".")) for r in record.get("rounds") or []]
    return values if any(v is not None for v in values) else None


def _lookup(value: Any, path: list[str]) -> float | None:
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return _number(value)


def round_series(
    section: Section, key: str = POOL_KEY
) -> dict[tuple[Setting, str], tuple[int, list[float | None]]]:
    """{(setting, method row): (runs, seed mean of ``key`` per round)} for the cells whose runs log ``key``.

    A round's mean is over the runs that logged the key in that round (a round where every client
    dropped logs none), over the rounds every run reached, so a shorter (diverged) run never leaves
    the later rounds to the others alone.
    """
    out: dict[tuple[Setting, str], tuple[int, list[float | None]]] = {}
    for setting in section.settings:
        for method in section.methods:
            series = [
                s for r in section.cells.get((method, setting), []) if (s := _per_round(r, key)) is not None
            ]
            if not series:
                continue
            means: list[float | None] = []
            for i in range(min(len(s) for s in series)):
                seen = [s[i] for s in series if s[i] is not None]
                means.append(sum(seen) / len(seen) if seen else None)
            out[setting, method] = (len(series), means)
    return out


def _shown_rounds(n: int) -> list[int]:
    """0-based round indices for the table: all of them, or MAX_ROUND_COLUMNS evenly spread."""
    if n <= MAX_ROUND_COLUMNS:
        return list(range(n))
    return sorted({round(i * (n - 1) / (MAX_ROUND_COLUMNS - 1)) for i in range(MAX_ROUND_COLUMNS)})


def _number_text(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def pool_block(section: Section, plot_link: str | None = None, key: str = POOL_KEY) -> list[str]:
    """Markdown: the seed-mean ``key`` per round of each (setting, method); [] when no run logs it."""
    series = round_series(section, key)
    if not series:
        return []
    n = max(len(means) for _, means in series.values())
    shown = _shown_rounds(n)
    by_setting = len(section.settings) > 1
    out = [f"### {key.replace('_', ' ').capitalize()} per round", ""]
    out.append(
        f"Mean over seeds of each run's `{key}` after the round's aggregation (`seeds`: runs averaged)."
    )
    out.append("")
    out += table_head(
        [*(["setting"] if by_setting else []), "method", "seeds", *(f"r{i + 1}" for i in shown)]
    )
    for (setting, method), (runs, means) in series.items():
        cells = [_number_text(means[i]) if i < len(means) else DASH for i in shown]
        out.append(table_row([*([setting.label] if by_setting else []), method, str(runs), *cells]))
    out.append("")
    if plot_link is not None:
        out += [f"![{key.replace('_', ' ')} per round]({plot_link})", ""]
    return out
