"""Reading the YAML files people edit (experiment configs, the papers' numbers): every problem is
one line naming the file.

PyYAML's errors name ``"<unicode string>"`` rather than the file, an empty file reads as ``None``
(which jsonargparse reports as "Unexpected config:" and ``from_dict`` would take as "all
defaults"), and a list where sections are expected fails far from the file. Each becomes one line
here, with the file, the line and column where PyYAML gives them, and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedbench.errors import ConfigError

EXAMPLE = "experiments/emoji_quick.yaml"


def read_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The mapping at the top of the YAML file ``path``; :class:`ConfigError` (one line) otherwise."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist; pass a YAML file such as {EXAMPLE}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"{what} {path}: cannot read it ({err.strerror}); check the file's permissions"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text; save it as UTF-8 YAML") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} {path} is not valid YAML ({_where(err)}); fix the file") from None
    if data is None:
        raise ConfigError(
            f"{what} {path} is empty; give its sections (e.g. missing: {{rate: 0.5}}) as in {EXAMPLE}"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} {path} holds a {type(data).__name__}, not a mapping of sections; write it as in "
            f"{EXAMPLE}"
        )
    return data


def _where(err: Exception) -> str:
    """'line L, column C: problem' from a PyYAML error, as far as it says."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).strip().splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
