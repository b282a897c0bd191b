"""The CLIP backbone agrees with transformers' CLIPModel: its image-tower loop with the vision
model, its read-out with image_embeds + text_embeds in the joint space, and its frozen features
with the towers' pooled outputs. Tiny random models, saved and loaded like real weights."""

import pytest
import torch
from fixtures import tiny_data
from hf_fixtures import tiny_clip

from fedbench.batch import COMPLETE, IMAGE_MISSING, TEXT_MISSING


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))


def _batch(bb, codes=(0, 0, 0, 0)):
    data = tiny_data()
    bundle = bb.featurize(data)
    return data, bundle.batch(torch.arange(len(codes)), torch.tensor(codes))


def _hf_text(bb, texts):
    tok = bb.tokenizer(texts, padding=True, return_tensors="pt")
    return bb.clip.text_projection(bb.clip.text_model(**tok).pooler_output)


def test_image_tower_matches_clip_vision_model():
    bb = tiny_clip(fuse_text=False)
    _, batch = _batch(bb)
    tokens, keep = bb.embed(batch)
    ours = bb.run_layers(tokens, keep)
    ref = bb.vision(pixel_values=bb.norm(batch["pixels"], batch["code"]))
    assert torch.allclose(ours, ref.last_hidden_state, atol=1e-5)
    assert torch.allclose(bb.readout(ours, 0), ref.pooler_output, atol=1e-5)


def test_fused_readout_is_image_plus_text_in_the_joint_space():
    bb = tiny_clip()
    data, batch = _batch(bb, codes=(COMPLETE, TEXT_MISSING, IMAGE_MISSING))
    tokens, keep = bb.embed(batch)
    hidden = bb.run_layers(tokens, keep)
    vision = bb.vision(pixel_values=bb.norm(batch["pixels"], batch["code"]))
    assert torch.allclose(
        hidden[:, 1:], vision.last_hidden_state, atol=1e-5
    )  # the text token skips the layers
    image_embeds = bb.clip.visual_projection(vision.pooler_output)
    text_embeds = _hf_text(bb, [data.texts[0], "", data.texts[2]])  # a missing text is ''
    joint = bb.clip.visual_projection(bb.readout(hidden, 0))
    assert torch.allclose(joint, image_embeds + text_embeds, atol=1e-4)
    ones = bb.norm(torch.zeros_like(batch["pixels"][:1]), torch.tensor([IMAGE_MISSING]))
    assert torch.all(ones == 1.0)  # a missing image is MAP's all-ones tensor


def test_prompts_go_through_the_image_tower_only():
    bb = tiny_clip()
    _, batch = _batch(bb)
    tokens, keep = bb.embed(batch)
    lengths = []

    def prompter(i, x, k):
        lengths.append(k.shape[1])
        p = torch.randn(x.shape[0], 2, x.shape[2], generator=torch.Generator().manual_seed(i))
        return torch.cat([p, x], 1), torch.cat([torch.ones(x.shape[0], 2, dtype=torch.bool), k], 1)

    hidden = bb.run_layers(tokens, keep, prompter)
    assert lengths == [tokens.shape[1], tokens.shape[1] + 2]
    assert torch.equal(hidden[:, 4], tokens[:, 0])  # the text token rides behind the prompts, untouched
    assert not torch.allclose(bb.readout(hidden, 4), bb.readout(bb.run_layers(tokens, keep), 0))

    def masked(i, x, k):  # prompts nothing attends to change nothing
        return torch.cat([torch.randn(x.shape[0], 3, x.shape[2]), x], 1), torch.cat(
            [torch.zeros(x.shape[0], 3, dtype=torch.bool), k], 1
        )

    assert torch.allclose(
        bb.readout(bb.run_layers(tokens, keep, masked), 6),
        bb.readout(bb.run_layers(tokens, keep), 0),
        atol=1e-5,
    )


def test_frozen_features_are_the_towers_pooled_outputs(tmp_path):
    bb = tiny_clip()
    data = tiny_data()
    feats = bb.frozen_features(data)
    n = len(data)
    assert feats["text"].shape == (n, 24) and feats["image"].shape == (n, 32)
    assert feats["text_embeds"].shape == feats["image_embeds"].shape == (n, 16)
    assert torch.allclose(feats["text_embeds"][:3], _hf_text(bb, data.texts[:3]), atol=1e-5)
    assert torch.allclose(feats["text_embeds_missing"], _hf_text(bb, [""])[0], atol=1e-5)
    pixels = bb.featurize(data).columns["pixels"][:3]
    ref = bb.vision(pixel_values=bb.norm(pixels, torch.zeros(3, dtype=torch.long))).pooler_output
    assert torch.allclose(feats["image"][:3], ref, atol=1e-5)
    ones = torch.ones(1, 3, bb.image_size, bb.image_size)
    assert torch.allclose(feats["image_missing"], bb.vision(pixel_values=ones).pooler_output[0], atol=1e-5)
    assert any(p.name.startswith("clip-image-") for p in (tmp_path / "cache" / "frozen").iterdir())
    again = bb.frozen_features(data)  # from the cache
    assert all(torch.equal(again[k], feats[k]) for k in feats)


def test_other_image_size_interpolates_positions():
    bb = tiny_clip(image_size=48)
    _, batch = _batch(bb)
    tokens, keep = bb.embed(batch)
    assert batch["pixels"].shape[-1] == 48 and tokens.shape[1] == 1 + 1 + 9
    assert bb.readout(bb.run_layers(tokens, keep), 0).isfinite().all()


def test_modality_features_are_the_two_summands_of_the_readout():
    bb = tiny_clip()
    _, batch = _batch(bb, codes=(COMPLETE, TEXT_MISSING, IMAGE_MISSING))
    feats = bb.modality_features(batch)
    hidden = bb.run_layers(*bb.embed(batch))
    assert torch.allclose(feats["text"] + feats["image"], bb.readout(hidden, 0), atol=1e-5)
    table = bb.text_table
    missing = table.rows([table.n - 1])["text_embeds"][0] @ bb.text_to_vision.T
    assert torch.allclose(feats["text"][1], missing, atol=1e-6)  # '' for the missing text
    assert feats["image_tokens"].shape == (3, bb.n_image, bb.hidden_size)
    assert torch.equal(bb.batch_rows(batch), torch.arange(3))
