"""train.precision: auto resolves to what this machine trains fast in, and that is what a run records."""

from __future__ import annotations

import pytest

from fedbench import hardware
from fedbench.config import ExperimentConfig
from fedbench.errors import ConfigError
from fedbench.federation.resolve import run_id_of, validate
from fedbench.hardware import concrete_precision


@pytest.mark.parametrize("native, expected", [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_on_a_cpu_follows_its_bf16_instructions(monkeypatch, native, expected):
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: native)
    assert concrete_precision("auto", "cpu") == expected
    for given in ("32-true", "bf16-mixed", "16-mixed"):
        assert concrete_precision(given, "cpu") == given  # only auto is resolved


def test_validate_records_the_concrete_precision_and_the_identity_matches_it(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: True)
    auto, explicit = ExperimentConfig(), ExperimentConfig()
    auto.train.precision, explicit.train.precision = "auto", "bf16-mixed"
    resolved = validate(auto)
    assert resolved.train.precision == "bf16-mixed"
    assert auto.train.precision == "auto"  # resolving leaves the config it was given as it was
    assert run_id_of(auto) == run_id_of(resolved) == run_id_of(explicit)
    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    other = ExperimentConfig()
    other.train.precision = "auto"
    assert run_id_of(other) != run_id_of(explicit)  # a machine without bf16 runs another cell
    assert validate(other).train.precision == "32-true"


def test_an_unknown_precision_names_the_choices():
    cfg = ExperimentConfig()
    cfg.train.precision = "bf16"
    with pytest.raises(ConfigError, match="train.precision.*auto"):
        validate(cfg)


def test_a_flower_client_app_resolves_auto_before_any_fit(monkeypatch):
    """Every entry that trains validates first, so the trainer only ever sees a concrete precision."""
    pytest.importorskip("flwr")
    from fedbench.flower import client_app
    from fedbench.flower.config import checked

    monkeypatch.setattr(hardware, "cpu_has_bf16", lambda: False)
    cfg = ExperimentConfig()
    cfg.train.precision = "auto"
    client_app(cfg, ship_specs=False)  # resolves (and refuses) up front
    assert checked(cfg).cfg.train.precision == "32-true"  # what the app's fits train in
    assert cfg.train.precision == "auto"  # the config given is left as it was
