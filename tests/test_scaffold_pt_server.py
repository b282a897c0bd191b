"""SCAFFOLD-PT's server over two rounds against SCAFFOLD's equations written out with numpy
(Karimireddy et al. 2020, Alg. 1, lines 16-17; the client's own control c_i <- c_i + delta_i):

    x <- x + eta_g * mean_i (y_i - x)          (uniform, or weighted by samples)
    c <- c + (|S| / N) * mean_i delta_i        (uniform either way)

and the controls it hands each client (configure_fit), what it checkpoints and restores, and the
federation size it reads from the server context."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedbench.errors import ConfigError
from fedbench.methods.base import ClientUpdate, ServerContext
from fedbench.methods.prompt_baselines.scaffold import ScaffoldPTAggregator, ScaffoldPTOptions

N = 4


def _update(client: int, y: list[float], delta: list[float], n: int) -> ClientUpdate:
    return ClientUpdate(
        client,
        {"p": torch.tensor(y, dtype=torch.float64)},
        n,
        {"control_delta": {"p": torch.tensor(delta, dtype=torch.float64)}},
    )


def _round(agg, x, updates):
    return agg.aggregate({"p": torch.tensor(x, dtype=torch.float64)}, updates, 0, 0)["p"].numpy()


@pytest.mark.parametrize("weighting", ["uniform", "samples"])
def test_two_rounds_follow_scaffolds_equations(weighting):
    agg = ScaffoldPTAggregator(ScaffoldPTOptions(n_clients=N, server_lr=0.5, weighting=weighting))
    x = np.array([1.0, -2.0])
    fit = agg.configure_fit(0, [0, 2], {"p": torch.tensor(x)})
    assert all(np.all(fit[k][name]["p"].numpy() == 0) for k in (0, 2) for name in ("c", "c_i"))
    ys, deltas, ns = (
        [np.array([2.0, 0.0]), np.array([0.0, -4.0])],
        [np.array([0.3, 0.1]), np.array([-0.1, 0.5])],
        [10, 30],
    )
    new = _round(agg, x, [_update(0, ys[0], deltas[0], ns[0]), _update(2, ys[1], deltas[1], ns[1])])
    w = np.ones(2) / 2 if weighting == "uniform" else np.array(ns) / sum(ns)
    expected_x = x + 0.5 * sum(wi * (yi - x) for wi, yi in zip(w, ys, strict=True))
    expected_c = (2 / N) * (deltas[0] + deltas[1]) / 2
    assert np.allclose(new, expected_x, atol=1e-12)
    assert np.allclose(agg.c["p"].numpy(), expected_c, atol=1e-12)
    fit = agg.configure_fit(1, [0, 1, 2], {"p": torch.tensor(new)})  # round 2: c, and each client's own c_i
    assert np.allclose(fit[1]["c"]["p"].numpy(), expected_c)
    assert np.allclose(fit[0]["c_i"]["p"].numpy(), deltas[0]) and np.allclose(
        fit[2]["c_i"]["p"].numpy(), deltas[1]
    )
    assert np.all(fit[1]["c_i"]["p"].numpy() == 0)  # a client that never took part has c_i = 0
    second = np.array([0.2, 0.2])
    x2 = _round(agg, new, [_update(0, new + 1.0, second, ns[0])])
    assert np.allclose(x2, new + 0.5 * 1.0, atol=1e-12)  # one participant: its whole step
    assert np.allclose(agg.c["p"].numpy(), expected_c + (1 / N) * second, atol=1e-12)
    assert np.allclose(agg.ci[0]["p"].numpy(), deltas[0] + second, atol=1e-12)
    assert agg.metadata()["control_norm"] == pytest.approx(float(np.linalg.norm(expected_c + second / N)))


def test_checkpointed_controls_restore_exactly():
    agg = ScaffoldPTAggregator(ScaffoldPTOptions(n_clients=N))
    agg.aggregate({"p": torch.zeros(2, dtype=torch.float64)}, [_update(3, [1.0, 1.0], [0.4, -0.2], 5)], 0, 0)
    again = ScaffoldPTAggregator(ScaffoldPTOptions(n_clients=N))
    again.load_server_state(agg.server_state())
    assert (
        torch.equal(again.c["p"], agg.c["p"])
        and set(again.ci) == {3}
        and torch.equal(again.ci[3]["p"], agg.ci[3]["p"])
    )
    fresh = ScaffoldPTAggregator(ScaffoldPTOptions(n_clients=N))
    fresh.load_server_state({})  # nothing saved yet: nothing loaded
    assert fresh.c is None and fresh.server_state() == {} and fresh.metadata() == {}


def test_the_federation_size_comes_from_the_server_context_or_the_options():
    context = ServerContext(None, None, None, torch.device("cpu"), 0, n_clients=7)
    assert ScaffoldPTAggregator(ScaffoldPTOptions(), context).n_clients == 7
    assert ScaffoldPTAggregator(ScaffoldPTOptions(n_clients=3), context).n_clients == 3
    with pytest.raises(ConfigError, match="client count"):
        ScaffoldPTAggregator(ScaffoldPTOptions())
