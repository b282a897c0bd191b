"""SCAFFOLD (Karimireddy et al., 2020) with option II control variates, over dict states.

Client drift under label skew: each client's local steps follow its own gradient, so the average of
the clients' end points is not a step on the global objective. SCAFFOLD keeps a server control
variate c (an estimate of the global gradient) and one per client, c_i (an estimate of that
client's gradient), and every local step follows g + c - c_i: the client's gradient with its own
bias swapped for the global one.

Option II reuses the local run to refresh c_i instead of spending an extra pass on the data: after
K plain SGD steps of size lr from x to y_i, (x - y_i) / (K lr) is the average corrected gradient
along the path, so

    c_i+ = c_i - c + (x - y_i) / (K lr)

is exactly the average *uncorrected* gradient along the path (tests check this). K counts
optimizer steps (PFPT: local epochs x batches per epoch). With Adam or momentum on the client,
(x - y_i) / (K lr) is no longer an average gradient; PFPT's SCAFFOLD-PT uses plain SGD.

Server, over the participating set S of the N clients:

    x <- x + server_lr * mean_{i in S}(y_i - x)
    c <- c + (|S| / N) * mean_{i in S}(c_i+ - c_i)

The control mean is always uniform: with every c_i starting at zero and c = 0, that rule keeps
c equal to the mean of all N client controls (participants' new ones, the others' old ones),
which is what c is meant to be. The model mean is uniform in the paper and in PFPT's code
(``Algo/communication.py``, branch ``scaffold``); pass ``weights`` (sample counts) to get the
FedAvg-style weighted mean instead. N is an argument here. PFPT's ``communication`` defaults it to
100 with a comment calling it hard-coded, but its SCAFFOLD caller passes the scenario's client
count, so the released code uses the true N (80 in the four-dataset scripts).

Noted in PFPT's ``Algo/scaffold.py``, left to the method: a sampled client starts from the global
model of the last round *it* took part in (its stored copy), not the current one, and x in its
control update is that stale copy; and ``main.py`` passes ``reduce_sim_scalar`` to a
``client_train`` that does not take it, so the released SCAFFOLD run stops with a TypeError.

Accumulation is in float64, cast back to each tensor's dtype, as in :mod:`.weighted`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

__all__ = [
    "client_control_update",
    "corrected_grads",
    "scaffold_server_update",
    "zero_controls",
]

State = Mapping[str, Tensor]


def _check_same_keys(what: str, reference: State, **others: State) -> None:
    keys = set(reference)
    for name, other in others.items():
        if set(other) != keys:
            raise ValueError(f"{what}: {name} has keys {sorted(other)} but expected {sorted(keys)}")
        for key in keys:
            if other[key].shape != reference[key].shape:
                raise ValueError(
                    f"{what}: {name}[{key!r}] has shape {tuple(other[key].shape)}, "
                    f"expected {tuple(reference[key].shape)}"
                )


def _f64(t: Tensor, device: torch.device) -> Tensor:
    return t.detach().to(device=device, dtype=torch.float64)


def _coefficients(n: int, weights: Sequence[float] | None) -> list[float]:
    """Uniform 1/n, or the given non-negative weights divided by their (positive) total."""
    if weights is None:
        return [1.0 / n] * n
    values = [float(w) for w in weights]
    if len(values) != n:
        raise ValueError(f"scaffold_server_update: {n} client states but {len(values)} weights")
    if any(not math.isfinite(w) or w < 0 for w in values) or math.fsum(values) <= 0:
        raise ValueError(f"scaffold_server_update: weights must be finite, >= 0 and not all 0, got {values}")
    total = math.fsum(values)
    return [w / total for w in values]


def zero_controls(state: State, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Zero control variates shaped like ``state``: the initial c and every initial c_i (paper and PFPT).

    float32 by default whatever the parameters' dtype: controls are running sums of gradient
    estimates and would lose their small updates in bf16.
    """
    return {k: torch.zeros(v.shape, dtype=dtype, device=v.device) for k, v in state.items()}


def corrected_grads(grads: State, server_control: State, client_control: State) -> dict[str, Tensor]:
    """g + c - c_i for every key of ``grads``: the gradient a SCAFFOLD client steps along.

    ``grads`` holds only the trainable tensors that received a gradient; both controls must have
    at least those keys (extra keys are ignored, so controls may cover frozen-this-round tensors).
    The result has each gradient's dtype and device, ready to be written to ``param.grad``.
    """
    out: dict[str, Tensor] = {}
    for key, g in grads.items():
        if key not in server_control or key not in client_control:
            raise ValueError(f"corrected_grads: no control variate for {key!r}")
        c, ci = server_control[key], client_control[key]
        if c.shape != g.shape or ci.shape != g.shape:
            raise ValueError(
                f"corrected_grads: {key!r} has gradient shape {tuple(g.shape)} but controls "
                f"{tuple(c.shape)} and {tuple(ci.shape)}"
            )
        dev = g.device
        out[key] = (_f64(g, dev) + _f64(c, dev) - _f64(ci, dev)).to(g.dtype)
    return out


def client_control_update(
    client_control: State,
    server_control: State,
    start: State,
    end: State,
    local_steps: int,
    lr: float,
) -> dict[str, Tensor]:
    """Option II: c_i+ = c_i - c + (x - y_i) / (K * lr), with x = ``start``, y_i = ``end``,
    K = ``local_steps``.

    ``start`` must be the point the client actually started from (the global x it was sent), and
    ``lr`` the local SGD step size. The result has ``client_control``'s dtypes; the client sends
    c_i+ - c_i to the server and keeps c_i+.
    """
    if isinstance(local_steps, bool) or int(local_steps) != local_steps or local_steps < 1:
        raise ValueError(
            f"client_control_update: local_steps must be a positive integer, got {local_steps!r}"
        )
    lr = float(lr)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"client_control_update: lr must be finite and > 0, got {lr}")
    _check_same_keys(
        "client_control_update", client_control, server_control=server_control, start=start, end=end
    )
    scale = 1.0 / (int(local_steps) * lr)
    out: dict[str, Tensor] = {}
    for key, ci in client_control.items():
        dev = ci.device
        drift = (_f64(start[key], dev) - _f64(end[key], dev)) * scale
        out[key] = (_f64(ci, dev) - _f64(server_control[key], dev) + drift).to(ci.dtype)
    return out


def scaffold_server_update(
    x: State,
    server_control: State,
    client_states: Sequence[State],
    control_deltas: Sequence[State],
    n_clients: int,
    *,
    server_lr: float = 1.0,
    weights: Sequence[float] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """One SCAFFOLD server step; returns (new x, new c).

    ``client_states`` are the participants' y_i, ``control_deltas`` their c_i+ - c_i, in the same
    order; ``n_clients`` is N, the size of the whole federation (not of this round's sample).
    ``weights=None`` averages y_i - x uniformly (paper, PFPT); sample counts give the weighted
    variant. The control update is uniform either way (see the module docstring).

    Raises ValueError on no participants, mismatched counts, |S| > N, a non-positive or
    non-finite ``server_lr``, or states whose keys or shapes differ from ``x``.
    """
    s = len(client_states)
    if s == 0:
        raise ValueError("scaffold_server_update: no participating clients")
    if len(control_deltas) != s:
        raise ValueError(
            f"scaffold_server_update: {s} client states but {len(control_deltas)} control deltas"
        )
    if isinstance(n_clients, bool) or int(n_clients) != n_clients or n_clients < s:
        raise ValueError(
            f"scaffold_server_update: n_clients must be an integer >= the {s} participants, got {n_clients!r}"
        )
    server_lr = float(server_lr)
    if not math.isfinite(server_lr) or server_lr <= 0:
        raise ValueError(f"scaffold_server_update: server_lr must be finite and > 0, got {server_lr}")
    _check_same_keys("scaffold_server_update", x, server_control=server_control)
    for k, (y, dc) in enumerate(zip(client_states, control_deltas, strict=True)):
        _check_same_keys(
            "scaffold_server_update", x, **{f"client_states[{k}]": y, f"control_deltas[{k}]": dc}
        )
    coefs = _coefficients(s, weights)
    share = s / int(n_clients)
    new_x: dict[str, Tensor] = {}
    new_c: dict[str, Tensor] = {}
    for key, xv in x.items():
        x64 = _f64(xv, xv.device)
        step = sum(a * (_f64(y[key], xv.device) - x64) for a, y in zip(coefs, client_states, strict=True))
        new_x[key] = (x64 + server_lr * step).to(xv.dtype)
        c = server_control[key]
        mean_dc = sum(_f64(d[key], c.device) for d in control_deltas) / s
        new_c[key] = (_f64(c, c.device) + share * mean_dc).to(c.dtype)
    return new_x, new_c
