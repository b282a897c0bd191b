"""FedMVP (Che, Wang, Liu, Ma; ECML-PKDD 2024): frozen encoders, modality completion before
federation, a small multimodal client network trained with MCM and RAM losses, and CKA-graph
aggregation on the server (reference/methods.md §4). Not a prompt-tuning method.

- :mod:`.config`: ``FedMVPOptions``, the paper's defaults and the named code-vs-paper choices;
- :mod:`.losses`, :mod:`.network`, :mod:`.optim`: the MCM and RAM losses, the client network
  over frozen features, AdamW with cosine over the local epochs;
- :mod:`.features`, :mod:`.completion`, :mod:`.prepare`: frozen per-modality features of every
  row, modality completion (retrieval, none, impute) with its quality, both cached on disk, run
  once by the aggregator before the first round;
- :mod:`.generate`: the captioner / text-to-image completer for GPU machines (not wired to a
  backbone yet);
- :mod:`.client`, :mod:`.aggregator`, :mod:`.server`: the client module and the CKA-graph server.

Registered: ``fedmvp``; ``fedmvp-fedavg`` (the same client, FedAvg's sample-count weights);
ablations ``fedmvp-nomcm`` and ``fedmvp-noram``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedbench.methods.fedmvp.aggregator import FedMVPAggregator
from fedbench.methods.fedmvp.client import FedMVPModule
from fedbench.methods.fedmvp.config import FedMVPOptions
from fedbench.methods.registry import BenchPlan, MethodSpec, PaperTable, register

__all__ = ["FedMVPAggregator", "FedMVPModule", "FedMVPOptions", "PLAN"]


@dataclass
class FedMVPFedAvgOptions(FedMVPOptions):
    use_cka: bool = False


@dataclass
class FedMVPNoMCMOptions(FedMVPOptions):
    use_mcm: bool = False


@dataclass
class FedMVPNoRAMOptions(FedMVPOptions):
    use_ram: bool = False


NAMES = ("fedmvp", "fedmvp-fedavg", "fedmvp-nomcm", "fedmvp-noram")

# The tiny 2-layer fixture (hidden 32) and the emoji quick profile use small networks: the paper's
# sizes (latent 512, embed 256, 3 joint layers) are about 13.4M parameters, 54 MB per client per
# round. The quick profile's 5 rounds give a client about 150 local steps in all, against the
# paper's tens of thousands, so it also raises the learning rate (2e-4 reaches about 0.55 IID
# accuracy on emoji in that budget, 1e-3 about 0.75).
TEST_OPTIONS = {"latent_dim": 32, "embed_dim": 16, "num_heads": 2, "joint_layers": 1}
QUICK_OPTIONS = {
    "latent_dim": 128,
    "embed_dim": 64,
    "num_heads": 2,
    "joint_layers": 1,
    "local_epochs": 10,
    "lr": 1e-3,
}
FULL_OPTIONS = {"local_epochs": 10}

# FedMVP's protocol: a fraction beta of the training pairs misses a modality, half the image and
# half the text (per-sample, type both, both_ratio 0.5); 10 clients, half per round; IID and
# label-shard (2 shards per client) partitions as a sweep axis.
_PROTOCOL = {
    "partition": {"n_clients": 10, "shards_per_client": 2},
    "federation": {"client_fraction": 0.5, "clients_per_round": None},
    "missing": {"both_ratio": 0.5},
}
_PARTITIONS = {"partition": [{"name": "iid"}, {"name": "shards"}]}
# the paper's baselines train on the complete pairs only (FedMVP main_fed.py:79-80, 104-105)
BASELINE_OPTIONS = {"fedavg": {"drop_incomplete": True}, "fedprox": {"drop_incomplete": True}}


def _profile(rates, seeds, rounds, options) -> dict:
    return {
        "rates": rates,
        "seeds": seeds,
        "axes": _PARTITIONS,
        "per_method": {**{name: dict(options) for name in NAMES}, **BASELINE_OPTIONS},
        "overrides": {**_PROTOCOL, "federation": {**_PROTOCOL["federation"], "rounds": rounds}},
    }


PLAN = BenchPlan(
    baselines=("fedmvp-fedavg", "fedavg", "fedprox"),
    ablations=("fedmvp-nomcm", "fedmvp-noram"),
    types=("both",),
    protocol="per_sample",
    # results/curves (rate 0.5, both partitions, 40 rounds): FedMVP's own variants plateau by round 10
    # IID, the MAP baselines at 33; under shards fedmvp-fedavg and fedmvp-noram at 35, the latest
    record_rounds=35,
    profiles={
        "quick": _profile([0.2, 0.5, 0.8], [0], 5, QUICK_OPTIONS),
        "full": _profile([0.2, 0.5, 0.8], [0, 1, 2], 20, FULL_OPTIONS),
    },
    # FedMVP's main table on CUB-200 and Oxford-102 with captions: several beta, IID and non-IID
    # (the beta values follow experiments/fedmvp_*.yaml until the paper's table is transcribed)
    tables={
        dataset: PaperTable(
            f"experiments/fedmvp_{dataset}.yaml",
            {"missing.rate": [0.2, 0.4, 0.6, 0.8], **_PARTITIONS},
            per_method=BASELINE_OPTIONS,
        )
        for dataset in ("cub200", "flowers102")
    },
    headline="complete",  # the paper tests on complete data
)

NOTES = (
    "Not a prompt method: a small multimodal network (two pooled-feature mappings, a joint encoder "
    "with image self-attention, image<->text cross-attention and joint layers over the frozen "
    "backbone's text and image tokens, a shared L2-normalising encoder, a residual classifier) "
    "trained with CE + MCM (alpha 0.01, tau 0.1) + RAM (beta 0.5), a fresh AdamW with cosine "
    "annealing over the local epochs every fit. Missing modalities are completed once before "
    "federation (completer=retrieval, the offline stand-in for the paper's generative models): a "
    "missing image takes the image of the server-pool item whose text is nearest the sample's text, "
    "a missing text likewise from the image (retrieval_via=partner; cross matches text to image "
    "directly); the pool is the held-out split no client, validation or test split holds (emoji: the "
    "25% that pretrained the image projection). Test samples are completed the same way. The quality "
    "of the completion against the held-back true modality is in each record's rounds (completion: "
    "label agreement, cosine, partner top-1, train split). The server runs every uploaded network on "
    "the pool's complete pairs and averages all tensors with w_i = g_i / sum g, g_i = sum_j CKA_ij "
    "(linear CKA of h_J; sample counts ignored, as the official code; a collapsed client gets CKA 0); "
    "fedmvp-fedavg uses sample counts instead. Choices: the joint encoder scales its input tokens by "
    "sqrt(width) as MulT (embed_scale=inverse_sqrt is the official 1/sqrt(width), which learns far "
    "slower); the joint embedding is the mean of normalised tokens (official); the emoji bench runs "
    "FedMVP with its own 10 local epochs (method option local_epochs) and lr 1e-3 in the quick profile "
    "(the paper's 2e-4 needs many more rounds), small widths (latent 128, embed 64, one joint layer), "
    "and the MAP baselines keep their own recipe; they train on the complete pairs only "
    "(drop_incomplete=true, as the paper's baselines drop the pairs with a missing modality; "
    "completer=none does that for FedMVP's network). The board's headline is the complete test "
    "condition (the paper tests on complete data). joint_image=tokens: the joint encoder reads the "
    "backbone's frozen image tokens (joint_image=pixels: raw pixels through a 16x16 convolution trained "
    "from scratch, the official branch); image_head=trained (image_head=frozen: the official random, "
    "frozen Linear to h_I); with CLIP the joint encoder reads the text tower's token states "
    "(backbone.options.text_tokens=states). The train.lr, train.weight_decay and train.lr_schedule "
    "settings do not apply to FedMVP."
)


def _spec(name: str, options: type, description: str) -> MethodSpec:
    return register(
        MethodSpec(
            name=name,
            client=FedMVPModule,
            aggregator=FedMVPAggregator,
            options=options,
            description=description,
            notes=NOTES,
            bench_plan=PLAN,
            test_options=TEST_OPTIONS,
            requires=frozenset({"multimodal", "modality_features"}),
            needs_server_context=True,
        )
    )


FEDMVP = _spec(
    "fedmvp",
    FedMVPOptions,
    "FedMVP: completed modalities, MCM/RAM client network on frozen features, CKA-graph aggregation",
)
FEDMVP_FEDAVG = _spec(
    "fedmvp-fedavg",
    FedMVPFedAvgOptions,
    "FedMVP's client aggregated by FedAvg (sample counts) instead of CKA",
)
FEDMVP_NOMCM = _spec("fedmvp-nomcm", FedMVPNoMCMOptions, "FedMVP ablation: without the MCM contrastive loss")
FEDMVP_NORAM = _spec("fedmvp-noram", FedMVPNoRAMOptions, "FedMVP ablation: without the RAM margin loss")
