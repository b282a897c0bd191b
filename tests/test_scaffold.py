"""SCAFFOLD option II: hand-worked numbers, a real SGD run, and the c = mean(c_i) invariant."""

import pytest
import torch

from fedbench.aggregation.scaffold import (
    client_control_update,
    corrected_grads,
    scaffold_server_update,
    zero_controls,
)


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


X = {"w": t(1.0, 2.0)}
C = {"w": t(0.5, -0.5)}
LR = 0.1
# Three clients: (c_i, y_i, K local steps, n samples). K and n differ between clients.
CLIENTS = [
    ({"w": t(0.0, 0.0)}, {"w": t(0.0, 2.5)}, 2, 10),
    ({"w": t(1.0, 1.0)}, {"w": t(0.5, 1.0)}, 5, 30),
    ({"w": t(-1.0, 0.0)}, {"w": t(2.0, 2.0)}, 4, 60),
]
# By hand, c_i+ = c_i - c + (x - y_i) / (K * 0.1):
#   client 1: (x - y) / 0.2 = [5, -2.5]  -> [0 - 0.5 + 5, 0 + 0.5 - 2.5]  = [4.5, -2.0]
#   client 2: (x - y) / 0.5 = [1, 2]     -> [1 - 0.5 + 1, 1 + 0.5 + 2]    = [1.5, 3.5]
#   client 3: (x - y) / 0.4 = [-2.5, 0]  -> [-1 - 0.5 - 2.5, 0 + 0.5 + 0] = [-4.0, 0.5]
EXPECTED_CI = [t(4.5, -2.0), t(1.5, 3.5), t(-4.0, 0.5)]


def test_client_control_update_by_hand():
    for (ci, y, k, _), expected in zip(CLIENTS, EXPECTED_CI, strict=True):
        torch.testing.assert_close(client_control_update(ci, C, X, y, k, LR)["w"], expected)


def test_server_update_three_clients_by_hand():
    ys = [y for _, y, _, _ in CLIENTS]
    deltas = [{"w": new - ci["w"]} for (ci, _, _, _), new in zip(CLIENTS, EXPECTED_CI, strict=True)]
    # deltas: [4.5, -2], [0.5, 2.5], [-3, 0.5]; their sum is [2, 1].
    new_x, new_c = scaffold_server_update(X, C, ys, deltas, n_clients=10)
    # y_i - x: [-1, 0.5], [-0.5, -1], [1, 0] -> uniform mean [-1/6, -1/6]
    torch.testing.assert_close(new_x["w"], t(1 - 1 / 6, 2 - 1 / 6))
    # c + (3/10) * mean(delta) = c + sum(delta) / 10 = [0.5 + 0.2, -0.5 + 0.1]
    torch.testing.assert_close(new_c["w"], t(0.7, -0.4))

    # Sample-weighted (10, 30, 60 -> 0.1, 0.3, 0.6) with server lr 0.5:
    # 0.1*[-1, .5] + 0.3*[-.5, -1] + 0.6*[1, 0] = [0.35, -0.25]; x + 0.5 * that = [1.175, 1.875]
    sizes = [n for *_, n in CLIENTS]
    wx, wc = scaffold_server_update(X, C, ys, deltas, n_clients=10, server_lr=0.5, weights=sizes)
    torch.testing.assert_close(wx["w"], t(1.175, 1.875))
    torch.testing.assert_close(wc["w"], t(0.7, -0.4))  # the control mean stays uniform


def test_corrected_grads_by_hand_and_dtype():
    g = {"w": torch.tensor([1.0, -2.0]), "b": torch.tensor([0.25], dtype=torch.bfloat16)}
    c = {"w": torch.tensor([0.5, 0.5]), "b": torch.tensor([1.0]), "unused": torch.zeros(3)}
    ci = {"w": torch.tensor([1.0, -1.0]), "b": torch.tensor([0.5]), "unused": torch.zeros(3)}
    out = corrected_grads(g, c, ci)
    torch.testing.assert_close(out["w"], torch.tensor([0.5, -0.5]))
    assert out["b"].dtype == torch.bfloat16 and out["b"].item() == 0.75
    assert set(out) == {"w", "b"}


def test_option_ii_recovers_the_mean_uncorrected_gradient_of_a_real_sgd_run():
    """K torch.optim.SGD steps along g + c - c_i: option II's c_i+ is the mean of the raw g_k."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(4, generator=gen, dtype=torch.float64)
    x = {"w": torch.randn(3, generator=gen, dtype=torch.float64)}
    c = {"w": torch.randn(3, generator=gen, dtype=torch.float64)}
    ci = {"w": torch.randn(3, generator=gen, dtype=torch.float64)}
    w = torch.nn.Parameter(x["w"].clone())
    opt = torch.optim.SGD([w], lr=0.05)
    raw = []
    for _ in range(7):
        opt.zero_grad()
        loss = ((a @ w - b) ** 2).sum()
        loss.backward()
        raw.append(w.grad.clone())
        w.grad = corrected_grads({"w": w.grad}, c, ci)["w"]
        opt.step()
    new_ci = client_control_update(ci, c, x, {"w": w.detach()}, local_steps=7, lr=0.05)
    torch.testing.assert_close(new_ci["w"], torch.stack(raw).mean(0))


def test_server_control_stays_the_mean_of_all_client_controls():
    n, gen = 6, torch.Generator().manual_seed(1)
    x = {"w": torch.zeros(2, dtype=torch.float64)}
    c = zero_controls(x, torch.float64)
    controls = [zero_controls(x, torch.float64) for _ in range(n)]
    for participants in ([0, 2, 5], [1, 2], [0, 1, 3, 4]):
        ys, deltas = [], []
        for i in participants:
            y = {"w": x["w"] + torch.randn(2, generator=gen, dtype=torch.float64)}
            new_ci = client_control_update(controls[i], c, x, y, local_steps=3, lr=0.1)
            deltas.append({"w": new_ci["w"] - controls[i]["w"]})
            controls[i] = new_ci
            ys.append(y)
        x, c = scaffold_server_update(x, c, ys, deltas, n_clients=n)
        torch.testing.assert_close(c["w"], torch.stack([ci["w"] for ci in controls]).mean(0))


def test_low_precision_state_keeps_its_dtype_and_controls_default_to_float32():
    x = {"p": torch.tensor([1.0, 1.0], dtype=torch.bfloat16)}
    c = zero_controls(x)
    assert c["p"].dtype == torch.float32
    y = {"p": torch.tensor([1.5, 0.5], dtype=torch.bfloat16)}
    new_x, new_c = scaffold_server_update(x, c, [y], [{"p": torch.tensor([1.0, -1.0])}], n_clients=4)
    assert new_x["p"].dtype == torch.bfloat16 and new_x["p"].tolist() == [1.5, 0.5]
    torch.testing.assert_close(new_c["p"], torch.tensor([0.25, -0.25]))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: scaffold_server_update(X, C, [], [], 3), "no participating"),
        (lambda: scaffold_server_update(X, C, [X, X], [C], 3), "2 client states but 1"),
        (lambda: scaffold_server_update(X, C, [X, X], [C, C], 1), "n_clients"),
        (lambda: scaffold_server_update(X, C, [X], [C], 3, server_lr=0.0), "server_lr"),
        (lambda: scaffold_server_update(X, C, [X], [C], 3, weights=[1, 2]), "weights"),
        (lambda: scaffold_server_update(X, C, [X], [C], 3, weights=[0]), "weights"),
        (lambda: scaffold_server_update(X, C, [{"v": t(1.0)}], [C], 3), "keys"),
        (lambda: scaffold_server_update(X, C, [{"w": t(1.0)}], [C], 3), "shape"),
        (lambda: client_control_update(C, C, X, X, 0, 0.1), "local_steps"),
        (lambda: client_control_update(C, C, X, X, 2, -0.1), "lr"),
        (lambda: corrected_grads({"w": t(1.0, 2.0)}, {}, C), "no control variate"),
        (lambda: corrected_grads({"w": t(1.0)}, C, C), "shape"),
    ],
)
def test_invalid_input_raises_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
