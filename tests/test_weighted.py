"""FedAvg weighted mean and payload size, checked against hand-worked numbers."""

import numpy as np
import pytest
import torch

from fedbench.aggregation import state_bytes, weighted_mean


def test_three_clients_unequal_sample_counts_by_hand():
    # Sample counts 1, 2, 5 -> weights 1/8, 2/8, 5/8.
    states = [
        {"prompt": torch.tensor([1.0, 2.0]), "head": torch.tensor([[0.0, 8.0]])},
        {"prompt": torch.tensor([3.0, 0.0]), "head": torch.tensor([[4.0, 0.0]])},
        {"prompt": torch.tensor([-1.0, 4.0]), "head": torch.tensor([[8.0, 8.0]])},
    ]
    out = weighted_mean(states, [1, 2, 5])
    # prompt: (1*[1,2] + 2*[3,0] + 5*[-1,4]) / 8 = [2, 22] / 8
    torch.testing.assert_close(out["prompt"], torch.tensor([0.25, 2.75]))
    # head: (1*[0,8] + 2*[4,0] + 5*[8,8]) / 8 = [48, 48] / 8
    torch.testing.assert_close(out["head"], torch.tensor([[6.0, 6.0]]))
    assert set(out) == {"prompt", "head"}


def test_two_clients_weights_need_not_be_normalised():
    a = {"w": torch.tensor([10.0])}
    b = {"w": torch.tensor([20.0])}
    # 30 and 10 samples: (30*10 + 10*20) / 40 = 12.5
    torch.testing.assert_close(weighted_mean([a, b], [30, 10])["w"], torch.tensor([12.5]))
    torch.testing.assert_close(weighted_mean([a, b], [0.75, 0.25])["w"], torch.tensor([12.5]))


def test_zero_weight_client_is_ignored():
    a = {"w": torch.tensor([1.0, 1.0])}
    b = {"w": torch.tensor([100.0, -100.0])}
    torch.testing.assert_close(weighted_mean([a, b], [3, 0])["w"], torch.tensor([1.0, 1.0]))


def test_equal_weights_match_arithmetic_mean():
    gen = torch.Generator().manual_seed(0)
    states = [{"p": torch.randn(4, 5, generator=gen, dtype=torch.float64)} for _ in range(7)]
    expected = np.mean([s["p"].numpy() for s in states], axis=0)
    np.testing.assert_allclose(weighted_mean(states, [2.0] * 7)["p"].numpy(), expected, rtol=1e-12)


def test_low_precision_is_accumulated_in_float64_and_cast_back():
    # In bf16, 1 + 2^-9 is not representable, but the mean of many clients is computed in float64.
    vals = [1.0, 1.0 + 2**-7, 1.0 + 2 * 2**-7, 1.0 + 3 * 2**-7]  # representable bf16 values
    states = [{"p": torch.tensor([v], dtype=torch.bfloat16)} for v in vals]
    out = weighted_mean(states, [1, 1, 1, 1])["p"]
    assert out.dtype == torch.bfloat16
    exact = np.mean(vals)  # 1 + 1.5 * 2^-7
    assert out.item() == torch.tensor([exact], dtype=torch.float64).to(torch.bfloat16).item()


def test_integer_tensors_are_rounded():
    states = [{"steps": torch.tensor(3)}, {"steps": torch.tensor(6)}]
    out = weighted_mean(states, [1, 2])["steps"]  # (3 + 12) / 3 = 5
    assert out.dtype == torch.int64 and out.item() == 5


@pytest.mark.parametrize(
    "states, weights, message",
    [
        ([], [], "no client states"),
        ([{"a": torch.zeros(2)}], [1, 2], "1 states but 2 weights"),
        ([{"a": torch.zeros(2)}, {"b": torch.zeros(2)}], [1, 1], "different keys"),
        ([{"a": torch.zeros(2)}, {"a": torch.zeros(3)}], [1, 1], "shape"),
        ([{"a": torch.zeros(2)}, {"a": torch.zeros(2, dtype=torch.float64)}], [1, 1], "float64"),
        ([{"a": torch.zeros(2)}, {"a": torch.zeros(2)}], [0, 0], "positive total"),
        ([{"a": torch.zeros(2)}, {"a": torch.zeros(2)}], [2, -1], ">= 0"),
        ([{"a": torch.zeros(2)}], [float("nan")], "finite"),
        ([{"a": torch.zeros(2, dtype=torch.bool)}], [1], "cannot average"),
    ],
)
def test_invalid_input_raises_clear_error(states, weights, message):
    with pytest.raises(ValueError, match=message):
        weighted_mean(states, weights)


def test_state_bytes_by_hand():
    state = {
        "a": torch.zeros(3, 4),  # 12 * 4 bytes
        "b": torch.zeros(10, dtype=torch.bfloat16),  # 10 * 2
        "c": torch.zeros(2, dtype=torch.int64),  # 2 * 8
    }
    assert state_bytes(state) == 48 + 20 + 16
    assert state_bytes({}) == 0


def test_no_states_is_refused_word_for_word():
    with pytest.raises(ValueError) as err:
        weighted_mean([], [])
    assert str(err.value) == "weighted_mean: no client states to average"


def _ab(b):
    return {"a": torch.zeros(2), "b": b}


@pytest.mark.parametrize(
    ("third", "message"),
    [
        # keys {a, b} in states 0 and 1; state 2 lacks b and adds c, d (both listed sorted)
        (
            {"a": torch.zeros(2), "d": torch.zeros(2), "c": torch.zeros(2)},
            "weighted_mean: state 2 has different keys from state 0 (missing ['b'], extra ['c', 'd'])",
        ),
        (
            {"a": torch.zeros(2)},
            "weighted_mean: state 2 has different keys from state 0 (missing ['b'], extra [])",
        ),
        (
            {**_ab(torch.zeros(2)), "e": torch.zeros(2)},
            "weighted_mean: state 2 has different keys from state 0 (missing [], extra ['e'])",
        ),
        (_ab(torch.zeros(3, 1)), "weighted_mean: 'b' has shape (3, 1) in state 2 but (2,) in state 0"),
        (
            _ab(torch.zeros(2, dtype=torch.float64)),
            "weighted_mean: 'b' is torch.float64 in state 2 but torch.float32 in state 0",
        ),
    ],
)
def test_a_mismatched_third_state_is_named_by_its_index_word_for_word(third, message):
    states = [_ab(torch.zeros(2)), _ab(torch.ones(2)), third]
    with pytest.raises(ValueError) as err:
        weighted_mean(states, [1, 1, 1])
    assert str(err.value) == message


def test_an_integer_state_is_weighted_in_float64_not_float32():
    # 2**24 + 1 is exact in float64 but is rounded to 2**24 by a float32 product
    out = weighted_mean([{"n": torch.tensor(2**24 + 1)}], [3])["n"]
    assert out.dtype == torch.int64 and out.item() == 2**24 + 1


def test_a_float16_state_is_weighted_in_float64_not_float16():
    # 2**-24 is the smallest float16 subnormal: half of it rounds to 0 in float16, but the float64
    # mean of two copies is 2**-24 again
    tiny = 2.0**-24
    states = [{"p": torch.tensor([tiny], dtype=torch.float16)} for _ in range(2)]
    out = weighted_mean(states, [1, 1])["p"]
    assert out.dtype == torch.float16 and out.item() == tiny


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64])
def test_the_mean_lives_on_the_first_states_device(dtype):
    # PyTorch's meta device (no GPU needed): the first state on meta, the second on CPU
    states = [{"w": torch.zeros(2, 3, dtype=dtype, device="meta")}, {"w": torch.ones(2, 3, dtype=dtype)}]
    out = weighted_mean(states, [1, 1])["w"]
    assert out.device.type == "meta" and out.dtype == dtype and out.shape == (2, 3)


def test_a_later_state_is_copied_to_the_first_states_device():
    # The second state is copied to the first state's device (CPU). A meta tensor holds no data, so
    # the copy fails instead of its contribution being silently left out of a CPU result.
    states = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.zeros(2, device="meta")}]
    with pytest.raises(NotImplementedError, match="meta tensor"):
        weighted_mean(states, [1, 1])
