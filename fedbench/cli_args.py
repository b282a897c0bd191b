"""The argument side of the ``fedbench`` command line: the parsers (jsonargparse against the typed
dataclasses of :mod:`fedbench.config`), the choices of every enumerated field, and the helpers that
turn arguments into a config (a config file, dotted overrides, JSON option dicts that merge into
the file's). :mod:`fedbench.cli` holds the commands."""

from __future__ import annotations

import os

os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

from jsonargparse import ActionConfigFile, ArgumentParser  # noqa: E402

from fedbench.cli_errors import parse_error_line  # noqa: E402
from fedbench.config import ExperimentConfig, from_dict  # noqa: E402
from fedbench.errors import ConfigError  # noqa: E402


def field_choices() -> dict[str, tuple[str, ...]]:
    """The values each enumerated config field takes (registries include installed plugins)."""
    from fedbench.backbones.registry import BACKBONES
    from fedbench.config import (
        ACCELERATORS,
        LR_SCHEDULES,
        MISSING_PROTOCOLS,
        MISSING_TYPES,
        PRECISIONS,
        STORE_KINDS,
    )
    from fedbench.data.partition import PARTITIONS
    from fedbench.data.registry import DATASETS
    from fedbench.federation.executors import EXECUTORS
    from fedbench.methods.registry import METHODS

    return {
        "data.dataset": tuple(DATASETS.names()),
        "backbone.name": tuple(BACKBONES.names()),
        "method.name": tuple(METHODS.names()),
        "executor.name": tuple(EXECUTORS.names()),
        "missing.protocol": MISSING_PROTOCOLS,
        "missing.type": MISSING_TYPES,
        "partition.name": tuple(PARTITIONS),
        "train.precision": PRECISIONS,
        "train.lr_schedule": LR_SCHEDULES,
        "train.accelerator": ACCELERATORS,
        "federation.personal_store": STORE_KINDS,
    }


def experiment_parser(prog: str, with_choices: bool = False) -> ArgumentParser:
    p = ArgumentParser(prog=prog, exit_on_error=False, description="Run one federated experiment.")
    p.add_argument(
        "--config", action=ActionConfigFile, help="experiment YAML (e.g. experiments/emoji_quick.yaml)"
    )
    p.add_class_arguments(ExperimentConfig, nested_key=None, fail_untyped=False)
    if with_choices:  # only for --help: the registries load every installed plugin
        choices = field_choices()
        for action in p._actions:
            if action.dest in choices:
                action.help = f"one of: {', '.join(choices[action.dest])}"
    p.add_argument("--force", type=bool, default=False, help="rerun even if a record with this config exists")
    p.add_argument(
        "--smoke",
        type=bool,
        default=False,
        help="the whole real data path with one short round on a capped sample; nothing is recorded",
    )
    return p


def asks_help(argv: list[str]) -> bool:
    return "-h" in argv or "--help" in argv


def grid_arguments(p: ArgumentParser, leaderboards: str | None = "leaderboards") -> None:
    p.add_argument("--rates", type=str | None, default=None, help='missing rates, e.g. "0.1 0.5 0.9"')
    p.add_argument("--types", type=str | None, default=None, help='missing types, e.g. "text image both"')
    p.add_argument("--seeds", type=str | None, default=None, help='seeds, e.g. "0 1 2"')
    p.add_argument(
        "--leaderboards",
        type=str | None,
        default=leaderboards,
        help=(
            "where the boards go (bench: runs/leaderboards, or runs/leaderboards/<paper> for a paper's table)"
        ),
    )
    p.add_argument(
        "--workers",
        type=int | None,
        default=None,
        help="runs in parallel processes (CPU threads are shared out)",
    )


def split(text: str | None, cast=str) -> list | None:
    if text is None:
        return None
    parts = [t for t in text.replace(",", " ").split() if t]
    try:
        return [cast(t) for t in parts]
    except ValueError as err:
        raise ConfigError(f"could not read {text!r} as a list of {cast.__name__} values: {err}") from err


def check_config_file(argv: list[str]) -> None:
    """Each ``--config`` file is read once here, so a missing, empty or broken one is one line
    naming it (jsonargparse's own messages name neither the file nor, for an empty one, the problem)."""
    from fedbench.yaml_files import read_mapping

    for i, arg in enumerate(argv):
        path = (
            arg.split("=", 1)[1]
            if arg.startswith("--config=")
            else (argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None)
        )
        if path is not None:
            read_mapping(path, "--config: file")


OPTION_SECTIONS = ("data", "backbone", "method", "executor")


def options_flags(argv: list[str]) -> tuple[list[str], dict[str, dict]]:
    """``argv`` without its ``--<section>.options`` flags, and those options as dicts: options given on
    the command line are merged into the config file's (a JSON dict would otherwise replace the
    file's whole dict and silently drop what it does not repeat)."""
    import yaml

    rest, given, i = [], {}, 0
    while i < len(argv):
        arg = argv[i]
        name = next(
            (s for s in OPTION_SECTIONS if arg == f"--{s}.options" or arg.startswith(f"--{s}.options=")), None
        )
        if name is None:
            rest.append(arg)
            i += 1
            continue
        if "=" in arg:
            text, i = arg.split("=", 1)[1], i + 1
        elif i + 1 < len(argv):
            text, i = argv[i + 1], i + 2
        else:
            raise ConfigError(f"--{name}.options: give a dict, e.g. '{{\"key\": value}}'")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(
                f"--{name}.options: not a JSON/YAML dict ({str(err).splitlines()[0]}); "
                f"give e.g. '{{\"key\": value}}'"
            ) from err
        if not isinstance(value, dict):
            raise ConfigError(f"--{name}.options: {text!r} is not a dict; give e.g. '{{\"key\": value}}'")
        given[name] = {**given.get(name, {}), **value}
    return rest, given


def parse(parser: ArgumentParser, argv: list[str]):
    check_config_file(argv)
    argv, options = options_flags(argv)
    try:
        ns = parser.parse_args(argv)
    except Exception as err:  # jsonargparse reports type errors as ArgumentError with a multi-line text
        raise ConfigError(parse_error_line(err)) from err
    for section, values in options.items():
        ns[f"{section}.options"] = {**(ns.get(f"{section}.options") or {}), **values}
    return ns


def json_dict(text: str | None, flag: str, example: str) -> dict | None:
    import json

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{flag}: not JSON ({err.msg}); give e.g. '{example}'") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{flag}: give a JSON object, e.g. '{example}'")
    return value


def config_from(ns) -> ExperimentConfig:
    d = ns.as_dict()
    for key in (
        "config",
        "force",
        "smoke",
        "__path__",
        "methods",
        "per_method",
        "rates",
        "types",
        "alphas",
        "seeds",
        "leaderboards",
        "workers",
        "cells",
        "cells_options",
    ):
        d.pop(key, None)
    return from_dict(d)
