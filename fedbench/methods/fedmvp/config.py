"""FedMVP's options (methods.md §4) with the paper's defaults. Where the official code does
something else that changes results, the code's behaviour is one named value away, so both can be
reported under their own settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from fedbench import checks
from fedbench.errors import ConfigError

FUSIONS = ("sequence", "tokens")
JOINT_KV = ("input", "self")
JOINT_POOLS = ("normalise_then_mean", "mean_then_normalise")
EMBED_SCALES = ("sqrt", "inverse_sqrt")
COSINE_STEPS = ("epoch", "batch")
COMPLETERS = ("retrieval", "none", "impute", "generate")
RETRIEVAL_VIA = ("partner", "cross")
CKA_REPRESENTATIONS = ("joint", "all", "logits")
JOINT_IMAGES = ("tokens", "pixels")
IMAGE_HEADS = ("trained", "frozen")


@dataclass
class FedMVPOptions:
    """Settings of the FedMVP client network, its losses, completion and the server.

    latent_dim, embed_dim: width of the common space and classifier (512) and of the joint
        encoder's cross-attention tokens (256), as the official code.
    num_heads: heads of the image self-attention and the two cross-attentions (4); the joint
        layers use twice as many (8), as the official code.
    joint_layers: transformer layers over the fused tokens (3; 0: the cross-attention fusion alone,
        normalised, the probe of what the joint layers add).
    dropout: dropout inside the residual classifier (0.1).
    fusion: how the two cross-attention streams are joined. "tokens" concatenates them token by
        token to 2 * embed_dim (official; needs as many image tokens as text tokens and
        latent_dim == 2 * embed_dim: 256 patches and 256 BERT tokens there); "sequence" maps each
        stream to latent_dim and concatenates along the sequence, which works for any lengths.
    joint_kv: keys and values of the joint layers. "input" attends every layer to the fused
        input tokens (official, a MulT-style encoder); "self" is ordinary self-attention.
    embed_scale: what the joint encoder multiplies its input tokens by before adding sinusoidal
        positions. "sqrt" is sqrt(width), as MulT (whose TransformerEncoder the official code
        also ships); "inverse_sqrt" is 1/sqrt(width), as the official ``Transformer_JointEncoder``.
        The paper does not say. With 1/sqrt(width) the positions outweigh the content about
        tenfold at initialisation and the network needs far more steps than a benchmark
        affords: on emoji's frozen features, 300 centralised steps at lr 2e-4 reach about 0.80
        test accuracy with "sqrt" and 0.50 with "inverse_sqrt".
    joint_pool: "normalise_then_mean" averages the L2-normalised joint tokens, so h_J is not of
        unit norm (official); "mean_then_normalise" normalises the mean (the paper's "all
        features are L2-normalised").
    lr, weight_decay: AdamW (2e-4; torch's default decay 0.01, which the official code keeps).
        They replace train.lr / train.weight_decay and the round schedule (train.lr_schedule):
        every fit starts a fresh AdamW at ``lr``, as the official code.
    local_epochs: local epochs of one client fit (the paper: 10). None follows
        federation.local_epochs; a number lets FedMVP keep its recipe beside baselines that a
        benchmark runs with fewer (the emoji bench: its prompt-tuning baselines cost about a
        hundred times more per step), and is recorded with the method's options.
    cosine_step: "epoch" anneals the learning rate once per local epoch over the local epochs
        (the paper); "batch" steps the same CosineAnnealingLR(T_max=local epochs) after every
        batch (official), so the rate cycles with a period of 2 * local epochs batches.
    alpha, tau: weight (0.01) and temperature (0.1) of the MCM loss.
    beta: weight of the RAM loss (0.5).
    use_mcm, use_ram, use_cka: ablation switches; use_cka=False aggregates with FedAvg's sample
        counts instead of CKA-graph weights.
    completer: "retrieval" fills a missing modality from a server-held public pool; "none" drops
        the incomplete pairs (the paper's baselines); "impute" keeps them with the backbone's
        missing input; "generate" captions images / draws texts with generative models (the
        paper's completion; GPU machines).
    retrieval_via: "partner" matches the present modality against the pool's same modality and
        takes that item's other modality; "cross" matches across modalities directly (needs
        keys in a shared space, e.g. CLIP).
    cka_representation: what the server compares between clients on its own split: "joint"
        h_J, "all" [h_I, h_T, h_J] concatenated, or "logits". The official server asks the model
        for a ``last_hidden_state`` it does not have, so this is fedbench's choice.
    joint_image: what the joint encoder's image branch reads. "tokens": the frozen backbone's
        image tokens through a trainable Linear (fedbench: the foundation model's features reach
        the classifier path); "pixels": the raw image, squashed to ``pixel_size`` and scaled to
        [-1, 1], through a ``patch_size`` x ``patch_size`` convolution trained from scratch, as
        the official ``PatchEmbedding`` (``models/fedmvp.py:496-508``, used at 95 and 600; images
        ``x / 255 * 2 - 1`` resized to 224, ``utils/dataset_utils.py:465-476``), so the frozen
        ViT reaches only h_I. The official training augmentations (rotation, flips, colour
        jitter) are not reproduced. A missing image (completer none / impute) is the constant 1.
    image_head: the Linear that maps the frozen image feature to h_I. "trained" (fedbench);
        "frozen": the official code replaces the ViT's head with a new random Linear
        (``models/fedmvp.py:75``) before it freezes every parameter created so far (79-80), so the
        head stays at its random initialisation (the layers created after, 82-83 and on, train).
    """

    latent_dim: int = 512
    embed_dim: int = 256
    num_heads: int = 4
    joint_layers: int = 3
    dropout: float = 0.1
    fusion: str = "sequence"
    joint_kv: str = "input"
    embed_scale: str = "sqrt"
    joint_pool: str = "normalise_then_mean"
    lr: float = 2e-4
    weight_decay: float = 0.01
    local_epochs: int | None = None
    cosine_step: str = "epoch"
    alpha: float = 0.01
    tau: float = 0.1
    beta: float = 0.5
    use_mcm: bool = True
    use_ram: bool = True
    use_cka: bool = True
    completer: str = "retrieval"
    retrieval_via: str = "partner"
    cka_representation: str = "joint"
    joint_image: str = "tokens"
    pixel_size: int = 224
    patch_size: int = 16
    image_head: str = "trained"

    # options added after records existed, at the value that keeps the earlier behaviour
    # (federation.resolve.neutral_dropped)
    IDENTITY_NEUTRAL = {"joint_image": "tokens", "pixel_size": 224, "patch_size": 16, "image_head": "trained"}

    def validate(self) -> FedMVPOptions:
        for name, default, low in (
            ("latent_dim", 512, 1),
            ("embed_dim", 256, 1),
            ("num_heads", 4, 1),
            ("joint_layers", 3, 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int):
                raise ConfigError(
                    f"method.options.{name}: must be an integer >= {low}, got {value!r}; try {default}"
                )
            checks.at_least(f"method.options.{name}", value, low, str(default))
        for name, width in (("embed_dim", self.embed_dim), ("latent_dim", self.latent_dim)):
            heads = self.num_heads * (2 if name == "latent_dim" else 1)
            if width % heads:
                raise ConfigError(
                    f"method.options.{name}: {width} is not divisible by {heads} attention heads; "
                    "try changing it or method.options.num_heads"
                )
        if self.fusion == "tokens" and self.latent_dim != 2 * self.embed_dim:
            raise ConfigError(
                "method.options.fusion: 'tokens' needs latent_dim == 2 * embed_dim, got "
                f"{self.latent_dim} and {self.embed_dim}; "
                f"try latent_dim {2 * self.embed_dim} or fusion sequence"
            )
        checks.within("method.options.dropout", self.dropout, 0.0, 1.0, open_hi=True, hint="0.1")
        if self.local_epochs is not None and (
            isinstance(self.local_epochs, bool) or not isinstance(self.local_epochs, int)
        ):
            raise ConfigError(
                "method.options.local_epochs: must be an integer >= 1 or null, "
                f"got {self.local_epochs!r}; try 10"
            )
        checks.at_least(
            "method.options.local_epochs", self.local_epochs, 1, "10", null="federation.local_epochs"
        )
        checks.positive("method.options.lr", self.lr, "2e-4")
        checks.positive("method.options.tau", self.tau, "0.1")
        for name, default in (("weight_decay", "0.01"), ("alpha", "0.01"), ("beta", "0.5")):
            checks.at_least(f"method.options.{name}", getattr(self, name), 0, default)
        for name, allowed in (
            ("fusion", FUSIONS),
            ("joint_kv", JOINT_KV),
            ("embed_scale", EMBED_SCALES),
            ("joint_pool", JOINT_POOLS),
            ("cosine_step", COSINE_STEPS),
            ("completer", COMPLETERS),
            ("retrieval_via", RETRIEVAL_VIA),
            ("cka_representation", CKA_REPRESENTATIONS),
            ("joint_image", JOINT_IMAGES),
            ("image_head", IMAGE_HEADS),
        ):
            checks.choice(f"method.options.{name}", getattr(self, name), allowed)
        checks.at_least("method.options.patch_size", self.patch_size, 1, "16")
        if self.pixel_size < self.patch_size or self.pixel_size % self.patch_size:
            raise ConfigError(
                f"method.options.pixel_size: {self.pixel_size} is not a positive multiple of "
                f"patch_size={self.patch_size}; try 224 and 16"
            )
        for name in ("use_mcm", "use_ram", "use_cka"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(
                    f"method.options.{name}: must be true or false, got {getattr(self, name)!r}; try true"
                )
        return self
