"""pFedPG's options (Yang et al., ICCV 2023, as PFPT's baseline code runs it)."""

from __future__ import annotations

from dataclasses import dataclass

from fedbench import checks

GENERATOR_UPDATES = ("per_client", "mean")


@dataclass
class PFedPGOptions:
    """n_tokens: generated prompt tokens (PFPT 10, ``--n_tokens``); key_dim: the generator's
    attention width (``k_dim = v_dim = 512``, ``main.py:298-300``); adaptor_width, adaptor_dropout:
    the personal head (512, 0.5); prompt_lr: the generator's Adam lr (``--prompt_lr`` 1e-3).
    generator_update: "per_client" takes one generator step per client of the round, in the
    round's client order, each with the gradient at the generator the round started from (the
    code trains one client per step, so with one client per round it is the code exactly, and 10
    clients x 120 rounds give the code's 1,200 steps); "mean": one step on the clients' mean
    gradient."""

    n_tokens: int = 10
    key_dim: int = 512
    adaptor_width: int = 512
    adaptor_dropout: float = 0.5
    prompt_lr: float = 1e-3
    generator_update: str = "per_client"

    TEST_OPTIONS = {"n_tokens": 2, "key_dim": 8, "adaptor_width": 16}

    def validate(self) -> None:
        checks.at_least("method.options.n_tokens", self.n_tokens, 1, "10")
        checks.at_least("method.options.key_dim", self.key_dim, 1, "512")
        checks.at_least("method.options.adaptor_width", self.adaptor_width, 1, "512")
        checks.within(
            "method.options.adaptor_dropout", self.adaptor_dropout, 0.0, 1.0, open_hi=True, hint="0.5"
        )
        checks.positive("method.options.prompt_lr", self.prompt_lr, "1e-3")
        checks.choice("method.options.generator_update", self.generator_update, GENERATOR_UPDATES)
