"""FedOpt-PT: a server Adam on the averaged pseudo-gradient of the VPT prompts and head.

The maths is :mod:`fedbench.aggregation.fedopt` (FedAdam, checked there against torch.optim.Adam).
Here: the round's pseudo-gradient g = x - mean_i(y_i) (client means weighted by samples, as PFPT)
feeds one server Adam step; the Adam state (step, m, v) is the aggregator's server state, saved
with every round's checkpoint and restored on resume, so a resumed run takes the same steps.

``client_start``: "server" (Reddi et al.): clients start from the Adam-updated model, which is also
the evaluated one. "mean" (PFPT's code): clients start from the plain weighted mean of the last
round (sent as the ``start`` payload, kept in the server state) and only the evaluated server
model takes Adam steps. ``official=True``-style settings are PFPT's lr 5e-5, betas (0.9, 0.98),
eps 1e-6 with bias correction; with 5e-5 per coordinate and step the server model barely leaves
its initialisation in a short run, which is why fedbench's default steps are larger.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedbench import checks
from fedbench.aggregation.fedopt import FedAdamOptions, fedadam_step
from fedbench.aggregation.weighted import weighted_mean
from fedbench.errors import ConfigError
from fedbench.methods.base import Aggregator, ClientUpdate, State
from fedbench.methods.prompt_baselines.vpt import VPTOptions

CLIENT_STARTS = ("server", "mean")
_START = "start/"


@dataclass
class FedOptPTOptions(VPTOptions):
    """Server Adam: server_lr, beta1, beta2, eps, bias_correction (see the module docstring and
    aggregation/fedopt.py; PFPT: 5e-5, 0.9, 0.98, 1e-6, True); client_start: "server" or "mean"."""

    server_lr: float = 1e-2
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-3
    bias_correction: bool = False
    client_start: str = "server"

    def validate(self) -> None:
        super().validate()
        checks.choice("method.options.client_start", self.client_start, CLIENT_STARTS)
        try:
            self.adam()
        except ValueError as err:
            raise ConfigError(f"method.options: {err}") from None

    def adam(self) -> FedAdamOptions:
        return FedAdamOptions(
            lr=self.server_lr,
            betas=(self.beta1, self.beta2),
            eps=self.eps,
            bias_correction=self.bias_correction,
        )


class FedOptPTAggregator(Aggregator):
    """Server Adam over every shared tensor; the Adam state is the server state."""

    def __init__(self, options: FedOptPTOptions, context=None):
        super().__init__(options, context)
        self.adam_state: State | None = None
        self.start: State = {}  # the last plain mean, for client_start="mean"

    def configure_fit(
        self, round_index: int, clients: list[int], global_state: State
    ) -> dict[int, dict[str, Any]]:
        if self.options.client_start != "mean" or not self.start:
            return {}
        return {k: {"start": self.start} for k in clients}

    def aggregate(
        self, global_state: State, updates: list[ClientUpdate], round_index: int, seed: int
    ) -> State:
        states, weights = [u.state for u in updates], [u.n_samples for u in updates]
        new_x, self.adam_state = fedadam_step(
            global_state, states, weights, self.adam_state, self.options.adam()
        )
        if self.options.client_start == "mean":
            self.start = weighted_mean(states, weights)
        return new_x

    def server_state(self) -> State:
        out = dict(self.adam_state or {})
        out.update({_START + k: v for k, v in self.start.items()})
        return out

    def load_server_state(self, state: State) -> None:
        self.start = {k[len(_START) :]: v for k, v in state.items() if k.startswith(_START)}
        adam = {k: v for k, v in state.items() if not k.startswith(_START)}
        self.adam_state = adam or None

    def metadata(self) -> dict[str, Any]:
        return {"server_steps": int(self.adam_state["step"])} if self.adam_state else {}
