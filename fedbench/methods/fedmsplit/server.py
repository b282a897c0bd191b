"""FedMSplit's server maths (methods.md §7, FEDMSPLIT-P of the FedPrime paper), as pure functions.

The model is split into modules m: the three missing-aware prompt sets (complete, image missing,
text missing), the pooler and the head. For each module the server compares the participating
clients' parameters by scaled dot-product attention,

    A_m[k, l] = softmax_l( <theta_k^m, theta_l^m> / sqrt(d_m) ),

and mixes them with weights that also ask how similar the two clients are over all modules,

    w_m[k, l] = A_m[k, l] * s[k, l] / sum_l' A_m[k, l'] * s[k, l'],   s[k, l] = (1/M) sum_m' |A_m'[k, l]|,

so client k's personalised module is theta_k^m <- sum_l w_m[k, l] theta_l^m. (The paper's
formula normalises by the sum over l, as the official code's division; M = 5 modules.)
"""

from __future__ import annotations

import math

import torch

from fedbench.methods.base import State

# rows of MissingAwarePromptModule.prompts, in order (map_prompts._SET_OF_CODE)
PROMPT_MODULES = ("complete", "missing_image", "missing_text")


def module_of(key: str) -> str:
    """The module a tensor belongs to: its first name component (``pooler``, ``head``, ...)."""
    return key.split(".", 1)[0]


def module_vectors(state: State) -> dict[str, torch.Tensor]:
    """{module: all its parameters flattened into one float64 vector}; each prompt set is a module."""
    parts: dict[str, list[torch.Tensor]] = {}
    for key in sorted(state):
        value = state[key].detach().double()
        if key == "prompts":
            for row, name in enumerate(PROMPT_MODULES):
                parts.setdefault(name, []).append(value[row].flatten())
        else:
            parts.setdefault(module_of(key), []).append(value.flatten())
    return {name: torch.cat(vs) for name, vs in parts.items()}


def attention(states: list[State]) -> dict[str, torch.Tensor]:
    """{module: A_m [T, T]}, row k = softmax over l of <theta_k, theta_l> / sqrt(d)."""
    vectors = [module_vectors(s) for s in states]
    out = {}
    for name in vectors[0]:
        theta = torch.stack([v[name] for v in vectors])  # [T, d]
        out[name] = torch.softmax(theta @ theta.T / math.sqrt(theta.shape[1]), dim=1)
    return out


def mixing_weights(att: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """{module: w_m [T, T]}, rows summing to 1 (module docstring)."""
    s = torch.stack([a.abs() for a in att.values()]).mean(0)
    out = {}
    for name, a in att.items():
        w = a * s
        out[name] = w / w.sum(1, keepdim=True)
    return out


def personalise(states: list[State], weights: dict[str, torch.Tensor], k: int) -> State:
    """Client k's personalised state: every tensor the w_m[k]-weighted sum over clients."""
    out: State = {}
    for key, value in states[k].items():
        stack = torch.stack([s[key].detach().double() for s in states])  # [T, ...]
        if key == "prompts":
            rows = [
                torch.einsum("t,t...->...", weights[name][k], stack[:, row])
                for row, name in enumerate(PROMPT_MODULES)
            ]
            out[key] = torch.stack(rows).to(value.dtype)
        else:
            out[key] = torch.einsum("t,t...->...", weights[module_of(key)][k], stack).to(value.dtype)
    return out
