"""FedAdam: torch.optim.Adam applied by hand, the paper's uncorrected step by hand, checkpoint round-trip."""

import io
import math

import pytest
import torch

from fedbench.aggregation.fedopt import (
    FedAdamOptions,
    adam_update,
    fedadam_step,
    init_adam_state,
    pseudo_gradient,
)


def rounds_of_clients(n_rounds=3, seed=0):
    """Per round: three client states (a [2, 3] prompt and a [3] bias) and unequal sample counts."""
    gen = torch.Generator().manual_seed(seed)
    return [
        (
            [
                {
                    "prompt": torch.randn(2, 3, generator=gen, dtype=torch.float64),
                    "bias": torch.randn(3, generator=gen, dtype=torch.float64),
                }
                for _ in range(3)
            ],
            [5.0, 1.0, 14.0],
        )
        for _ in range(n_rounds)
    ]


def start():
    return {
        "prompt": torch.full((2, 3), 0.5, dtype=torch.float64),
        "bias": torch.zeros(3, dtype=torch.float64),
    }


def test_bias_corrected_matches_torch_adam_over_three_rounds():
    options = FedAdamOptions(lr=0.03, betas=(0.9, 0.98), eps=1e-6, bias_correction=True)
    params = {k: torch.nn.Parameter(v.clone()) for k, v in start().items()}
    reference = torch.optim.Adam(params.values(), lr=0.03, betas=(0.9, 0.98), eps=1e-6)
    x, state = start(), None
    for clients, sizes in rounds_of_clients():
        # independent pseudo-gradient: x - sum_i n_i y_i / sum_i n_i, written out
        total = sum(sizes)
        for key, p in params.items():
            mean = sum(n * c[key] for n, c in zip(sizes, clients, strict=True)) / total
            p.grad = p.detach() - mean
        reference.step()
        x, state = fedadam_step(x, clients, sizes, state, options)
        for key, p in params.items():
            torch.testing.assert_close(x[key], p.detach(), rtol=1e-12, atol=1e-12)
            ref_state = reference.state[p]
            torch.testing.assert_close(state["exp_avg/" + key], ref_state["exp_avg"], rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(
                state["exp_avg_sq/" + key], ref_state["exp_avg_sq"], rtol=1e-12, atol=1e-14
            )
    assert int(state["step"]) == 3


def test_paper_step_without_bias_correction_by_hand():
    # Defaults: betas (0.9, 0.99), eps (tau) 1e-3, no bias correction. One scalar, lr 0.1.
    options = FedAdamOptions(lr=0.1)
    x = {"w": torch.tensor([1.0], dtype=torch.float64)}
    state = None
    expected_x, m, v = 1.0, 0.0, 0.0
    for y in (0.5, 0.7, 1.2):  # one client per round, so the mean is y itself
        delta = y - expected_x  # the paper's Delta = mean(y) - x
        m = 0.9 * m + 0.1 * delta
        v = 0.99 * v + 0.01 * delta**2
        expected_x = expected_x + 0.1 * m / (math.sqrt(v) + 1e-3)
        x, state = fedadam_step(x, [{"w": torch.tensor([y], dtype=torch.float64)}], [1], state, options)
        assert x["w"].item() == pytest.approx(expected_x, rel=1e-14)
    # round 1 by hand: delta -0.5, m -0.05, v 0.0025, x = 1 - 0.1 * 0.05 / 0.051
    first = fedadam_step(
        {"w": torch.tensor([1.0], dtype=torch.float64)},
        [{"w": torch.tensor([0.5], dtype=torch.float64)}],
        [1],
        None,
        options,
    )[0]
    assert first["w"].item() == pytest.approx(1 - 0.1 * 0.05 / 0.051, rel=1e-14)


def test_initial_v_is_the_papers_v_minus_one():
    options = FedAdamOptions(lr=0.1, initial_v=1e-6)  # v_{-1} = tau^2
    x = {"w": torch.tensor([1.0], dtype=torch.float64)}
    new_x, state = adam_update(
        x, {"w": torch.tensor([2.0], dtype=torch.float64)}, init_adam_state(x, options), options
    )
    v = 0.99 * 1e-6 + 0.01 * 4.0
    assert state["exp_avg_sq/w"].item() == pytest.approx(v, rel=1e-14)
    assert new_x["w"].item() == pytest.approx(1.0 - 0.1 * 0.2 / (math.sqrt(v) + 1e-3), rel=1e-14)


def test_checkpoint_round_trip_continues_identically():
    options = FedAdamOptions(lr=0.01)
    rounds = rounds_of_clients(3, seed=4)
    x, state = start(), None
    for clients, sizes in rounds:
        x, state = fedadam_step(x, clients, sizes, state, options)

    x2, state2 = start(), None
    for clients, sizes in rounds[:2]:
        x2, state2 = fedadam_step(x2, clients, sizes, state2, options)
    buffer = io.BytesIO()
    torch.save({"x": x2, "server": state2}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    x2, state2 = fedadam_step(loaded["x"], *rounds[2], loaded["server"], options)
    for key in x:
        assert torch.equal(x[key], x2[key])
    assert state.keys() == state2.keys() and all(torch.equal(state[k], state2[k]) for k in state)


def test_pseudo_gradient_and_dtypes():
    x = {"p": torch.tensor([1.0, 2.0], dtype=torch.bfloat16)}
    ys = [
        {"p": torch.tensor([0.0, 2.0], dtype=torch.bfloat16)},
        {"p": torch.tensor([3.0, 6.0], dtype=torch.bfloat16)},
    ]
    g = pseudo_gradient(x, ys, [3, 1])  # mean = [0.75, 3.0]
    assert g["p"].dtype == torch.float64 and g["p"].tolist() == [0.25, -1.0]
    new_x, state = fedadam_step(x, ys, [3, 1], None, FedAdamOptions(lr=0.5))
    assert new_x["p"].dtype == torch.bfloat16 and state["exp_avg/p"].dtype == torch.float32
    # first step without correction: m = 0.1 g, sqrt(v) = 0.1 |g| -> step = 0.5 * 0.1 g / (0.1 |g| + 1e-3)
    expected = [1.0 - 0.5 * 0.025 / 0.026, 2.0 + 0.5 * 0.1 / 0.101]
    assert new_x["p"].tolist() == torch.tensor(expected).to(torch.bfloat16).tolist()


def test_pfpt_preset():
    o = FedAdamOptions.pfpt_official()
    assert (o.lr, o.betas, o.eps, o.bias_correction, o.initial_v) == (5e-5, (0.9, 0.98), 1e-6, True, 0.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: FedAdamOptions(lr=0.0), "lr"),
        (lambda: FedAdamOptions(lr=0.1, betas=(0.9, 1.0)), "betas"),
        (lambda: FedAdamOptions(lr=0.1, eps=0.0), "eps"),
        (lambda: FedAdamOptions(lr=0.1, initial_v=-1.0), "initial_v"),
        (lambda: pseudo_gradient({"a": torch.zeros(2)}, [{"b": torch.zeros(2)}], [1]), "keys"),
        (lambda: pseudo_gradient({"a": torch.zeros(2)}, [{"a": torch.zeros(3)}], [1]), "shape"),
        (
            lambda: adam_update(
                {"a": torch.zeros(2)},
                {"a": torch.zeros(2)},
                {"step": torch.tensor(0)},
                FedAdamOptions(lr=0.1),
            ),
            "missing",
        ),
        (
            lambda: adam_update(
                {"a": torch.zeros(2)},
                {"b": torch.zeros(2)},
                init_adam_state({"a": torch.zeros(2)}, FedAdamOptions(lr=0.1)),
                FedAdamOptions(lr=0.1),
            ),
            "gradient has keys",
        ),
    ],
)
def test_invalid_input_raises_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
