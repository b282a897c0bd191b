"""FedMVP and its baselines as the official code runs them (issue 18), checked against the official
formulas written out here (Michelingweo/FedMVP ``models/fedmvp.py``, ``main_fed.py``,
``utils/dataset_utils.py``; supplementary Table 2 of arXiv 2406.11048v1 for the prompt)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures import tiny_config, tiny_data
from hf_fixtures import tiny_clip
from test_leaderboard import rec, sections, table

import fedbench.bench as bench_module
import fedbench.federation.client as client_module
from fedbench.backbones.tokens import tokenize
from fedbench.batch import COMPLETE, TEXT_MISSING
from fedbench.federation.loop import run_experiment
from fedbench.methods.fedmvp import PLAN
from fedbench.methods.fedmvp.config import FedMVPOptions
from fedbench.methods.fedmvp.generate import PAPER_PROMPT, GenerateCompleter
from fedbench.methods.fedmvp.network import FedMVPNetwork, JointEncoder
from fedbench.methods.fedmvp.optim import configure_optimizer
from fedbench.methods.fedmvp.pixels import pixel_inputs
from fedbench.methods.registry import MAP_PROMPTS, plan_headlines
from fedbench.sweep import cell_configs
from fedbench.tracking.leaderboard import render_leaderboard


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))


def test_pixel_branch_is_the_official_patch_embedding():
    """models/fedmvp.py:496-508: conv(3 -> e, 16, stride 16), then permute(2, 3, 0, 1).view(h*w, B, c),
    i.e. tokens in row-major patch order; the images are x / 255 * 2 - 1 (dataset_utils.py:467)."""
    opts = FedMVPOptions(
        latent_dim=16,
        embed_dim=8,
        num_heads=2,
        joint_layers=1,
        joint_image="pixels",
        pixel_size=32,
        patch_size=16,
    )
    enc = JointEncoder(12, 12, opts)
    assert isinstance(enc.image_in, torch.nn.Conv2d) and enc.image_in.kernel_size == (16, 16)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    conv = F.conv2d(x, enc.image_in.weight, enc.image_in.bias, stride=16)  # [B, e, 2, 2]
    official = conv.permute(2, 3, 0, 1).reshape(4, 2, 8).permute(1, 0, 2)
    ours = enc.image_in(x).flatten(2).transpose(1, 2)
    assert torch.allclose(ours, official, atol=1e-6)
    net = FedMVPNetwork(12, 12, 5, opts, 12, 12)
    out = net(torch.randn(2, 12), torch.randn(2, 12), torch.randn(2, 3, 12), x)
    assert out.logits.shape == (2, 5)

    column = torch.tensor([[[[0, 255]]], [[[51, 102]]]], dtype=torch.uint8).expand(2, 3, 1, 2)
    got = pixel_inputs(column, torch.tensor([1, 2]), missing_row=2)
    assert torch.allclose(got[0, 0, 0], torch.tensor([51 / 255 * 2 - 1, 102 / 255 * 2 - 1]))
    assert torch.equal(got[1], torch.ones(3, 1, 2))  # a missing image is the constant 1


def test_frozen_image_head_stays_at_its_random_init():
    """models/fedmvp.py:75 replaces the head, 79-80 freeze every parameter so far: the head never moves."""
    torch.manual_seed(0)
    opts = FedMVPOptions(latent_dim=16, embed_dim=8, num_heads=2, joint_layers=1, image_head="frozen")
    net = FedMVPNetwork(12, 12, 5, opts)
    head0 = net.image_mapping.weight.detach().clone()
    text0 = net.text_mapping.weight.detach().clone()
    optimizer = configure_optimizer(net.trained_parameters(), opts, 2)["optimizer"]
    labels = torch.tensor([0, 1, 2, 3])
    out = net(torch.randn(4, 12), torch.randn(4, 12))
    loss, _ = net.training_loss(out, labels)
    loss.backward()
    optimizer.step()
    assert torch.equal(net.image_mapping.weight, head0) and not torch.equal(net.text_mapping.weight, text0)
    assert len(
        FedMVPNetwork(
            12, 12, 5, FedMVPOptions(latent_dim=16, embed_dim=8, num_heads=2, joint_layers=1)
        ).trained_parameters()
    ) == len(list(net.parameters()))


def test_clip_feeds_the_text_token_states():
    """models/fedmvp.py:143-145 maps BERT's last_hidden_state: every text token, not one pooled token."""
    bb = tiny_clip(text_tokens="states")
    bundle = bb.featurize(tiny_data())
    bb.bundle = bundle
    batch = bundle.batch(torch.arange(3), torch.tensor([COMPLETE, TEXT_MISSING, COMPLETE]))
    feats = bb.modality_features(batch)
    texts = [bb._texts[0], "", bb._texts[2]]
    ids, keep = tokenize(bb.tokenizer, texts, bb.options.max_text_tokens)
    states = bb.clip.text_model(input_ids=ids, attention_mask=keep.long()).last_hidden_state
    assert feats["text_tokens"].shape == states.shape and torch.allclose(
        feats["text_tokens"], states, atol=1e-5
    )
    assert (
        torch.equal(feats["text_pad"], ~keep) and int((~feats["text_pad"][1]).sum()) == 2
    )  # '' = start + end
    assert bb.modality_feature_dims()["text_tokens"] == bb.clip.config.text_config.hidden_size
    other = tiny_clip(text_tokens="pooled")
    other.featurize(tiny_data())
    assert other.modality_features(batch)["text_tokens"].shape[1] == 1


def test_generate_completer_prompts_carry_the_class_name():
    seen = []
    completer = GenerateCompleter(
        lambda images: ["c"] * len(images),
        lambda texts: seen.extend(texts) or [None] * len(texts),
        prompt=PAPER_PROMPT,
        kind="bird",
    )
    completer.complete_raw(["a red bird", "x"], [None, "img"], [2, 0], class_names=["cardinal", "wren"])
    assert seen == [
        "A photo of cardinal, a kind of bird, a red bird."
    ]  # supplementary Table 2 of 2406.11048v1
    with pytest.raises(ValueError, match="class_names"):
        completer.complete_raw(["t"], [None], [2])


def test_drop_incomplete_trains_on_complete_pairs_only(tmp_path, monkeypatch):
    """main_fed.py:79-80: the baselines' train set is random_split to 1 - beta, the complete pairs."""
    seen = []
    real = client_module.make_loader

    def spy(bundle, index, codes, **kw):
        seen.append(np.asarray(codes).copy())
        return real(bundle, index, codes, **kw)

    monkeypatch.setattr(client_module, "make_loader", spy)
    cfg = tiny_config(tmp_path, "fedavg", rounds=1)
    cfg.missing.rate, cfg.missing.type = 0.5, "both"
    cfg.method.options = {**cfg.method.options, "drop_incomplete": True}
    run_experiment(cfg)
    assert seen and all((codes == COMPLETE).all() and len(codes) for codes in seen)


def test_fedmvp_plan_and_tables_drop_incomplete_pairs_and_head_the_complete_column(monkeypatch):
    assert PLAN.headline == "complete"
    for profile in ("quick", "full"):
        per = PLAN.profiles[profile]["per_method"]
        assert per["fedavg"] == per["fedprox"] == {"drop_incomplete": True}
    seen = {}
    monkeypatch.setattr(
        bench_module, "run_grid", lambda base, grid, **kw: seen.update(base=base, grid=grid) or []
    )
    bench_module.bench("fedmvp", "quick", dataset="cub200", accelerator="cpu")
    for cfg in cell_configs(seen["base"], seen["grid"]):
        assert cfg.method.options.get("drop_incomplete", False) == (cfg.method.name in ("fedavg", "fedprox"))
        if cfg.method.name == "fedmvp":
            assert cfg.backbone.options["text_tokens"] == "states"
    headlines = plan_headlines()
    assert headlines["bench-fedmvp-quick"] == headlines["table-fedmvp-cub200"] == "complete"
    assert "bench-ppt-quick" not in headlines


def test_board_headline_is_the_plans_condition():
    records = [
        rec("fedmvp", "both", 0.2, 0, 0.50, sweep="bench-fedmvp-quick"),
        rec("fedavg", "both", 0.2, 1, 0.60, sweep="bench-fedmvp-quick"),
        rec("fedavg", "both", 0.2, 0, 0.70, sweep="bench-fedavg-quick"),
    ]
    text = render_leaderboard(
        records, dataset="emoji", command="x", headlines={"bench-fedmvp-quick": "complete"}
    )
    parts = sections(text)
    header, rows = table(parts["bench-fedmvp-quick"])
    assert (
        header[0] == "accuracy, final complete" and rows["fedmvp"] == ["55.0"] and rows["fedavg"] == ["65.0"]
    )
    header, rows = table(parts["bench-fedavg-quick"])
    assert header[0] == "accuracy, final as_train" and rows["fedavg"] == ["70.0"]


def test_map_tables_use_maps_prompts_and_batch(monkeypatch):
    """vilt/config.py: prompt_length 16, prompt_layers [0..5], batch 256 (run.py:45-48 accumulates)."""
    seen = {}
    monkeypatch.setattr(
        bench_module, "run_grid", lambda base, grid, **kw: seen.update(base=base, grid=grid) or []
    )
    bench_module.bench("fedavg", "quick", dataset="food101", accelerator="cpu")
    configs = cell_configs(seen["base"], seen["grid"])
    assert {c.method.name for c in configs} == {"fedavg", "fedprox", "centralized"}
    for c in configs:
        assert {k: c.method.options[k] for k in MAP_PROMPTS} == {"prompt_length": 16, "prompt_layers": 6}
        assert c.train.batch_size * c.train.accumulate == 256
