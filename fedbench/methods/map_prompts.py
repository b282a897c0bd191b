"""Missing-aware prompts (MAP, Lee et al. CVPR 2023): the client model of FedAvg-P and friends.

Three prompt sets, one per missing pattern (complete, text missing, image missing), each with
``prompt_length`` tokens at each of the first ``prompt_layers`` layers. A sample uses the set of
its own pattern. Prompts are prepended before their layer and stay in the sequence (MAP's
"input" prompts accumulate), and the classifier reads the backbone's read-out token (the text [CLS])
behind the ``prompt_length * prompt_layers`` prompts prepended in front of it. Initialisation
follows MAP: zeros with a marker row of ones at token 0 (complete), 1 (image missing) or 2 (text
missing).
Trainable: the prompts, the pooler (from the backbone's pretrained pooler) and the head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fedbench import checks
from fedbench.batch import COMPLETE
from fedbench.errors import ConfigError
from fedbench.methods.base import ClientModule
from fedbench.methods.heads import ClassifierHead, Pooler

MAP_NOTES = (
    "MAP's missing-aware prompts (one set per missing pattern, prompt_length tokens at each of the first "
    "prompt_layers layers: 4 x 3 here, MAP's 16 x 6 in its paper tables), the backbone's pooler and a head, "
    "AdamW at train.lr; FedAvg of every shared tensor by sample count. drop_incomplete=false: the incomplete "
    "pairs train with the missing-aware prompts of their pattern (true: complete pairs only, counted as the "
    "client's samples, as FedMVP's baselines; FedMVP's plan and tables set it)."
)

# prompt set row for each missing code (0 complete, 1 text missing, 2 image missing)
_SET_OF_CODE = torch.tensor([0, 2, 1])  # rows: 0 complete, 1 image-missing set, 2 text-missing set


@dataclass
class MAPOptions:
    """prompt_length, prompt_layers: tokens per prompted layer and layers prompted (MAP's paper and
    code: 16 and 6; 4 and 3 here, the emoji prototype's). drop_incomplete: train on complete pairs
    only, and count only those as the client's samples: FedMVP's baselines drop the pairs with a
    missing modality (the train set is ``random_split`` to 1 - beta, FedMVP
    ``main_fed.py:79-80, 104-105``)."""

    prompt_length: int = 4
    prompt_layers: int = 3
    drop_incomplete: bool = False

    # what the shared smoke test uses on the tiny fixture (a 2-layer backbone); subclasses inherit it
    TEST_OPTIONS = {"prompt_length": 2, "prompt_layers": 1}
    # options added after records existed, at the value that keeps the earlier behaviour
    # (federation.resolve.neutral_dropped)
    IDENTITY_NEUTRAL = {"drop_incomplete": False}

    def validate(self) -> None:
        checks.at_least("method.options.prompt_length", self.prompt_length, 1, "4")
        checks.at_least("method.options.prompt_layers", self.prompt_layers, 0, "3")


class MissingAwarePromptModule(ClientModule):
    def __init__(self, backbone, num_classes, train, options: MAPOptions):
        super().__init__(backbone, num_classes, train, options)
        if options.prompt_layers > backbone.num_layers:
            raise ConfigError(
                f"method.options.prompt_layers: {options.prompt_layers} exceeds the backbone's "
                f"{backbone.num_layers} layers; try {backbone.num_layers} or fewer"
            )
        h, p, layers = backbone.hidden_size, options.prompt_length, options.prompt_layers
        prompts = torch.zeros(3, layers, p, h)
        for row in range(3):  # MAP's marker rows; with fewer than 3 tokens the marker wraps
            prompts[row, :, row % p, :] = 1.0
        self.prompts = nn.Parameter(prompts)
        self.pooler = Pooler(h, backbone.pooler_state())
        self.head = ClassifierHead(h, num_classes)

    def train_mask(self, codes):
        return (codes == COMPLETE) if self.options.drop_incomplete else None

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens, keep = self.backbone.embed(batch)
        chosen = self.prompts[_SET_OF_CODE.to(batch["code"].device)[batch["code"]]]  # [B, layers, P, H]
        n_layers = self.options.prompt_layers

        def prompter(i: int, x: torch.Tensor, k: torch.Tensor):
            if i >= n_layers:
                return x, k
            p = chosen[:, i].to(x.dtype)
            ones = torch.ones(p.shape[:2], dtype=torch.bool, device=k.device)
            return torch.cat([p, x], 1), torch.cat([ones, k], 1)

        hidden = self.backbone.run_layers(tokens, keep, prompter)
        return self.head(self.pooler(self.backbone.readout(hidden, self.options.prompt_length * n_layers)))
