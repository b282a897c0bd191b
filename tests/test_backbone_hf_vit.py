"""The ViT backbone agrees with transformers' ViTModel, and prompts prepended by a method equal
PPT's shallow prompts after [CLS]. Tiny random models, saved and loaded like real weights."""

import pytest
import torch
from fixtures import tiny_data
from hf_fixtures import tiny_vit

from fedbench.backbones.hf_common import encoder_layers
from fedbench.batch import IMAGE_MISSING


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))


def _batch(bb, codes=(0, 0, 0)):
    bundle = bb.featurize(tiny_data())
    return bundle.batch(torch.arange(len(codes)), torch.tensor(codes))


def test_layers_match_vit_model():
    bb = tiny_vit()
    batch = _batch(bb)
    tokens, keep = bb.embed(batch)
    ours = bb.run_layers(tokens, keep)
    ref = bb.vit(pixel_values=bb.norm(batch["pixels"], batch["code"]))
    assert torch.allclose(ours, ref.last_hidden_state, atol=1e-5)
    assert torch.allclose(torch.tanh(bb.vit.pooler.dense(bb.readout(ours, 0))), ref.pooler_output, atol=1e-5)
    assert set(batch) == {"pixels", "row", "label", "code"}  # texts are not this backbone's business


def test_prepended_prompts_equal_prompts_after_cls():
    """PPT inserts shallow prompts after [CLS]; a method prepends them. Through ViTModel's own
    layers, [CLS, prompts, patches] gives the [CLS] our read-out gives for [prompts, CLS, patches]."""
    bb = tiny_vit()
    tokens, keep = bb.embed(_batch(bb))
    prompts = torch.randn(1, 4, bb.hidden_size).expand(len(tokens), -1, -1)

    def shallow(i, x, k):
        if i:
            return x, k
        return torch.cat([prompts, x], 1), torch.cat([torch.ones(prompts.shape[:2], dtype=torch.bool), k], 1)

    ours = bb.readout(bb.run_layers(tokens, keep, shallow), 4)
    h = torch.cat([tokens[:, :1], prompts, tokens[:, 1:]], 1)
    for layer in encoder_layers(bb.vit):
        out = layer(h)
        h = out[0] if isinstance(out, tuple) else out
    ref = bb.vit.layernorm(h)[:, 0]
    assert torch.allclose(ours, ref, atol=1e-5)
    assert not torch.allclose(ours, bb.readout(bb.run_layers(tokens, keep), 0))


def test_missing_image_and_other_sizes():
    bb = tiny_vit(image_size=48)
    batch = _batch(bb, codes=(0, IMAGE_MISSING))
    tokens, keep = bb.embed(batch)
    assert tokens.shape == (2, 1 + 9, bb.hidden_size)
    ones = bb.vit.embeddings(torch.ones(1, 3, 48, 48), interpolate_pos_encoding=True)[0]
    assert torch.allclose(tokens[1], ones, atol=1e-6)
    assert bb.run_layers(tokens, keep).isfinite().all()
