"""FedAdam's dtype and device promises, edge options and user-facing errors.

aggregation/fedopt.py promises: the pseudo-gradient is float64, moments are kept in at least
float32 (float64 models keep float64 moments), the arithmetic is float64 whatever the stored
dtypes, and every output lives on the device of the global state x. Devices are checked with
PyTorch's ``meta`` device (x on ``meta``, clients / gradient / server state on CPU), so no GPU is
needed: a tensor left behind on CPU either fails to mix with ``meta`` or comes back on CPU.
Every expected value below is a hand-worked number or the Adam formula written out in float64.
"""

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
from fedbench.errors import ConfigError
from fedbench.methods.base import ClientUpdate
from fedbench.methods.prompt_baselines.fedopt import FedOptPTAggregator, FedOptPTOptions

F64 = torch.float64

# model dtype -> moment dtype, by the docstring's rule "at least float32"
MOMENT_DTYPE = {
    torch.float64: torch.float64,
    torch.float32: torch.float32,
    torch.bfloat16: torch.float32,
    torch.float16: torch.float32,
}


# ----- dtypes -------------------------------------------------------------------------------------
def test_pseudo_gradient_keeps_a_client_difference_that_bfloat16_cannot_hold():
    # bf16 spacing at 1 is 2**-7; the weighted mean 1 + 2**-7 / 4 lies between two bf16 numbers
    x = {"p": torch.tensor([1.0], dtype=torch.bfloat16)}
    ys = [
        {"p": torch.tensor([1.0], dtype=torch.bfloat16)},
        {"p": torch.tensor([1.0078125], dtype=torch.bfloat16)},
    ]
    g = pseudo_gradient(x, ys, [3, 1])
    assert g["p"].dtype == F64
    assert g["p"].item() == -(2.0**-7) / 4


@pytest.mark.parametrize("dtype", list(MOMENT_DTYPE))
def test_init_state_moment_dtypes_and_initial_v_at_full_precision(dtype):
    x = {"a": torch.zeros(2, 3, dtype=dtype), "b": torch.zeros(4, dtype=dtype)}
    state = init_adam_state(x, FedAdamOptions(lr=0.1, initial_v=0.1))
    assert state["step"].dtype == torch.int64 and int(state["step"]) == 0
    for key, xv in x.items():
        m, v = state["exp_avg/" + key], state["exp_avg_sq/" + key]
        assert m.dtype == v.dtype == MOMENT_DTYPE[dtype]
        assert m.shape == v.shape == xv.shape
        assert torch.all(m == 0)
        # 0.1 rounded once to the moment dtype: float64 moments hold 0.1 itself, not float32's 0.1
        assert torch.all(v == torch.tensor(0.1, dtype=MOMENT_DTYPE[dtype]))
    if dtype == F64:
        assert state["exp_avg_sq/b"][0].item() == 0.1


def test_low_precision_gradient_is_used_in_float64():
    # a float32 gradient (e.g. from a float32 copy of the model) applied to a float64 model
    gen = torch.Generator().manual_seed(1)
    x = {"w": torch.randn(50, generator=gen, dtype=F64)}
    grad = {"w": torch.randn(50, generator=gen, dtype=torch.float32)}
    options = FedAdamOptions(lr=0.05, initial_v=1e-3)
    new_x, state = adam_update(x, grad, init_adam_state(x, options), options)
    g = grad["w"].to(F64)  # exact: every float32 is a float64
    m = 0.1 * g
    v = 0.99 * 1e-3 + 0.01 * g * g
    torch.testing.assert_close(state["exp_avg/w"], m, rtol=1e-14, atol=0)
    torch.testing.assert_close(state["exp_avg_sq/w"], v, rtol=1e-14, atol=0)
    torch.testing.assert_close(new_x["w"], x["w"] - 0.05 * m / (v.sqrt() + 1e-3), rtol=1e-14, atol=1e-16)


def test_float32_stored_moments_are_read_and_updated_in_float64():
    # a float64 model resumed from a state whose moments were saved in float32
    gen = torch.Generator().manual_seed(2)
    x = {"w": torch.randn(50, generator=gen, dtype=F64)}
    grad = {"w": torch.randn(50, generator=gen, dtype=F64)}
    m0 = torch.randn(50, generator=gen, dtype=torch.float32)
    v0 = torch.rand(50, generator=gen, dtype=torch.float32) + 0.5
    state = {"step": torch.tensor(4), "exp_avg/w": m0, "exp_avg_sq/w": v0}
    new_x, new_state = adam_update(x, grad, state, FedAdamOptions(lr=0.05))
    m = 0.9 * m0.to(F64) + 0.1 * grad["w"]
    v = 0.99 * v0.to(F64) + 0.01 * grad["w"] ** 2
    assert int(new_state["step"]) == 5
    assert new_state["exp_avg/w"].dtype == new_state["exp_avg_sq/w"].dtype == F64
    torch.testing.assert_close(new_state["exp_avg/w"], m, rtol=1e-14, atol=0)
    torch.testing.assert_close(new_state["exp_avg_sq/w"], v, rtol=1e-14, atol=0)
    torch.testing.assert_close(new_x["w"], x["w"] - 0.05 * m / (v.sqrt() + 1e-3), rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_low_precision_model_three_rounds_match_float64_arithmetic_rounded_only_when_stored(dtype):
    """Moments are float32 and x is in the model's dtype between rounds; within a round everything
    is float64, so the stored values are the float64 formula rounded once."""
    gen = torch.Generator().manual_seed(3)
    shape, sizes = (8, 16), [5.0, 1.0, 14.0]
    lr, b1, b2, eps = 0.02, 0.9, 0.98, 1e-6
    options = FedAdamOptions(lr=lr, betas=(b1, b2), eps=eps, bias_correction=True)
    x = {"p": torch.randn(shape, generator=gen).to(dtype)}
    ref_x, ref_m, ref_v = x["p"].to(F64), torch.zeros(shape, dtype=F64), torch.zeros(shape, dtype=F64)
    state = None
    for t in (1, 2, 3):
        clients = [
            {"p": (ref_x + 0.3 * torch.randn(shape, generator=gen, dtype=F64)).to(dtype)} for _ in sizes
        ]
        x, state = fedadam_step(x, clients, sizes, state, options)
        # sum_i (n_i / N) y_i in this order, so float64 rounding matches to the bit: only stores round
        mean = torch.zeros(shape, dtype=F64)
        for n, c in zip(sizes, clients, strict=True):
            mean += (n / sum(sizes)) * c["p"].to(F64)
        g = ref_x - mean
        m = b1 * ref_m + (1 - b1) * g
        v = b2 * ref_v + (1 - b2) * g * g
        step = (lr / (1 - b1**t)) * m / (v.sqrt() / math.sqrt(1 - b2**t) + eps)
        ref_x = (ref_x - step).to(dtype).to(F64)
        ref_m, ref_v = m.to(torch.float32).to(F64), v.to(torch.float32).to(F64)
        assert x["p"].dtype == dtype and int(state["step"]) == t
        assert state["exp_avg/p"].dtype == state["exp_avg_sq/p"].dtype == torch.float32
        torch.testing.assert_close(x["p"].to(F64), ref_x, rtol=0, atol=0)
        torch.testing.assert_close(state["exp_avg/p"].to(F64), ref_m, rtol=0, atol=0)
        torch.testing.assert_close(state["exp_avg_sq/p"].to(F64), ref_v, rtol=0, atol=0)


# ----- devices (meta stands in for an accelerator) ------------------------------------------------
def on_meta(t, dtype, shape):
    return t.device.type == "meta" and t.dtype == dtype and tuple(t.shape) == shape


def test_init_state_puts_moments_on_the_models_device():
    x = {"p": torch.empty(2, 3, device="meta", dtype=torch.bfloat16), "h": torch.empty(5, device="meta")}
    state = init_adam_state(x, FedAdamOptions(lr=0.1, initial_v=1e-6))
    for key, shape in (("p", (2, 3)), ("h", (5,))):
        assert on_meta(state["exp_avg/" + key], torch.float32, shape)
        assert on_meta(state["exp_avg_sq/" + key], torch.float32, shape)


def test_fedadam_step_with_cpu_clients_returns_everything_on_the_models_device():
    x = {"p": torch.empty(2, 3, device="meta", dtype=torch.bfloat16)}
    clients = [{"p": torch.randn(2, 3, dtype=torch.bfloat16)} for _ in range(3)]
    g = pseudo_gradient(x, clients, [1, 2, 3])
    assert on_meta(g["p"], F64, (2, 3))
    new_x, state = fedadam_step(x, clients, [1, 2, 3], None, FedAdamOptions(lr=0.1))
    assert on_meta(new_x["p"], torch.bfloat16, (2, 3))
    assert on_meta(state["exp_avg/p"], torch.float32, (2, 3))
    assert on_meta(state["exp_avg_sq/p"], torch.float32, (2, 3))


def test_adam_update_moves_a_cpu_gradient_and_cpu_state_to_the_models_device():
    # e.g. a server state loaded with map_location="cpu" while the model sits on an accelerator
    x = {"p": torch.empty(4, device="meta", dtype=torch.float16)}
    grad = {"p": torch.randn(4, dtype=torch.float32)}
    state = {"step": torch.tensor(2), "exp_avg/p": torch.randn(4), "exp_avg_sq/p": torch.rand(4)}
    new_x, new_state = adam_update(x, grad, state, FedAdamOptions(lr=0.1, bias_correction=True))
    assert on_meta(new_x["p"], torch.float16, (4,))
    assert on_meta(new_state["exp_avg/p"], torch.float32, (4,))
    assert on_meta(new_state["exp_avg_sq/p"], torch.float32, (4,))
    assert int(new_state["step"]) == 3


# ----- options and errors -------------------------------------------------------------------------
def test_zero_betas_are_allowed_and_give_a_normalised_gradient_step():
    # [0, 1) includes 0: with b1 = b2 = 0, m = g and sqrt(v) = |g|, so x <- x - lr g / (|g| + eps)
    options = FedAdamOptions(lr=0.5, betas=(0.0, 0.0))
    x = {"w": torch.tensor([1.0, -2.0], dtype=F64)}
    grad = {"w": torch.tensor([0.25, -4.0], dtype=F64)}
    new_x, _ = adam_update(x, grad, init_adam_state(x, options), options)
    expected = [1.0 - 0.5 * 0.25 / 0.251, -2.0 + 0.5 * 4.0 / 4.001]
    assert new_x["w"].tolist() == pytest.approx(expected, rel=1e-15)


def test_moment_with_the_wrong_shape_is_named_in_the_error():
    options = FedAdamOptions(lr=0.1)
    state = init_adam_state({"a": torch.zeros(2)}, options)
    state["exp_avg_sq/a"] = torch.zeros(3)
    with pytest.raises(ValueError) as err:
        adam_update({"a": torch.zeros(2)}, {"a": torch.zeros(2)}, state, options)
    assert str(err.value) == "adam_update: 'exp_avg_sq/a' has shape (3,), expected (2,)"


def test_fedopt_pt_invalid_adam_setting_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError) as err:
        FedOptPTOptions(server_lr=0.0).validate()
    assert str(err.value) == "method.options: FedAdamOptions: lr must be finite and > 0, got 0.0"


def test_fedopt_pt_metadata_is_empty_before_the_first_round_then_counts_steps():
    agg = FedOptPTAggregator(FedOptPTOptions(server_lr=0.1))
    assert agg.metadata() == {}
    x = {"p": torch.zeros(3, dtype=F64)}
    agg.aggregate(x, [ClientUpdate(0, {"p": torch.ones(3, dtype=F64)}, 4)], 0, seed=0)
    assert agg.metadata() == {"server_steps": 1}
