"""FedOpt with a server Adam (FedAdam, Reddi et al., 2021), over dict states.

FedAvg replaces the global model with the clients' mean. FedOpt instead treats the round's mean
update as a gradient and gives it to a server optimizer, so the server can keep momentum and
per-coordinate step sizes across rounds. The pseudo-gradient (torch's sign convention, so that a
plain SGD step with lr 1 is FedAvg) is

    g = x - weighted_mean_i(y_i)

and the server Adam step is

    m <- b1 m + (1 - b1) g,    v <- b2 v + (1 - b2) g^2,    x <- x - lr * m_hat / (sqrt(v_hat) + eps).

The paper writes the same step with Delta = -g: x <- x + lr * m_Delta / (sqrt(v) + tau); m flips
sign with g and v does not, so the two are identical.

Conventions, as options (``FedAdamOptions``):

- ``bias_correction=False`` (default, the paper's Algorithm 2): m_hat = m, v_hat = v.
  ``True`` is torch.optim.Adam exactly: m_hat = m / (1 - b1^t), and eps is added *after*
  dividing sqrt(v) by sqrt(1 - b2^t). PFPT's code uses torch.optim.Adam, so it corrects.
- ``betas=(0.9, 0.99)``, ``eps=1e-3`` (the paper's tau) by default; PFPT uses betas (0.9, 0.98),
  eps 1e-6 and server lr 5e-5 (``--fedopt_global_lr``): :meth:`FedAdamOptions.pfpt_official`.
- ``initial_v``: the paper's algorithm takes v_{-1} >= tau^2 as an input; torch and PFPT start v
  at 0, which is the default here. m always starts at 0.
- The server lr has no default: the paper tunes it per task.

The state (step, m, v) is a flat dict of tensors, so the round checkpoint saves it with
``torch.save`` like any client state; ``step`` counts server steps taken. Keys are
``"step"``, ``"exp_avg/<name>"`` and ``"exp_avg_sq/<name>"``. Moments are kept in at least
float32 and the arithmetic is done in float64, so bf16 models do not lose small updates.

Noted in PFPT's ``Algo/fedopt.py``, left to the method: the clients' models are overwritten with
the plain weighted mean, not with the Adam-updated server model, so clients follow the FedAvg
trajectory and only the evaluated server model takes Adam steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from fedbench.aggregation.weighted import weighted_mean

__all__ = ["FedAdamOptions", "adam_update", "fedadam_step", "init_adam_state", "pseudo_gradient"]

State = Mapping[str, Tensor]
_M, _V = "exp_avg/", "exp_avg_sq/"


@dataclass(frozen=True)
class FedAdamOptions:
    """Server Adam settings; see the module docstring for where each default comes from."""

    lr: float
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-3
    bias_correction: bool = False
    initial_v: float = 0.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"FedAdamOptions: lr must be finite and > 0, got {self.lr}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"FedAdamOptions: betas must be two numbers in [0, 1), got {self.betas}")
        if not math.isfinite(self.eps) or self.eps <= 0:
            raise ValueError(f"FedAdamOptions: eps must be finite and > 0, got {self.eps}")
        if not math.isfinite(self.initial_v) or self.initial_v < 0:
            raise ValueError(f"FedAdamOptions: initial_v must be finite and >= 0, got {self.initial_v}")

    @classmethod
    def pfpt_official(cls) -> FedAdamOptions:
        """PFPT's FedOpt-PT server: torch.optim.Adam(lr=5e-5, betas=(0.9, 0.98), eps=1e-6)."""
        return cls(lr=5e-5, betas=(0.9, 0.98), eps=1e-6, bias_correction=True)


def pseudo_gradient(x: State, client_states: Sequence[State], weights: Sequence[float]) -> dict[str, Tensor]:
    """g = x - weighted_mean(y_i), in float64 (it feeds the moments, so it is not cast back).

    ``weights`` are sample counts for PFPT (its ``communication`` weights by client size) or equal
    numbers for the paper's uniform mean.
    """
    mean = weighted_mean([{k: v.to(torch.float64) for k, v in y.items()} for y in client_states], weights)
    if set(mean) != set(x):
        raise ValueError(f"pseudo_gradient: client states have keys {sorted(mean)}, x has {sorted(x)}")
    out: dict[str, Tensor] = {}
    for key, xv in x.items():
        if mean[key].shape != xv.shape:
            raise ValueError(
                f"pseudo_gradient: {key!r} has shape {tuple(mean[key].shape)} in the clients, "
                f"{tuple(xv.shape)} in x"
            )
        out[key] = xv.detach().to(torch.float64) - mean[key].to(xv.device)
    return out


def _moment_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def init_adam_state(x: State, options: FedAdamOptions) -> dict[str, Tensor]:
    """step 0, m = 0, v = ``options.initial_v``, each moment shaped like its tensor in ``x``."""
    state: dict[str, Tensor] = {"step": torch.tensor(0, dtype=torch.int64)}
    for key, xv in x.items():
        dtype = _moment_dtype(xv.dtype)
        state[_M + key] = torch.zeros(xv.shape, dtype=dtype, device=xv.device)
        state[_V + key] = torch.full(xv.shape, options.initial_v, dtype=dtype, device=xv.device)
    return state


def _check_state(x: State, state: State) -> None:
    expected = {"step"} | {_M + k for k in x} | {_V + k for k in x}
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(
            f"adam_update: server state does not match the model (missing {missing}, extra {extra})"
        )
    for key, xv in x.items():
        for prefix in (_M, _V):
            if state[prefix + key].shape != xv.shape:
                raise ValueError(
                    f"adam_update: {prefix + key!r} has shape {tuple(state[prefix + key].shape)}, "
                    f"expected {tuple(xv.shape)}"
                )


def adam_update(
    x: State, grad: State, state: State, options: FedAdamOptions
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """One Adam step on x along ``grad``; returns (new x, new state) and leaves the inputs untouched."""
    _check_state(x, state)
    if set(grad) != set(x):
        raise ValueError(f"adam_update: gradient has keys {sorted(grad)}, x has {sorted(x)}")
    b1, b2 = options.betas
    step = int(state["step"]) + 1
    new_x: dict[str, Tensor] = {}
    new_state: dict[str, Tensor] = {"step": torch.tensor(step, dtype=torch.int64)}
    for key, xv in x.items():
        dev = xv.device
        g = grad[key].detach().to(device=dev, dtype=torch.float64)
        m = b1 * state[_M + key].to(device=dev, dtype=torch.float64) + (1 - b1) * g
        v = b2 * state[_V + key].to(device=dev, dtype=torch.float64) + (1 - b2) * g * g
        if options.bias_correction:
            denom = v.sqrt() / math.sqrt(1 - b2**step) + options.eps
            update = (options.lr / (1 - b1**step)) * m / denom
        else:
            update = options.lr * m / (v.sqrt() + options.eps)
        new_x[key] = (xv.detach().to(torch.float64) - update).to(xv.dtype)
        dtype = _moment_dtype(xv.dtype)
        new_state[_M + key] = m.to(dtype)
        new_state[_V + key] = v.to(dtype)
    return new_x, new_state


def fedadam_step(
    x: State,
    client_states: Sequence[State],
    weights: Sequence[float],
    state: State | None,
    options: FedAdamOptions,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """One FedAdam round: pseudo-gradient from the clients, then a server Adam step.

    ``state=None`` starts a fresh optimizer (the first round). Returns (new x, new state); keep
    the state with the round's checkpoint and pass it back next round.
    """
    if state is None:
        state = init_adam_state(x, options)
    return adam_update(x, pseudo_gradient(x, client_states, weights), state, options)
