"""One federated round of the methods the experiments run on each transformers backbone (on its
tiny stand-in and the ``tiny`` dataset), and the one-line refusal of a multimodal method on the
image-only ViT."""

from dataclasses import replace

import pytest
from fixtures import register_tiny
from hf_fixtures import register_hf_tiny

from fedbench.backbones.registry import BACKBONES
from fedbench.errors import ConfigError
from fedbench.federation.loop import run_experiment
from fedbench.federation.resolve import validate
from fedbench.methods.registry import METHODS

IMAGE_ONLY = "fedavg-image-only"  # fedavg's prompts with an image-only requirement, as PPT will have


@pytest.fixture
def hf_cfg(tiny_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    register_tiny()
    register_hf_tiny()
    METHODS.register(replace(METHODS.get("fedavg"), name=IMAGE_ONLY, requires=frozenset({"prompts"})))
    yield tiny_cfg
    METHODS._specs.pop(IMAGE_ONLY, None)  # not seen by other tests' method lists


PAIRS = [
    ("fedavg", "vilt-tiny", None),
    ("fedavg", "vilt-tiny", {"prompt_length": 16, "prompt_layers": 2}),  # MAP's length, every tiny layer
    ("fedprime", "vilt-tiny", None),
    ("fedavg", "clip-tiny", None),
    ("fedprime", "clip-tiny", None),
    (IMAGE_ONLY, "vit-tiny", None),
]
# methods that may not be registered yet: FedPrime's official-code mode (padded query) and FedMVP
register_hf_tiny()
# (FedMVP trains on per-modality features: ViLT and CLIP offer them, the image-only ViT does not;
# tests/test_methods_smoke.py pairs every method with every backbone that supports it)
PAIRS += [
    (m, b, None)
    for m, b in (("fedprime-official", "vilt-tiny"), ("fedmvp", "vilt-tiny"), ("fedmvp", "clip-tiny"))
    if m in METHODS.names() and METHODS.get(m).supports(BACKBONES.get(b))
]


@pytest.mark.parametrize("method, backbone, options", PAIRS)
def test_one_round(hf_cfg, method, backbone, options):
    cfg = hf_cfg(method, rounds=1)
    cfg.backbone.name = backbone
    if options is not None:
        cfg.method.options = options
    if backbone == "vilt-tiny" and method == "fedprime":
        cfg.backbone.options = {"max_image_len": 3}  # FedPrime samples patches (40 of ViLT's)
    record = run_experiment(cfg)
    assert record["backbone"] == backbone and len(record["rounds"]) == 1
    for metrics in record["final"].values():
        assert 0.0 <= metrics["accuracy"] <= 1.0
    assert record["rounds"][0]["bytes_up"] > 0 or METHODS.get(method).local_only


def test_multimodal_methods_refuse_the_image_only_vit(hf_cfg):
    cfg = hf_cfg("fedavg", rounds=1)
    cfg.backbone.name = "vit-tiny"
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert "\n" not in str(err.value) and "multimodal" in str(err.value) and "vit-tiny" in str(err.value)
