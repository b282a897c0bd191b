"""SCAFFOLD's client side (option II control update, the VPT client's hooks), the matcher options'
refusals and the scenario helpers, each against a hand-worked example.

The client hooks are called unbound on a plain namespace that holds exactly the state they read, so
no backbone is built. Devices are checked with PyTorch's ``meta`` device (no GPU needed): a tensor
left on CPU either fails to mix with ``meta`` or comes back on CPU."""

import inspect
import math
from dataclasses import dataclass
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fedbench.aggregation import matched_centres as matched_centres_module
from fedbench.aggregation.matched_centres import MatcherOptions, centre_means
from fedbench.aggregation.matching_scenarios import _min_distance, make_scenario
from fedbench.aggregation.prob_matching import (
    MatchResult,
    PopularityNet,
    ScaleNet,
    assign_client,
    match_prompts,
    matching_objective,
)
from fedbench.aggregation.scaffold import client_control_update
from fedbench.errors import ConfigError
from fedbench.methods.prompt_baselines.scaffold import ScaffoldVPTModule

F64 = torch.float64


def _one(v):
    return {"w": torch.tensor([v], dtype=F64)}


# ----- client_control_update ----------------------------------------------------------------------
def test_one_local_step_gives_the_options_ii_control_by_hand():
    # c_i+ = c_i - c + (x - y) / (K lr) = 0.5 - 0.25 + (1.0 - 0.8) / (1 * 0.1) = 2.25
    out = client_control_update(_one(0.5), _one(0.25), _one(1.0), _one(0.8), 1, 0.1)
    assert out["w"].item() == pytest.approx(2.25, abs=1e-12)


@pytest.mark.parametrize(
    ("steps", "lr", "message"),
    [
        (True, 0.1, "client_control_update: local_steps must be a positive integer, got True"),
        (0, 0.1, "client_control_update: local_steps must be a positive integer, got 0"),
        (2, 0.0, "client_control_update: lr must be finite and > 0, got 0.0"),
    ],
)
def test_bad_steps_or_step_size_are_refused_word_for_word(steps, lr, message):
    with pytest.raises(ValueError) as err:
        client_control_update(_one(0.0), _one(0.0), _one(0.0), _one(0.0), steps, lr)
    assert str(err.value) == message


@pytest.mark.parametrize("missing", ["server_control", "start", "end"])
def test_a_state_with_other_keys_is_refused_naming_it(missing):
    states = {"server_control": _one(0.0), "start": _one(0.0), "end": _one(0.0)}
    states[missing] = {"v": torch.zeros(1)}
    with pytest.raises(ValueError) as err:
        client_control_update(_one(0.0), states["server_control"], states["start"], states["end"], 1, 0.1)
    assert str(err.value) == f"client_control_update: {missing} has keys ['v'] but expected ['w']"


def test_the_new_control_lives_on_the_client_controls_device():
    ci = {"w": torch.zeros(3, device="meta")}
    cpu = {"w": torch.zeros(3)}
    out = client_control_update(ci, cpu, cpu, cpu, 2, 0.1)
    assert out["w"].device.type == "meta" and out["w"].shape == (3,)


# ----- the VPT client's hooks -----------------------------------------------------------------------
def _client(**state):
    return SimpleNamespace(**state)


def test_round_start_without_controls_starts_both_at_zero_like_the_global_state():
    client = _client()
    ScaffoldVPTModule.on_round_start(client, {"w": torch.tensor([1.0, 2.0])}, 0, {})
    assert torch.equal(client._c["w"], torch.zeros(2)) and torch.equal(client._ci["w"], torch.zeros(2))
    assert client._steps == 0


def test_gradient_correction_adds_c_minus_ci_only_to_controlled_parameters_with_a_gradient():
    a, b, free = (torch.nn.Parameter(torch.zeros(1)) for _ in range(3))
    a.grad, free.grad = torch.tensor([1.0]), torch.tensor([1.0])
    client = _client(
        named_parameters=lambda: [("a", a), ("b", b), ("free", free)],
        _c={"a": torch.tensor([0.5], dtype=F64), "b": torch.tensor([9.0], dtype=F64)},
        _ci={"a": torch.tensor([0.25], dtype=F64), "b": torch.tensor([9.0], dtype=F64)},
        _steps=3,
    )
    ScaffoldVPTModule.on_before_optimizer_step(client, None)
    assert a.grad.item() == 1.25 and b.grad is None and free.grad.item() == 1.0 and client._steps == 4


def test_gradient_correction_is_rounded_once_to_the_gradients_dtype():
    # c - c_i = 2**-8 + 2**-20 is first rounded to bfloat16 (2**-8), then 1 + 2**-8 is a tie that
    # rounds to even: 1.0. Adding the float64 value directly would round up to 1 + 2**-7.
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.bfloat16))
    p.grad = torch.ones(1, dtype=torch.bfloat16)
    client = _client(
        named_parameters=lambda: [("p", p)],
        _c={"p": torch.tensor([2.0**-8 + 2.0**-20], dtype=F64)},
        _ci={"p": torch.zeros(1, dtype=F64)},
        _steps=0,
    )
    ScaffoldVPTModule.on_before_optimizer_step(client, None)
    assert p.grad.dtype == torch.bfloat16 and p.grad.item() == 1.0


def test_round_metadata_without_a_step_reports_a_zero_delta():
    client = _client(_steps=0, _start={"w": torch.tensor([3.0, 4.0])})
    assert set(ScaffoldVPTModule.round_metadata(client)) == {"control_delta"}
    assert torch.equal(ScaffoldVPTModule.round_metadata(client)["control_delta"]["w"], torch.zeros(2))


def test_round_metadata_after_one_step_reports_the_options_ii_delta():
    # delta = c_i+ - c_i = -c + (x - y) / (K lr) = -0.25 + (1.0 - 0.8) / 0.1 = 1.75
    client = _client(
        _steps=1,
        _start=_one(1.0),
        _c=_one(0.25),
        _ci=_one(0.5),
        step_size=0.1,
        trainable_state=lambda: {"w": torch.tensor([0.8], dtype=F64), "head": torch.zeros(1)},
    )
    delta = ScaffoldVPTModule.round_metadata(client)["control_delta"]
    assert set(delta) == {"w"} and delta["w"].item() == pytest.approx(1.75, abs=1e-12)


# ----- the matcher's options ------------------------------------------------------------------------
def test_a_one_unit_matcher_net_is_allowed():
    MatcherOptions(matcher_hidden=1).check_matcher()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("matcher_hidden", 0, "method.options.matcher_hidden: must be >= 1, got 0; try 128"),
        ("matcher_lr", 0.0, "method.options.matcher_lr: must be > 0, got 0.0; try 0.001"),
    ],
)
def test_matcher_net_settings_are_refused_word_for_word(field, value, message):
    with pytest.raises(ConfigError) as err:
        MatcherOptions(**{field: value}).check_matcher()
    assert str(err.value) == message


# ----- scenario helpers -----------------------------------------------------------------------------
def test_min_distance_of_one_point_is_its_norm_and_of_two_their_distance():
    assert _min_distance(np.array([[3.0, 4.0]])) == 5.0
    assert _min_distance(np.array([[1.0, 0.0], [4.0, 4.0]])) == pytest.approx(5.0)  # their norm: 5.74


def test_a_scenario_without_a_seed_is_seed_zeros():
    plain, seeded = make_scenario("shared", 3, 2, 0.1, d=4), make_scenario("shared", 3, 2, 0.1, d=4, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(plain.clients, seeded.clients, strict=True))


# ----- centre_means ---------------------------------------------------------------------------------
def test_centre_means_with_weights_below_one_are_still_weighted_means():
    local = [torch.tensor([[2.0, 0.0], [0.0, 4.0]]), torch.tensor([[6.0, 0.0]])]
    # centre 0 <- client 0 row 0 (weight 0.25) and client 1 row 0 (weight 0.5): (0.5 + 3) / 0.75 = 14/3
    # centre 1 <- client 0 row 1 alone (weight 0.25): the row itself
    out = centre_means(local, [np.array([0, 1]), np.array([0])], [0.25, 0.5], 2)
    torch.testing.assert_close(out, torch.tensor([[14 / 3, 0.0], [0.0, 4.0]], dtype=F64))


def test_centre_means_of_zero_weight_centres_are_plain_means():
    a, b, c = torch.tensor([[1.0, 0.0], [0.0, 3.0]]), torch.tensor([[5.0, 2.0]]), torch.tensor([[7.0, 7.0]])
    # clients a and b weigh 0: centre 0 <- a row 0 and b row 0, plain mean (1 + 5) / 2, (0 + 2) / 2;
    # centre 1 <- a row 1 alone; centre 2 <- c's row (weight 2); centre 3 gets no row: zeros
    out = centre_means([a, b, c], [np.array([0, 1]), np.array([0]), np.array([2])], [0.0, 0.0, 2.0], 4)
    want = torch.tensor([[3.0, 1.0], [0.0, 3.0], [7.0, 7.0], [0.0, 0.0]], dtype=F64)
    torch.testing.assert_close(out, want)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_centre_means_take_assignments_of_any_integer_dtype(dtype):
    local = [torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[3.0, 0.0]])]
    # as in test_ppt: centre 0 <- (1 * 1 + 3 * 3) / 4 = 2.5; centre 1 <- client 0 row 1 alone
    assignments = [np.array([0, 1], dtype=dtype), np.array([0], dtype=dtype)]
    out = centre_means(local, assignments, [1.0, 3.0], 2)
    torch.testing.assert_close(out, torch.tensor([[2.5, 0.0], [0.0, 2.0]], dtype=F64))


def test_centre_means_refuse_a_weight_list_of_another_length():
    local = [torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 0.0]])]
    with pytest.raises(ValueError) as err:
        centre_means(local, [np.array([0]), np.array([0])], [1.0], 1)
    assert str(err.value) == "zip() argument 3 is shorter than arguments 1-2"


def test_centre_means_of_a_single_client_by_hand():
    # centre 0 <- row 1 alone; centre 1 <- rows 0 and 2, whose one weight cancels: ([1, 2] + [7, 0]) / 2
    local = [torch.tensor([[1.0, 2.0], [3.0, 4.0], [7.0, 0.0]])]
    out = centre_means(local, [np.array([1, 0, 1])], [2.0], 2)
    torch.testing.assert_close(out, torch.tensor([[3.0, 4.0], [4.0, 1.0]], dtype=F64))


# ----- MatcherOptions.matched_centres ---------------------------------------------------------------
@dataclass
class _Priced(MatcherOptions):
    """A method whose new-centre price (nats per prompt dimension) is a field."""

    price: float | str | None = None

    def new_centre_price(self):
        return self.price


@pytest.mark.parametrize(
    ("price", "cost"),
    [(0.5, 1.5), (2, 6.0), ("auto", "auto"), (None, None)],  # a number is priced per dimension: d = 3
)
@pytest.mark.parametrize("centre_update", ["mean", "matcher"])
def test_matched_centres_runs_the_matcher_with_the_options_settings(monkeypatch, price, cost, centre_update):
    # One client of n = 2 rows of width d = 3. The matcher is replaced by a recorder that returns
    # centre 0 <- row 1, centre 1 <- row 0, and centres of its own (all 9).
    local = [torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])]
    signature = inspect.signature(matched_centres_module.match_prompts)
    seen = {}

    def recorder(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        seen.update(bound.arguments)
        return MatchResult(torch.full((2, 3), 9.0), [np.array([1, 0])], [0.0])

    monkeypatch.setattr(matched_centres_module, "match_prompts", recorder)
    opts = _Priced(
        matcher_cost="official",
        standardise=False,
        centre_update=centre_update,
        outer_loops=3,
        matcher_hidden=7,
        matcher_lr=0.25,
        price=price,
    )
    centres, result = opts.matched_centres(local, [4.0], seed=11)
    assert seen.pop("local") is local
    assert seen == {
        "outer_loops": 3,
        "hidden": 7,
        "lr": 0.25,
        "seed": 11,
        "new_cluster_cost": cost,
        "cost": "official",
        "standardise": False,
        "radius": None,
    }
    assert type(seen["new_cluster_cost"]) is type(cost)
    want = [[4.0, 5.0, 6.0], [1.0, 2.0, 3.0]] if centre_update == "mean" else [[9.0] * 3] * 2
    assert centres.dtype == F64 and torch.equal(centres, torch.tensor(want, dtype=F64))
    assert result.assignments[0].tolist() == [1, 0]
    opts.matched_centres(local, [4.0], seed=11, radius=0.75)  # a measured radius goes through as given
    assert seen["radius"] == 0.75


def test_matched_centres_of_a_single_client_are_its_own_rows():
    # One client: the matcher maps its rows to distinct centres, so each centre is one row's mean
    local = [torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])]
    opts = _Priced(outer_loops=2, matcher_hidden=4, price=1.0)
    centres, result = opts.matched_centres(local, [5.0], seed=0)
    assert centres.shape == (3, 2) and centres.dtype == F64
    assert torch.equal(centres[torch.as_tensor(result.assignments[0])], local[0].double())


def test_matched_centres_refuse_a_client_without_a_row_dimension_word_for_word():
    with pytest.raises(ValueError) as err:
        _Priced(price=1.0).matched_centres([torch.zeros(3)], [1.0], seed=0)
    assert str(err.value) == "match_prompts: client 0 has prompts of shape (3,); need [n_t >= 1, 3]"


# ----- the matcher's input checks, assignment step and objective ------------------------------------
@pytest.mark.parametrize(
    ("local", "kwargs", "message"),
    [
        ([], {}, "match_prompts: no clients"),
        (
            [torch.zeros(2, 3), torch.tensor([[0.0, 1.0, 2.0], [0.0, float("nan"), 0.0]])],
            {},
            "match_prompts: client 1 has non-finite prompt values",
        ),
        ([torch.zeros(2, 3)], {"outer_loops": 0}, "match_prompts: outer_loops must be >= 1, got 0"),
        (
            [torch.zeros(2, 3)],
            {"new_cluster_cost": -1.0},
            "match_prompts: new_cluster_cost must be a finite number >= 0, 'auto' or None, got -1.0",
        ),
    ],
)
def test_match_prompts_refuses_bad_input_word_for_word(local, kwargs, message):
    with pytest.raises(ValueError) as err:
        match_prompts(local, **kwargs)
    assert str(err.value) == message


def test_match_prompts_refuses_a_zero_dimensional_tensor_as_having_no_client_dimension():
    # a stacked [T, n, d] input is split along its first dimension, which a 0-d tensor lacks
    with pytest.raises(IndexError) as err:
        match_prompts(torch.tensor(1.0))
    assert str(err.value) == "Dimension specified as 0 but tensor has no dimensions"


def test_one_outer_loop_is_allowed_and_leaves_one_objective():
    # two clients of two prompts; objective_trace holds one total per outer loop
    local = [torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [1.0, 1.0]])]
    result = match_prompts(local, outer_loops=1, hidden=2)
    assert len(result.objective_trace) == 1
    assert all(sorted(set(z.tolist())) == sorted(z.tolist()) and len(z) == 2 for z in result.assignments)


def test_assign_client_takes_exact_fractions_by_hand():
    # rows pick distinct columns with the largest total: row 0 -> 2 (1/2), row 1 -> 0 (2/3): 7/6,
    # beating row 0 -> 0 and row 1 -> 2 (1/3 + 1/4) and every other pair
    cost = [[Fraction(1, 3), Fraction(0), Fraction(1, 2)], [Fraction(2, 3), Fraction(1, 5), Fraction(1, 4)]]
    out = assign_client(cost)
    assert out.dtype == np.int64 and out.tolist() == [2, 0]


def _flat_nets(d):
    """Nets with zero weights: s = sigmoid(0) = 1/2 and pi = 1/2 for every centre."""
    scale_net, pop_net = ScaleNet(d, 1), PopularityNet(d, 1)
    with torch.no_grad():
        for p in [*scale_net.parameters(), *pop_net.parameters()]:
            p.zero_()
    return scale_net, pop_net


def test_matching_objective_compares_prompts_at_the_centres_precision():
    # float64 prompt 2**24 + 1 against a float32 centre 2**24: rounded to float32 it is the centre,
    # so the residual is 0 and the joint term is -log(1/2) - log(2 pi) / 2 + log(1/2) = -log(2 pi) / 2
    # (unrounded it would be 2 / s = 2 standard deviations away: 2 nats less).
    scale_net, pop_net = _flat_nets(1)
    centres = torch.tensor([[2.0**24]], dtype=torch.float32)
    q = torch.tensor([[2.0**24 + 1]], dtype=F64)
    got = matching_objective([q], centres, [np.array([0])], scale_net, pop_net)
    assert got == pytest.approx(-0.5 * math.log(2 * math.pi), abs=1e-6)


def test_matching_objective_refuses_fewer_assignments_than_clients():
    scale_net, pop_net = _flat_nets(2)
    local = [torch.zeros(1, 2), torch.ones(1, 2)]
    with pytest.raises(ValueError) as err:
        matching_objective(local, torch.zeros(2, 2), [np.array([0])], scale_net, pop_net)
    assert str(err.value) == "zip() argument 2 is shorter than argument 1"
