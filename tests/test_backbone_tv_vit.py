"""torchvision's vit_b_32 read from a checkpoint file (PPT's official backbone): the mapped model
computes what torchvision's VisionTransformer computes, written out here from torchvision's
definition (conv patches, class token, positions, pre-LN blocks with nn.MultiheadAttention on
in_proj, GELU MLP, final LN, the 1000-way head) on a random state dict in torchvision's layout."""

import pytest
import torch
import torch.nn.functional as F
from fixtures import tiny_data
from hf_fixtures import TV_HEAD, tiny_tv_vit, torchvision_vit_state

from fedbench.backbones.tv_vit import IMAGENET_MEAN_STD, TorchvisionViTOptions, build_torchvision_vit, centre
from fedbench.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))


def torchvision_forward(
    state: dict, images: torch.Tensor, heads: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """(final [CLS] after encoder.ln, head logits) of torchvision's VisionTransformer, eval mode."""
    x = F.conv2d(
        images, state["conv_proj.weight"], state["conv_proj.bias"], stride=state["conv_proj.weight"].shape[-1]
    )
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    x = torch.cat([state["class_token"].expand(len(x), -1, -1), x], 1) + state["encoder.pos_embedding"]
    hidden = x.shape[-1]
    i = 0
    while f"encoder.layers.encoder_layer_{i}.ln_1.weight" in state:
        pre = f"encoder.layers.encoder_layer_{i}."
        mha = torch.nn.MultiheadAttention(hidden, heads, batch_first=True)
        mha.in_proj_weight.data.copy_(state[pre + "self_attention.in_proj_weight"])
        mha.in_proj_bias.data.copy_(state[pre + "self_attention.in_proj_bias"])
        mha.out_proj.weight.data.copy_(state[pre + "self_attention.out_proj.weight"])
        mha.out_proj.bias.data.copy_(state[pre + "self_attention.out_proj.bias"])
        y = F.layer_norm(x, (hidden,), state[pre + "ln_1.weight"], state[pre + "ln_1.bias"], eps=1e-6)
        x = x + mha.eval()(y, y, y, need_weights=False)[0]
        y = F.layer_norm(x, (hidden,), state[pre + "ln_2.weight"], state[pre + "ln_2.bias"], eps=1e-6)
        key = "mlp.0" if pre + "mlp.0.weight" in state else "mlp.linear_1"
        y = F.gelu(F.linear(y, state[pre + key + ".weight"], state[pre + key + ".bias"]))
        key = "mlp.3" if pre + "mlp.3.weight" in state else "mlp.linear_2"
        x = x + F.linear(y, state[pre + key + ".weight"], state[pre + key + ".bias"])
        i += 1
    cls = F.layer_norm(x, (hidden,), state["encoder.ln.weight"], state["encoder.ln.bias"], eps=1e-6)[:, 0]
    return cls, F.linear(cls, state["heads.head.weight"], state["heads.head.bias"])


@pytest.mark.parametrize("legacy", [False, True])
def test_checkpoint_maps_onto_torchvision_forward(tmp_path, legacy):
    state = torchvision_vit_state(seed=3, legacy_mlp=legacy)
    path = tmp_path / "vit.pth"
    torch.save(state, path)
    bb = build_torchvision_vit(TorchvisionViTOptions(weights=str(path), resize=40, crop=32, heads=2))
    images = torch.randn(3, 3, 32, 32)
    tokens = bb.vit.embeddings(images).float()
    cls = bb.readout(bb.run_layers(tokens, torch.ones(tokens.shape[:2], dtype=torch.bool)), 0)
    ref_cls, ref_logits = torchvision_forward(state, images)
    assert torch.allclose(cls, ref_cls, atol=1e-5)
    assert bb.head_width == TV_HEAD and torch.allclose(bb.head_logits(cls), ref_logits, atol=1e-5)
    assert not any(p.requires_grad for p in bb.parameters())


def test_imagenet_transform_resize_then_centre_crop():
    bb = tiny_tv_vit()
    assert bb.norm.mean.flatten().tolist() == pytest.approx(IMAGENET_MEAN_STD[0])
    assert bb.norm.std.flatten().tolist() == pytest.approx(IMAGENET_MEAN_STD[1])
    bundle = bb.featurize(tiny_data())
    assert tuple(bundle.columns["pixels"][0:1].shape) == (1, 3, 40, 40)  # cached at the resize side
    grid = torch.arange(40 * 40).view(1, 1, 40, 40).expand(1, 3, 40, 40)
    assert (
        centre(grid, 32)[0, 0, 0, 0] == 4 * 40 + 4 and centre(grid, 32).shape[-1] == 32
    )  # offset (40 - 32) // 2
    batch = bundle.batch(torch.arange(2), torch.zeros(2, dtype=torch.long))
    tokens, _ = bb.embed(batch)
    expected = bb.vit.embeddings(bb.norm(batch["pixels"][..., 4:36, 4:36], batch["code"]))
    assert tokens.shape[1] == 1 + 4 and torch.allclose(tokens, expected, atol=1e-6)


def test_frozen_head_off_and_missing_file(tmp_path):
    assert tiny_tv_vit(frozen_head=False).head_width is None
    with pytest.raises(ConfigError, match="weights"):
        build_torchvision_vit(TorchvisionViTOptions())
    with pytest.raises(DataError, match="does not exist"):
        build_torchvision_vit(TorchvisionViTOptions(weights=str(tmp_path / "nope.pth")))
