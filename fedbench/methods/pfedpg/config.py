"""pFedPG's options (Yang et al., ICCV 2023, as PFPT's baseline code runs it)."""

from __future__ import annotations

from dataclasses import dataclass

from fedbench.errors import ConfigError

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
        if self.n_tokens < 1 or self.key_dim < 1 or self.adaptor_width < 1:
            raise ConfigError(
                f"method.options.n_tokens, key_dim and adaptor_width must be >= 1, got {self.n_tokens}, "
                f"{self.key_dim}, {self.adaptor_width} (try 10, 512, 512)"
            )
        if not 0 <= self.adaptor_dropout < 1:
            raise ConfigError(
                f"method.options.adaptor_dropout must be in [0, 1), got {self.adaptor_dropout} (try 0.5)"
            )
        if not self.prompt_lr > 0:
            raise ConfigError(f"method.options.prompt_lr must be > 0, got {self.prompt_lr} (try 1e-3)")
        if self.generator_update not in GENERATOR_UPDATES:
            raise ConfigError(
                f"method.options.generator_update: {self.generator_update!r} is not valid; choose one of "
                f"{', '.join(GENERATOR_UPDATES)}"
            )
