"""The ViLT backbone agrees with transformers' ViltModel, feeds missing inputs as MAP, and puts
prompts where MAP puts them. Tiny random models, saved and loaded like real weights."""

import pytest
import torch
from fixtures import tiny_data
from hf_fixtures import tiny_vilt, tiny_vilt_dir

from fedbench.backbones.vilt import ViltOptions, build_vilt
from fedbench.batch import COMPLETE, IMAGE_MISSING, TEXT_MISSING
from fedbench.errors import DataError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))


def _batch(backbone, codes=(0, 0, 0, 0), rows=4):
    bundle = backbone.featurize(tiny_data())
    batch = bundle.batch(torch.arange(rows), torch.tensor(codes[:rows]))
    batch["text_keep"] = batch["text_keep"].clone()
    return bundle, batch


def test_layers_match_vilt_model():
    """run_layers without prompts = ViltModel's last_hidden_state: exactly on the text and the image
    [CLS] (which do not depend on the patch order), and as a set on the patches (ViltModel
    shuffles them)."""
    bb = tiny_vilt()
    _, batch = _batch(bb)
    batch["text_ids"][0, 3:] = 0  # one padded row
    batch["text_keep"][0, 3:] = False
    tokens, keep = bb.embed(batch)
    ours = bb.run_layers(tokens, keep)
    pixels = bb.norm(batch["pixels"], batch["code"])
    ref = bb.vilt(
        input_ids=batch["text_ids"],
        attention_mask=batch["text_keep"].long(),
        pixel_values=pixels,
        pixel_mask=torch.ones(len(pixels), *pixels.shape[2:], dtype=torch.long),
    ).last_hidden_state
    n_text = batch["text_ids"].shape[1]
    assert ours.shape == ref.shape
    text_keep = batch["text_keep"]
    assert torch.allclose(ours[:, :n_text][text_keep], ref[:, :n_text][text_keep], atol=1e-5)
    assert torch.allclose(ours[:, n_text], ref[:, n_text], atol=1e-5)  # image [CLS]
    for b in range(len(ours)):  # every patch of ours has its twin in ViltModel's shuffled output
        dist = torch.cdist(ours[b, n_text + 1 :], ref[b, n_text + 1 :])
        assert dist.min(1).values.max() < 1e-4 and len(set(dist.argmin(1).tolist())) == dist.shape[0]


def test_embeddings_match_image_embeds_path():
    """The whole sequence, patches in our order, through ViltModel's own forward (image_embeds)."""
    bb = tiny_vilt()
    _, batch = _batch(bb)
    tokens, keep = bb.embed(batch)
    image = bb.image_tokens(bb.norm(batch["pixels"], batch["code"]))
    ref = bb.vilt(
        input_ids=batch["text_ids"],
        attention_mask=batch["text_keep"].long(),
        image_embeds=image,
        pixel_mask=torch.ones(image.shape[:2], dtype=torch.long),
    ).last_hidden_state
    assert torch.allclose(bb.run_layers(tokens, keep), ref, atol=1e-5)


def test_missing_inputs_as_map():
    bb = tiny_vilt()
    _, batch = _batch(bb, codes=(COMPLETE, TEXT_MISSING, IMAGE_MISSING), rows=3)
    tokens, keep = bb.embed(batch)
    n_text = batch["text_ids"].shape[1]
    cls_sep = bb.tokenizer("")["input_ids"]
    assert keep[1, :n_text].tolist() == [True, True] + [False] * (n_text - 2)  # '' -> [CLS][SEP]
    assert torch.allclose(tokens[1, :2], bb.text_embeddings(torch.tensor([cls_sep]))[0], atol=1e-6)
    ones = (
        bb.image_tokens(torch.ones(1, 3, bb.image_size, bb.image_size))[0]
        + bb.vilt.embeddings.token_type_embeddings.weight[1]
    )
    assert torch.allclose(tokens[2, n_text:], ones, atol=1e-6)  # all-ones normalised image
    assert not torch.allclose(tokens[0, n_text:], ones)


def _map_prompter(prompts, seen):
    """MAP's input-level prompts: before layer i prepend prompts[i] ([P, H]), keep 1, accumulate."""

    def prompter(i, x, k):
        seen.append((i, x.clone(), k.shape[1]))
        if i >= len(prompts):
            return x, k
        p = prompts[i].expand(x.shape[0], -1, -1)
        return torch.cat([p, x], 1), torch.cat([torch.ones(p.shape[:2], dtype=torch.bool), k], 1)

    return prompter


def test_prompts_land_at_their_layers():
    """Two prompted layers of 3 tokens: the mask grows 0, 3, 6 tokens; a change to layer 1's
    prompt leaves what enters layer 1 untouched and changes the output; layer 0's changes both."""
    bb = tiny_vilt()
    _, batch = _batch(bb)
    tokens, keep = bb.embed(batch)
    base = torch.randn(2, 3, bb.hidden_size, generator=torch.Generator().manual_seed(0))
    seen = []
    out = bb.run_layers(tokens, keep, _map_prompter(base, seen))
    assert [length for _, _, length in seen] == [tokens.shape[1], tokens.shape[1] + 3]
    assert out.shape[1] == tokens.shape[1] + 6
    for layer in (0, 1):
        changed = base.clone()
        changed[layer] += torch.randn(changed[layer].shape)  # not a constant: LayerNorm would erase it
        seen2 = []
        out2 = bb.run_layers(tokens, keep, _map_prompter(changed, seen2))
        into_layer1 = seen[1][1], seen2[1][1]
        assert torch.allclose(*into_layer1) == (layer == 1)
        assert not torch.allclose(bb.readout(out, 6), bb.readout(out2, 6))


def test_readout_is_the_text_cls_behind_the_prompts():
    """Prompts that nothing may attend to change nothing, and readout finds the text [CLS]."""
    bb = tiny_vilt()
    _, batch = _batch(bb)
    tokens, keep = bb.embed(batch)
    plain = bb.run_layers(tokens, keep)

    def masked(i, x, k):
        p = torch.randn(x.shape[0], 4, x.shape[2])
        return torch.cat([p, x], 1), torch.cat([torch.zeros(x.shape[0], 4, dtype=torch.bool), k], 1)

    prompted = bb.run_layers(tokens, keep, masked)
    assert torch.allclose(bb.readout(prompted, 8), plain[:, 0], atol=1e-5)


def test_text_positions_are_interpolated_beyond_40():
    bb = tiny_vilt(max_text_tokens=64)
    assert bb.text_positions.shape == (64, bb.hidden_size)
    short = tiny_vilt(max_text_tokens=20)
    assert torch.equal(
        short.text_positions, short.vilt.embeddings.text_embeddings.position_embeddings.weight[:40]
    )
    bundle = bb.featurize(tiny_data())
    assert bundle.columns["text_ids"].shape[1] == 64
    batch = bundle.batch(torch.arange(2), torch.zeros(2, dtype=torch.long))
    assert batch["text_ids"].shape[1] == 6  # dynamic padding trims to the longest text


def test_max_image_len_samples_patches_and_image_size_interpolates():
    bb = tiny_vilt(image_size=128, max_image_len=5)  # a 4x4 grid from the 2x2 pretraining grid
    _, batch = _batch(bb)
    tokens, keep = bb.embed(batch)
    assert tokens.shape[1] == batch["text_ids"].shape[1] + 1 + 5
    assert bb.run_layers(tokens, keep).isfinite().all()


def test_pooler_from_the_checkpoint_or_none():
    bb = tiny_vilt()
    assert torch.equal(bb.pooler_state()["weight"], bb.vilt.pooler.dense.weight)
    no_pooler = build_vilt(ViltOptions(model=str(tiny_vilt_dir(pooler=False))))
    assert no_pooler.pooler_state() is None


@pytest.mark.parametrize("model", ["fedbench-tests/no-such-vilt", "/nonexistent/vilt-folder"])
def test_absent_weights_say_how_to_get_them(model):
    with pytest.raises(DataError) as err:
        build_vilt(ViltOptions(model=model))
    line = str(err.value)
    assert "\n" not in line and model in line and f"hf download {model}" in line and "save_pretrained" in line


def test_bf16_autocast_runs_and_stays_close():
    bb = tiny_vilt()
    _, batch = _batch(bb)
    prompts = torch.randn(2, 3, bb.hidden_size).requires_grad_()
    tokens, keep = bb.embed(batch)
    ref = bb.readout(bb.run_layers(tokens, keep, _map_prompter(prompts, [])), 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tokens, keep = bb.embed(batch)
        out = bb.readout(bb.run_layers(tokens, keep, _map_prompter(prompts, [])), 6)
    (out.float() * torch.randn(out.shape)).sum().backward()  # not a plain sum: LayerNorm outputs sum to 0
    assert prompts.grad is not None and prompts.grad.isfinite().all() and prompts.grad.abs().sum() > 0
    assert torch.allclose(out.float(), ref, atol=0.1)


def test_modality_features_run_each_modality_alone():
    bb = tiny_vilt()
    _, batch = _batch(bb, codes=(COMPLETE, TEXT_MISSING, IMAGE_MISSING), rows=3)
    feats = bb.modality_features(batch)
    tokens, keep = bb.embed(batch)
    n_text = batch["text_ids"].shape[1]
    text = bb.run_layers(tokens[:1, :n_text], keep[:1, :n_text])
    assert torch.allclose(feats["text"][0], text[0].mean(0), atol=1e-5)
    assert feats["text_pad"][1].tolist() == [False, False] + [True] * (n_text - 2)  # '' for the missing text
    assert torch.allclose(
        feats["image"], bb.run_layers(tokens[:, n_text:], keep[:, n_text:]).mean(1), atol=1e-5
    )
    assert torch.equal(bb.batch_rows(batch), torch.arange(3))
