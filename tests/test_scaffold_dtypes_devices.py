"""SCAFFOLD's promises about dtypes, devices and refusals, each checked against numbers worked out here.

- Accumulation is in float64 and cast back once (module docstring of fedbench.aggregation.scaffold): a
  float16 sum that would overflow to inf must still give the float64 answer.
- Every input is moved to the device of the tensor it updates (x, c, the gradient): with the global
  state on PyTorch's ``meta`` device and client results on the CPU, the outputs live on ``meta``.
- Wrong arguments and options are refused with the exact line the source writes.
- SCAFFOLD-PT's server keeps float32 client controls, restores any parameter name from a checkpoint,
  and accepts a federation of one client.
"""

from __future__ import annotations

import pytest
import torch

from fedbench.aggregation.scaffold import (
    client_control_update,
    corrected_grads,
    scaffold_server_update,
    zero_controls,
)
from fedbench.errors import ConfigError
from fedbench.methods.base import ClientUpdate, ServerContext
from fedbench.methods.prompt_baselines.scaffold import ScaffoldPTAggregator, ScaffoldPTOptions
from fedbench.registry import build_options

F16, BF16, F32, F64 = torch.float16, torch.bfloat16, torch.float32, torch.float64
META = torch.device("meta")


def t(values, dtype=F64, device=None):
    return torch.tensor(values, dtype=dtype, device=device)


def meta(shape, dtype):
    return torch.empty(shape, dtype=dtype, device=META)


# ----- float64 accumulation, one cast back --------------------------------------------------------
def test_float16_server_step_matches_float64_where_float16_arithmetic_would_overflow():
    # x = -60000, y_1 = 60000, y_2 = -60000 (all exact in float16, whose largest value is 65504).
    # y_1 - x = 120000 is inf in float16; in float64: mean(y_i - x) = (120000 + 0) / 2 = 60000,
    # x + 0.5 * 60000 = -30000 (exact in float16). Control, bf16: c + (2 / 4) * mean(delta_i)
    # = 1 + 0.5 * (0.5 + 1.5) / 2 = 1.5 (exact in bf16).
    x = {"w": t([-60000.0], F16)}
    ys = [{"w": t([60000.0], F16)}, {"w": t([-60000.0], F16)}]
    c = {"w": t([1.0], BF16)}
    deltas = [{"w": t([0.5])}, {"w": t([1.5])}]
    new_x, new_c = scaffold_server_update(x, c, ys, deltas, n_clients=4, server_lr=0.5)
    assert new_x["w"].dtype == F16 and new_x["w"].item() == -30000.0
    assert new_c["w"].dtype == BF16 and new_c["w"].item() == 1.5


def test_float16_corrected_gradient_is_computed_in_float64_and_keeps_the_gradient_dtype():
    # g + c - c_i = 64992 + 1000 - 1000 = 64992; in float16, g + c = 65992 would already be inf.
    g = {"w": t([64992.0], F16)}
    out = corrected_grads(g, {"w": t([1000.0], F32)}, {"w": t([1000.0], F32)})
    assert out["w"].dtype == F16 and out["w"].item() == 64992.0


def test_control_update_from_float16_states_keeps_the_controls_float32():
    # c_i+ = c_i - c + (x - y) / (K lr) = 0.5 - 0.25 + (-60000 - 60000) / (4 * 1000) = -29.75
    new_ci = client_control_update(
        {"w": t([0.5], F32)},
        {"w": t([0.25], F32)},
        {"w": t([-60000.0], F16)},
        {"w": t([60000.0], F16)},
        4,
        1000,
    )
    assert new_ci["w"].dtype == F32 and new_ci["w"].item() == -29.75


def test_zero_controls_take_the_requested_dtype_and_the_states_device():
    cpu = zero_controls({"w": t([1.0, 2.0], BF16)}, F64)
    assert cpu["w"].dtype == F64 and cpu["w"].tolist() == [0.0, 0.0]
    on_meta = zero_controls({"w": meta((2, 3), BF16)}, F64)
    assert on_meta["w"].device.type == "meta" and on_meta["w"].dtype == F64 and on_meta["w"].shape == (2, 3)


# ----- devices: inputs follow the tensor they update -----------------------------------------------
def test_server_update_moves_cpu_client_results_to_the_meta_global_state():
    x = {"w": meta((2, 3), BF16), "b": meta((3,), F32)}
    c = {"w": meta((2, 3), F32), "b": meta((3,), F32)}
    ys = [{"w": torch.ones(2, 3, dtype=F16), "b": torch.ones(3)} for _ in range(2)]
    deltas = [{"w": torch.ones(2, 3, dtype=F64), "b": torch.ones(3, dtype=F64)} for _ in range(2)]
    new_x, new_c = scaffold_server_update(x, c, ys, deltas, n_clients=3, weights=[1, 3])
    for out, dtypes in ((new_x, {"w": BF16, "b": F32}), (new_c, {"w": F32, "b": F32})):
        for key, dtype in dtypes.items():
            assert out[key].device.type == "meta" and out[key].dtype == dtype
            assert out[key].shape == x[key].shape


def test_corrected_grads_moves_cpu_controls_to_a_meta_gradient():
    out = corrected_grads({"w": meta((4,), F16)}, {"w": torch.ones(4)}, {"w": torch.zeros(4, dtype=F64)})
    assert out["w"].device.type == "meta" and out["w"].dtype == F16 and out["w"].shape == (4,)


# ----- refusals with their exact text, and the values just inside the limits ----------------------
X = {"w": t([1.0, 2.0])}
C = {"w": t([0.0, 0.0])}


def refusal(call) -> str:
    with pytest.raises(ValueError) as err:
        call()
    return str(err.value)


def test_server_update_refusals_name_the_function_and_the_bad_argument():
    assert refusal(lambda: scaffold_server_update(X, C, [], [], 3)) == (
        "scaffold_server_update: no participating clients"
    )
    assert refusal(lambda: scaffold_server_update(X, {"v": t([0.0, 0.0])}, [X], [C], 3)) == (
        "scaffold_server_update: server_control has keys ['v'] but expected ['w']"
    )
    assert refusal(lambda: scaffold_server_update(X, C, [X, {"v": t([1.0, 1.0])}], [C, C], 3)) == (
        "scaffold_server_update: client_states[1] has keys ['v'] but expected ['w']"
    )


@pytest.mark.parametrize("n_clients", [True, 2.5])
def test_n_clients_must_be_a_true_integer(n_clients):
    # True == 1 and 2.5 >= 1 participant, yet neither is a client count.
    assert refusal(lambda: scaffold_server_update(X, C, [X], [C], n_clients)) == (
        f"scaffold_server_update: n_clients must be an integer >= the 1 participants, got {n_clients!r}"
    )


@pytest.mark.parametrize("weights", [[float("inf"), 1.0], [float("nan"), 1.0], [-1.0, 3.0], [0.0, 0.0]])
def test_weights_must_be_finite_non_negative_and_not_all_zero(weights):
    ys = [X, {"w": t([3.0, 4.0])}]
    assert refusal(lambda: scaffold_server_update(X, C, ys, [C, C], 3, weights=weights)) == (
        f"scaffold_server_update: weights must be finite, >= 0 and not all 0, got {weights}"
    )


def test_a_zero_weight_and_fractional_weights_summing_below_one_are_accepted():
    # weights [0, 0.25] -> coefficients [0, 1]: x + (y_2 - x) = y_2 exactly; c + (2/2) * mean(delta)
    ys = [{"w": t([-5.0, 7.0])}, {"w": t([3.0, 4.0])}]
    deltas = [{"w": t([1.0, 0.0])}, {"w": t([0.0, 3.0])}]
    new_x, new_c = scaffold_server_update(X, C, ys, deltas, 2, weights=[0.0, 0.25])
    assert new_x["w"].tolist() == [3.0, 4.0] and new_c["w"].tolist() == [0.5, 1.5]


def test_corrected_grads_refuses_a_client_control_of_the_wrong_shape():
    # c_i of shape (1,) would broadcast silently against g of shape (2,)
    assert refusal(lambda: corrected_grads({"w": t([1.0, 2.0])}, C, {"w": t([1.0])})) == (
        "corrected_grads: 'w' has gradient shape (2,) but controls (2,) and (1,)"
    )


@pytest.mark.parametrize(
    "options, says",
    [
        ({"lr_scale": -1.0}, "method.options.lr_scale: must be > 0, got -1.0; try 20.0"),
        ({"lr_scale": 0.0}, "method.options.lr_scale: must be > 0, got 0.0; try 20.0"),
        (
            {"step": 0.0},
            "method.options.step: must be > 0, got 0.0; try 1e-3, or null (lr_scale x the round's lr)",
        ),
        ({"n_clients": -1}, "method.options.n_clients: must be >= 0, got -1; try 0 (the federation's count)"),
    ],
)
def test_scaffold_pt_options_refusals_say_what_to_write(options, says):
    with pytest.raises(ConfigError) as err:
        build_options(ScaffoldPTOptions, options, "method.options")
    assert str(err.value) == says


def test_scaffold_pt_options_at_their_limits_are_accepted():
    opts = build_options(
        ScaffoldPTOptions, {"n_clients": 0, "step": None, "lr_scale": 1e-9}, "method.options"
    )
    assert (opts.n_clients, opts.step, opts.lr_scale) == (0, None, 1e-9)


# ----- SCAFFOLD-PT's server -----------------------------------------------------------------------
def test_aggregator_keeps_its_server_context():
    context = ServerContext(None, None, None, torch.device("cpu"), 0, n_clients=6)
    agg = ScaffoldPTAggregator(ScaffoldPTOptions(), context)
    assert agg.context is context and agg.n_clients == 6


def test_aggregator_without_a_client_count_says_where_to_set_it():
    with pytest.raises(ConfigError) as err:
        ScaffoldPTAggregator(ScaffoldPTOptions(), None)
    assert str(err.value) == (
        "scaffold-pt needs the federation's client count: a server context with n_clients "
        "(fedbench.methods.base.ServerContext) or method.options.n_clients"
    )


def test_a_federation_of_one_client_takes_its_whole_step_and_control():
    # N = 1, S = {0}: x <- x + 1 * (y - x) = y; c <- 0 + (1/1) * delta = delta
    agg = ScaffoldPTAggregator(ScaffoldPTOptions(n_clients=1))
    update = ClientUpdate(0, {"p": t([3.0, 0.0])}, 5, {"control_delta": {"p": t([0.5, -0.25])}})
    new_x = agg.aggregate({"p": t([1.0, -2.0])}, [update], 0, 0)
    assert agg.n_clients == 1 and new_x["p"].tolist() == [3.0, 0.0]
    assert agg.c["p"].tolist() == [0.5, -0.25] and agg.ci[0]["p"].tolist() == [0.5, -0.25]


def test_stored_client_controls_stay_float32_when_deltas_arrive_in_float64():
    # controls default to float32 (zero_controls); c_i = 0 + float32(0.1) after one round
    agg = ScaffoldPTAggregator(ScaffoldPTOptions(n_clients=2))
    update = ClientUpdate(1, {"p": t([0.0])}, 1, {"control_delta": {"p": t([0.1])}})
    agg.aggregate({"p": t([0.0])}, [update], 0, 0)
    assert agg.ci[1]["p"].dtype == F32 and agg.ci[1]["p"].item() == t([0.1], F32).item()
    assert agg.configure_fit(1, [1], {"p": t([0.0])})[1]["c_i"]["p"].dtype == F32


def test_checkpoint_round_trip_keeps_parameter_names_that_contain_slashes():
    agg = ScaffoldPTAggregator(ScaffoldPTOptions(n_clients=4))
    update = ClientUpdate(
        3, {"blocks/0/prompt": t([2.0])}, 1, {"control_delta": {"blocks/0/prompt": t([0.5])}}
    )
    agg.aggregate({"blocks/0/prompt": t([0.0])}, [update], 0, 0)
    again = ScaffoldPTAggregator(ScaffoldPTOptions(n_clients=4))
    again.load_server_state(agg.server_state())
    # c = (1/4) * 0.5 = 0.125; client 3's c_i = 0.5
    assert {k: v.tolist() for k, v in again.c.items()} == {"blocks/0/prompt": [0.125]}
    assert {k: {n: v.tolist() for n, v in ci.items()} for k, ci in again.ci.items()} == {
        3: {"blocks/0/prompt": [0.5]}
    }
