"""pFedPG's server-side prompt generator and its hypernetwork update (Yang et al., ICCV 2023).

The generator (``Models/pFedPG_model.py:98-130`` of PeiYauWeng/PFPT and of its baseline
repository; the paper's Fig. 2: a prompt basis, a bank of client descriptors, a generator):

    K = P_base W_k,  V = P_base W_v,  q = d_n W_q            (no biases)
    a = softmax(q K^T / sqrt(k_dim))                          [1, N_tokens]
    P_n = P_base + W_out(a V) + b_out                         [N_tokens, H]

so every token of client n's prompts is shifted by the same vector W_out(a V) + b_out. Base
prompts start U(-v, v) with PFPT's v (``prompt_init_bound``), descriptors U(-1, 1), the linear
maps at torch's default init.

The update (``util/train_eval.py:358-369``): a client starts its local epochs from P_n, ends at
P~_n, and the generator's parameters phi take one Adam step (torch's defaults betas (0.9, 0.999),
eps 1e-8; lr ``prompt_lr`` 1e-3) along (dP_n / dphi)^T (P_n - P~_n), i.e. towards generating
P~_n. The Adam covers the whole descriptor table, so the rows of clients not trained this step
still move with their decaying moments, as torch's Adam does in the code.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from fedbench.methods.ppt.prompted import prompt_init_bound

CORE = ("base_prompts", "to_k.weight", "to_v.weight", "to_q.weight", "to_out.weight", "to_out.bias")
DESCRIPTORS = "descriptors"
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which the code uses


class PromptGenerator(nn.Module):
    """P_n = P_base + W_out(softmax(d_n W_q (P_base W_k)^T / sqrt(k)) P_base W_v) for descriptor d_n."""

    def __init__(self, n_tokens: int, hidden: int, key_dim: int):
        super().__init__()
        v = prompt_init_bound(hidden)
        self.base_prompts = nn.Parameter(torch.empty(n_tokens, hidden).uniform_(-v, v))
        self.to_k = nn.Linear(hidden, key_dim, bias=False)
        self.to_v = nn.Linear(hidden, key_dim, bias=False)
        self.to_q = nn.Linear(hidden, key_dim, bias=False)
        self.to_out = nn.Linear(key_dim, hidden)
        self.scale = key_dim**-0.5

    def forward(self, descriptor: Tensor) -> Tensor:
        """descriptor [H] -> prompts [N_tokens, H]."""
        k, v = self.to_k(self.base_prompts), self.to_v(self.base_prompts)
        attention = torch.softmax(self.to_q(descriptor[None]) @ k.T * self.scale, dim=-1)  # [1, N_tokens]
        return self.base_prompts + self.to_out(attention @ v)


def generate(core: dict[str, Tensor], descriptor: Tensor) -> Tensor:
    """The generator's output for ``descriptor`` from its core tensors (``CORE``), differentiable."""
    k, v = core["base_prompts"] @ core["to_k.weight"].T, core["base_prompts"] @ core["to_v.weight"].T
    attention = torch.softmax(
        (descriptor[None] @ core["to_q.weight"].T) @ k.T / math.sqrt(k.shape[-1]), dim=-1
    )
    return core["base_prompts"] + (attention @ v) @ core["to_out.weight"].T + core["to_out.bias"]


def generator_gradients(
    core: dict[str, Tensor], table: Tensor, client: int, delta: Tensor
) -> dict[str, Tensor]:
    """(dP_client / dphi)^T delta for every core tensor and the descriptor table (``DESCRIPTORS``;
    zero outside the client's row): the code's ``torch.autograd.grad(generated, params, delta)``."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in core.items()}
    rows = table.detach().clone().requires_grad_(True)
    out = generate(leaves, rows[client])
    grads = torch.autograd.grad(out, [*leaves.values(), rows], grad_outputs=delta.to(out.dtype))
    return {**dict(zip(leaves, grads[:-1], strict=True)), DESCRIPTORS: grads[-1]}


def adam_step(
    params: dict[str, Tensor], grads: dict[str, Tensor], state: dict[str, Tensor], lr: float
) -> None:
    """One step of torch's Adam (no weight decay, no amsgrad) on ``params`` in place; ``state``
    holds ``step`` and per-tensor ``m/<name>``, ``v/<name>`` (created at zero on the first step)."""
    b1, b2 = ADAM_BETAS
    t = int(state.get("step", torch.zeros(())).item()) + 1
    state["step"] = torch.tensor(float(t))
    for name, g in grads.items():
        m = state.setdefault(f"m/{name}", torch.zeros_like(params[name]))
        v = state.setdefault(f"v/{name}", torch.zeros_like(params[name]))
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (v / (1 - b2**t)).sqrt().add_(ADAM_EPS)
        params[name].addcdiv_(m, denom, value=-lr / (1 - b1**t))
