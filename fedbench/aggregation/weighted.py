"""FedAvg's weighted mean of client states, and the byte count used for communication accounting.

The server rule of FedAvg (methods.md §5) is w <- sum_k (n_k / sum_j n_j) w_k over the trainable
tensors only. It is also the rule FedPrime applies to its intra-client prompts, pooler and
classifier, and FedMVP applies with CKA weights instead of sample counts, so it takes arbitrary
non-negative weights. The sum is accumulated in float64 and cast back, so that averaging many
clients in bf16/fp16 does not lose the small differences between them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["state_bytes", "weighted_mean"]


def _normalised_weights(weights: Sequence[float], n_states: int) -> list[float]:
    """Weights divided by their total, after checking that they can be."""
    if len(weights) != n_states:
        raise ValueError(f"weighted_mean: got {n_states} states but {len(weights)} weights")
    values = [float(w) for w in weights]
    for k, w in enumerate(values):
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"weighted_mean: weight {k} is {w}; weights must be finite and >= 0")
    total = math.fsum(values)
    if total <= 0:
        raise ValueError(f"weighted_mean: the weights sum to {total}; need a positive total")
    return [w / total for w in values]


def _check_same_layout(states: Sequence[Mapping[str, Tensor]]) -> None:
    """Every state must hold the same keys with the same shapes and dtypes as the first one."""
    first = states[0]
    keys = set(first)
    for k, state in enumerate(states[1:], start=1):
        if set(state) != keys:
            missing = sorted(keys - set(state))
            extra = sorted(set(state) - keys)
            raise ValueError(
                f"weighted_mean: state {k} has different keys from state 0 (missing {missing}, extra {extra})"
            )
        for name in first:
            a, b = first[name], state[name]
            if a.shape != b.shape:
                raise ValueError(
                    f"weighted_mean: {name!r} has shape {tuple(b.shape)} in state {k} "
                    f"but {tuple(a.shape)} in state 0"
                )
            if a.dtype != b.dtype:
                raise ValueError(
                    f"weighted_mean: {name!r} is {b.dtype} in state {k} but {a.dtype} in state 0"
                )


def weighted_mean(states: Sequence[Mapping[str, Tensor]], weights: Sequence[float]) -> dict[str, Tensor]:
    """sum_k (w_k / sum_j w_j) * state_k for every key, on the device of the first state.

    Floating tensors are averaged in float64 and cast back to their dtype. Integer tensors (such as
    a BatchNorm step counter) are averaged and rounded to the nearest integer; boolean and complex
    tensors have no meaningful mean here and are rejected. Clients with weight 0 are allowed (they
    contribute nothing) as long as the total is positive.

    Raises ValueError on no states, a weight count that differs from the state count, a negative or
    non-finite weight, a non-positive total, or states whose keys, shapes or dtypes differ.
    """
    if len(states) == 0:
        raise ValueError("weighted_mean: no client states to average")
    coefficients = _normalised_weights(weights, len(states))
    _check_same_layout(states)
    out: dict[str, Tensor] = {}
    for name, reference in states[0].items():
        if reference.dtype == torch.bool or reference.is_complex():
            raise ValueError(f"weighted_mean: cannot average {name!r} of dtype {reference.dtype}")
        acc = torch.zeros(reference.shape, dtype=torch.float64, device=reference.device)
        for coef, state in zip(coefficients, states, strict=True):
            acc += coef * state[name].detach().to(device=reference.device, dtype=torch.float64)
        if not reference.is_floating_point():
            acc = acc.round()
        out[name] = acc.to(reference.dtype)
    return out


def state_bytes(state: Mapping[str, Tensor]) -> int:
    """Bytes needed to send ``state`` as raw tensors: sum of numel * element_size over its values.

    This is the payload size recorded for communication accounting; it ignores serialisation
    overhead, which is the same for every method and would only blur comparisons.
    """
    return sum(t.numel() * t.element_size() for t in state.values())
