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
    # MAP's prompts (fedavg, fedprox, fedmsplit, local, centralized, cyclic)
    ("fedavg", {"prompt_length": 0}, "method.options.prompt_length: must be >= 1, got 0; try 4"),
    ("fedavg", {"prompt_layers": -1}, "method.options.prompt_layers: must be >= 0, got -1; try 3"),
    ("fedprox", {"mu": -0.1}, "method.options.mu: must be >= 0, got -0.1; try 0.01"),
    ("fedmsplit", {"prox_lambda": -1.0}, "method.options.prox_lambda: must be >= 0, got -1.0; try 0.01"),
    # PPT's VPT baselines and pFedPG
    ("fedavg-pt", {"n_tokens": -1}, "method.options.n_tokens: must be >= 0, got -1; try 10"),
    ("gmm-pt", {"n_tokens": 0}, "method.options.n_tokens: must be >= 1, got 0; try 10"),
    ("fedavg-pt", {"adaptor_width": 0}, "method.options.adaptor_width: must be >= 1, got 0; try 512"),
    (
        "fedavg-pt",
        {"adaptor_dropout": 1.0},
        "method.options.adaptor_dropout: 1.0 is outside [0.0, 1.0); try 0.5",
    ),
    ("fedprox-pt", {"mu": -1.0}, "method.options.mu: must be >= 0, got -1.0; try 1e-3"),
    ("fedprox-pt", {"prox_from_round": 0}, "method.options.prox_from_round: must be >= 1, got 0; try 2"),
    ("pfedpg", {"key_dim": 0}, "method.options.key_dim: must be >= 1, got 0; try 512"),
    ("pfedpg", {"adaptor_dropout": -0.1}, "method.options.adaptor_dropout: -0.1 is outside [0.0, 1.0)"),
    ("pfedpg", {"prompt_lr": 0.0}, "method.options.prompt_lr: must be > 0, got 0.0; try 1e-3"),
    (
        "pfedpg",
        {"generator_update": "sum"},
        "method.options.generator_update: 'sum' is not valid; choose one of per_client, mean",
    ),
    # PPT
    ("ppt", {"kappa": 0}, "method.options.kappa: must be >= 1, got 0; try 10"),
    ("ppt", {"pool_size": 5}, "method.options.pool_size: must be >= kappa (10), got 5; try 20"),
    ("ppt", {"lambda_r": -0.5}, "method.options.lambda_r: must be >= 0, got -0.5; try 0.01"),
    ("ppt", {"new_centre": "free"}, "method.options.new_centre: 'free' is not valid; choose one of"),
    ("ppt", {"adaptor_dropout": 1.0}, "method.options.adaptor_dropout: 1.0 is outside [0.0, 1.0); try 0.5"),
    (
        "ppt",
        {"eval_vote_batch": 0},
        "method.options.eval_vote_batch: must be >= 1 or null (the whole batch), got 0; try 16",
    ),
    ("ppt", {"new_centre_cost": -1.0}, "method.options.new_centre_cost: must be >= 0, got -1.0; try 2.0"),
    ("ppt-official", {"selection": "vote"}, "method.options.selection: 'vote' is not valid"),
    # FedPrime
    ("fedprime", {"kappa": 0}, "method.options.kappa: must be >= 1, got 0; try 5"),
    ("fedprime", {"pool_size": 4}, "method.options.pool_size: must be >= kappa (5), got 4; try 20"),
    ("fedprime", {"lambda_r": -1.0}, "method.options.lambda_r: must be >= 0, got -1.0; try 0.01"),
    ("fedprime", {"query_update": "fast"}, "method.options.query_update: 'fast' is not valid; choose one of"),
    (
        "fedprime",
        {"batch_size": 0},
        "method.options.batch_size: must be >= 1 or null (train.batch_size), got 0; try null",
    ),
    ("fedprime", {"batch_size_both": "64"}, "method.options.batch_size_both: must be a number or null"),
    ("fedprime", {"query_lr": -0.05}, "method.options.query_lr: must be >= 0, got -0.05; try 0.05"),
    ("fedprime", {"lr": 0.0}, "method.options.lr: must be > 0, got 0.0; try null"),
    (
        "fedprime",
        {"new_cluster_cost": "big"},
        "method.options.new_cluster_cost: must be 'auto', a number >= 0 or null, got 'big'; try auto",
    ),
    (
        "fedprime-official",
        {"new_cluster_cost": -1.0},
        "method.options.new_cluster_cost: must be >= 0, got -1.0; try auto",
    ),
    # FedMVP
    ("fedmvp", {"latent_dim": 0}, "method.options.latent_dim: must be >= 1, got 0; try 512"),
    (
        "fedmvp",
        {"embed_dim": 30},
        "method.options.embed_dim: 30 is not divisible by 4 attention heads; try changing it or "
        "method.options.num_heads",
    ),
    (
        "fedmvp",
        {"fusion": "tokens", "latent_dim": 256},
        "method.options.fusion: 'tokens' needs latent_dim == 2 * embed_dim, got 256 and 256; "
        "try latent_dim 512 or fusion sequence",
    ),
    ("fedmvp", {"dropout": 1.0}, "method.options.dropout: 1.0 is outside [0.0, 1.0); try 0.1"),
    (
        "fedmvp",
        {"local_epochs": 0},
        "method.options.local_epochs: must be >= 1 or null (federation.local_epochs), got 0; try 10",
    ),
    ("fedmvp", {"tau": 0.0}, "method.options.tau: must be > 0, got 0.0; try 0.1"),
    ("fedmvp", {"beta": -1.0}, "method.options.beta: must be >= 0, got -1.0; try 0.5"),
    ("fedmvp", {"completer": "dalle"}, "method.options.completer: 'dalle' is not valid; choose one of"),
    ("fedmvp", {"patch_size": 0}, "method.options.patch_size: must be >= 1, got 0; try 16"),
    (
        "fedmvp",
        {"pixel_size": 100},
        "method.options.pixel_size: 100 is not a positive multiple of patch_size=16; try 224 and 16",
    ),
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
