"""A wrong method option is refused before any training, with one line that names the field as the
user writes it (``method.options.<field>``) and what to write instead (fedbench/checks.py)."""

from __future__ import annotations

import pytest

from fedbench.errors import ConfigError
from fedbench.methods.registry import get_method
from fedbench.registry import build_options

CASES = [
    ("scaffold-pt", {"server_lr": 0.0}, "method.options.server_lr: must be > 0, got 0.0; try 1.0"),
    ("scaffold-pt", {"lr_scale": -1.0}, "method.options.lr_scale: must be > 0"),
    (
        "scaffold-pt",
        {"weighting": "median"},
        "method.options.weighting: 'median' is not valid; choose one of",
    ),
    ("scaffold-pt", {"step": 0.0}, "method.options.step: must be > 0"),
    ("scaffold-pt", {"n_clients": -2}, "method.options.n_clients: must be >= 0"),
    ("gmm-pt", {"covariance_type": "full-ish"}, "method.options.covariance_type: 'full-ish' is not valid"),
    ("gmm-pt", {"max_iter": 0}, "method.options.max_iter: must be >= 1"),
    ("fedopt-pt", {"client_start": "elsewhere"}, "method.options.client_start: 'elsewhere' is not valid"),
    ("ppt", {"matcher_cost": "cheap"}, "method.options.matcher_cost: 'cheap' is not valid"),
    ("ppt", {"outer_loops": 0}, "method.options.outer_loops: must be >= 1, got 0; try 50"),
    ("fedprime", {"outer_loops": 0}, "method.options.outer_loops: must be >= 1, got 0; try 5"),
    ("fedprime", {"centre_update": "median"}, "method.options.centre_update: 'median' is not valid"),
    ("fedprime", {"matcher_lr": -1.0}, "method.options.matcher_lr: must be > 0"),
]


@pytest.mark.parametrize("method, options, says", CASES, ids=[f"{m}-{next(iter(o))}" for m, o, _ in CASES])
def test_a_wrong_option_is_one_line_naming_the_field(method, options, says):
    spec = get_method(method)
    with pytest.raises(ConfigError) as err:
        build_options(spec.options, options, "method.options")
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_default_options_of_every_method_are_valid():
    from fedbench.methods.registry import METHODS

    for name in METHODS.names():
        build_options(METHODS.get(name).options, {}, "method.options")
