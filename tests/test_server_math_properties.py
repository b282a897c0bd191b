"""The server maths under inputs hypothesis draws (shapes, client counts, weights, empty updates),
each against an independent computation: numpy's weighted average, torch.optim.Adam driven by the
pseudo-gradient, and SCAFFOLD's update written out from the paper's equations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedbench.aggregation.fedopt import FedAdamOptions, fedadam_step
from fedbench.aggregation.scaffold import scaffold_server_update
from fedbench.aggregation.weighted import weighted_mean

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)
QUICK = settings(max_examples=40, deadline=None)


@st.composite
def client_states(draw, min_clients=1):
    """A layout of 1-3 tensors and 1-5 client states over it (float32), plus one weight per client."""
    layout = {f"t{i}": draw(shapes) for i in range(draw(st.integers(1, 3)))}
    n = draw(st.integers(min_clients, 5))
    seed = draw(st.integers(0, 2**16))
    gen = torch.Generator().manual_seed(seed)
    states = [{k: torch.randn(s, generator=gen) for k, s in layout.items()} for _ in range(n)]
    weights = draw(
        st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=n, max_size=n).filter(
            lambda w: sum(w) > 1e-3
        )
    )
    return layout, states, weights


@QUICK
@given(client_states())
def test_weighted_mean_is_numpys_average(drawn):
    layout, states, weights = drawn
    got = weighted_mean(states, weights)
    assert set(got) == set(layout)
    for k in layout:
        ref = np.average(
            np.stack([s[k].double().numpy() for s in states]),
            axis=0,
            weights=np.asarray(weights, dtype=np.float64),
        )
        np.testing.assert_allclose(got[k].double().numpy(), ref, rtol=1e-5, atol=1e-6)
        assert got[k].dtype == states[0][k].dtype and got[k].shape == states[0][k].shape


def test_weighted_mean_refuses_empty_updates_and_zero_weights():
    with pytest.raises((ValueError, IndexError)):
        weighted_mean([], [])
    with pytest.raises(ValueError, match="sum to"):
        weighted_mean([{"a": torch.zeros(2)}], [0.0])


@QUICK
@given(client_states(), st.integers(1, 4), st.floats(1e-4, 1e-1))
def test_fedadam_is_torch_adam_on_the_pseudo_gradient(drawn, rounds, lr):
    """With bias correction, fedbench's server step equals torch.optim.Adam stepping x along
    g = x - mean(y_i), round after round (eps outside the bias-corrected root, as torch)."""
    layout, states, weights = drawn
    options = FedAdamOptions(lr=lr, betas=(0.9, 0.98), eps=1e-6, bias_correction=True)
    x = {k: torch.zeros(s, dtype=torch.float64) for k, s in layout.items()}
    params = {k: torch.nn.Parameter(v.clone()) for k, v in x.items()}
    adam = torch.optim.Adam(params.values(), lr=lr, betas=(0.9, 0.98), eps=1e-6)
    state = None
    w = np.asarray(weights, dtype=np.float64) / sum(weights)
    for r in range(rounds):
        shifted = [{k: v.double() + r for k, v in s.items()} for s in states]  # clients move each round
        x, state = fedadam_step(x, shifted, weights, state, options)
        for k, p in params.items():
            mean = sum(wi * s[k] for wi, s in zip(w, shifted, strict=True))
            p.grad = p.detach() - mean
        adam.step()
        for k in layout:
            torch.testing.assert_close(x[k], params[k].detach(), rtol=1e-9, atol=1e-10)


@QUICK
@given(client_states(), st.integers(0, 5), st.floats(0.1, 2.0))
def test_scaffold_server_update_is_the_papers_equations(drawn, extra_clients, server_lr):
    """x <- x + lr_g * mean_i(y_i - x) (uniform); c <- c + |S|/N * mean_i(dc_i) (Karimireddy et al.,
    eq. 5), written out in float64 with numpy."""
    layout, states, _ = drawn
    gen = torch.Generator().manual_seed(3)
    x = {k: torch.randn(s, generator=gen) for k, s in layout.items()}
    c = {k: torch.randn(s, generator=gen) for k, s in layout.items()}
    deltas = [{k: torch.randn(s, generator=gen) for k, s in layout.items()} for _ in states]
    n_all = len(states) + extra_clients
    new_x, new_c = scaffold_server_update(x, c, states, deltas, n_all, server_lr=server_lr)
    for k in layout:
        xs = x[k].double().numpy()
        ref_x = xs + server_lr * np.mean([s[k].double().numpy() - xs for s in states], axis=0)
        ref_c = c[k].double().numpy() + len(states) / n_all * np.mean(
            [d[k].double().numpy() for d in deltas], axis=0
        )
        np.testing.assert_allclose(new_x[k].double().numpy(), ref_x, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(new_c[k].double().numpy(), ref_c, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no participating"):
        scaffold_server_update(x, c, [], [], n_all)
