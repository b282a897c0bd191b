"""FedMVP's building blocks against computations written out here (methods.md §4)."""

import math
import warnings

import numpy as np
import pytest
import torch

from fedbench.errors import ConfigError
from fedbench.methods.fedmvp.completion import (
    Completion,
    CompletionPool,
    ImputeCompleter,
    NoneCompleter,
    RetrievalCompleter,
    cached_completion,
    completion_path,
    completion_quality,
)
from fedbench.methods.fedmvp.config import FedMVPOptions
from fedbench.methods.fedmvp.generate import GenerateCompleter
from fedbench.methods.fedmvp.losses import mcm_loss, ram_indicators, ram_loss
from fedbench.methods.fedmvp.network import FedMVPNetwork
from fedbench.methods.fedmvp.optim import configure_optimizer
from fedbench.methods.fedmvp.server import cka_aggregate

SMALL = dict(latent_dim=32, embed_dim=16, num_heads=2, joint_layers=1)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ----- MCM ------------------------------------------------------------------------------------
def _mcm_by_loops(h_joint, unimodal, alpha, tau):
    """NT-Xent written out: anchors are the 2B rows of [h_J; h_m], positive the same sample in the
    other half, denominator every other row."""
    b = h_joint.shape[0]
    total = 0.0
    for h_mod in unimodal:
        u = [h_joint[i] for i in range(b)] + [h_mod[i] for i in range(b)]
        per_anchor = []
        for a in range(2 * b):
            p = a + b if a < b else a - b
            num = math.exp(float(u[a] @ u[p]) / tau)
            den = sum(math.exp(float(u[a] @ u[k]) / tau) for k in range(2 * b) if k != a)
            per_anchor.append(-math.log(num / den))
        total += sum(per_anchor) / (2 * b)
    return alpha * total


def test_mcm_matches_nt_xent_written_out():
    g = _gen(0)
    h_j = torch.randn(5, 8, generator=g, dtype=torch.float64) * 0.3  # not unit rows, as h_J officially
    h_i = torch.nn.functional.normalize(torch.randn(5, 8, generator=g, dtype=torch.float64), dim=1)
    h_t = torch.nn.functional.normalize(torch.randn(5, 8, generator=g, dtype=torch.float64), dim=1)
    for alpha, tau in ((0.01, 0.1), (1.0, 0.5)):
        expected = _mcm_by_loops(h_j, [h_i, h_t], alpha, tau)
        assert float(mcm_loss(h_j, [h_i, h_t], alpha, tau)) == pytest.approx(expected, rel=1e-10)
    assert float(mcm_loss(h_j, [h_i], 1.0, 0.5)) == pytest.approx(
        _mcm_by_loops(h_j, [h_i], 1.0, 0.5), rel=1e-10
    )


def test_mcm_is_lower_when_pairs_align():
    h = torch.nn.functional.normalize(torch.randn(6, 8, generator=_gen(1)), dim=1)
    other = torch.nn.functional.normalize(torch.randn(6, 8, generator=_gen(2)), dim=1)
    assert mcm_loss(h, [h], 1.0, 0.1) < mcm_loss(h, [other], 1.0, 0.1)


def test_mcm_defaults_are_the_papers_alpha_and_tau():
    g = _gen(7)
    h_j = torch.nn.functional.normalize(torch.randn(3, 4, generator=g, dtype=torch.float64), dim=1)
    h_i = torch.nn.functional.normalize(torch.randn(3, 4, generator=g, dtype=torch.float64), dim=1)
    expected = _mcm_by_loops(h_j, [h_i], 0.01, 0.1)  # alpha = 0.01, tau = 0.1
    assert float(mcm_loss(h_j, [h_i])) == pytest.approx(expected, rel=1e-10)
    assert float(mcm_loss(h_j, [h_i])) == float(mcm_loss(h_j, [h_i], alpha=0.01, tau=0.1))


def test_mcm_error_messages_name_the_problem():
    h = torch.zeros(2, 3)
    with pytest.raises(ValueError) as err:
        mcm_loss(h, [])
    assert str(err.value) == "mcm_loss: need at least one unimodal embedding"
    with pytest.raises(ValueError) as err:
        mcm_loss(h, [torch.zeros(2, 4)])
    assert str(err.value) == "mcm_loss: unimodal shape (2, 4) != joint (2, 3)"


def test_mcm_builds_its_self_mask_on_the_inputs_device():
    """meta stands in for an accelerator: a mask left on CPU cannot be applied to meta logits."""
    h_j, h_i = torch.empty(3, 4, device="meta"), torch.empty(3, 4, device="meta")
    loss = mcm_loss(h_j, [h_i], 1.0, 0.5)
    assert loss.device.type == "meta" and loss.shape == ()


# ----- RAM ------------------------------------------------------------------------------------
def test_ram_indicator_and_frobenius_norm_on_a_hand_built_batch():
    h_j = torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    h_i = torch.tensor(
        [[0.0, 0.0], [0.0, 4.0]], requires_grad=True
    )  # ||h_J - h_I||_F = 5 (per-sample: 3 + 4)
    h_t = torch.tensor([[3.0, 1.0], [0.0, 0.0]], requires_grad=True)  # ||h_J - h_T||_F = 1
    ce_j = torch.tensor(1.0)
    # image classifies better than joint (active), text worse (inactive): 0.5 * 5 / 2
    assert ram_indicators(ce_j, [torch.tensor(0.5), torch.tensor(2.0)]) == [True, False]
    loss = ram_loss(h_j, [h_i, h_t], ce_j, [torch.tensor(0.5), torch.tensor(2.0)], beta=0.5)
    assert float(loss.detach()) == pytest.approx(1.25)
    loss.backward()
    assert h_i.grad.abs().sum() > 0 and (h_t.grad is None or h_t.grad.abs().sum() == 0)
    # both active: 0.5 * (5 + 1) / 2; a tie is not "lower"; an explicit batch size divides instead
    both = ram_loss(h_j, [h_i, h_t], ce_j, [torch.tensor(0.1), torch.tensor(0.9)], beta=0.5)
    assert float(both.detach()) == pytest.approx(1.5)
    assert float(ram_loss(h_j, [h_i], ce_j, [torch.tensor(1.0)])) == 0.0
    assert float(
        ram_loss(h_j, [h_i], ce_j, [torch.tensor(0.0)], beta=1.0, batch_size=10).detach()
    ) == pytest.approx(0.5)


def test_ram_defaults_to_beta_half_and_divides_by_the_rows_of_h_joint():
    h_j = torch.tensor([[3.0, 0.0], [0.0, 0.0], [0.0, 0.0]])  # B = 3 rows, d = 2 columns
    h_i = torch.tensor([[0.0, 0.0], [0.0, 4.0], [0.0, 0.0]])  # ||h_J - h_I||_F = 5
    ce_j, ce_i = torch.tensor(1.0), [torch.tensor(0.5)]  # image is better: active
    loss = ram_loss(h_j, [h_i], ce_j, ce_i)
    assert float(loss) == pytest.approx(0.5 * 5.0 / 3.0)
    assert float(loss) == float(ram_loss(h_j, [h_i], ce_j, ce_i, beta=0.5))


def test_ram_rejects_a_missing_ce_value_with_its_message():
    h = torch.zeros(2, 3)
    with pytest.raises(ValueError) as err:
        ram_loss(h, [h, h], torch.tensor(1.0), [torch.tensor(0.5)])
    assert str(err.value) == "ram_loss: one CE value per unimodal embedding"


# ----- completion -----------------------------------------------------------------------------
def _pool(p=12, d=6, seed=3):
    g = _gen(seed)
    text, image = torch.randn(p, d, generator=g), torch.randn(p, d + 2, generator=g)
    return CompletionPool(text=text, image=image, labels=torch.arange(p) % 4)


def test_retrieval_returns_the_true_partner_when_it_is_in_the_pool():
    pool = _pool()
    rows = torch.tensor([0, 3, 5, 7, 11, 2])
    codes = torch.tensor([0, 2, 1, 2, 1, 0])  # complete, image missing, text missing, ...
    text, image = pool.text[rows].clone(), pool.image[rows].clone()
    text[codes == 1] = 0.0  # the missing entries hold nothing useful
    image[codes == 2] = 0.0
    done = RetrievalCompleter(pool).complete(text, image, codes)
    assert torch.equal(done.text, pool.text[rows]) and torch.equal(done.image, pool.image[rows])
    assert done.keep.all()
    assert done.filled.tolist() == [[c == 1, c == 2] for c in codes.tolist()]
    assert done.source.tolist() == [-1 if c == 0 else int(r) for c, r in zip(codes, rows, strict=True)]
    quality = completion_quality(done, pool.labels[rows], pool.text[rows], pool.image[rows], pool.labels)
    for name in ("text", "image"):
        assert quality[f"{name}/n"] == 2
        assert quality[f"{name}/label_agreement"] == 1.0
        assert quality[f"{name}/partner_top1"] == 1.0
        assert quality[f"{name}/cosine"] == pytest.approx(1.0)


def test_retrieval_cross_uses_keys_of_the_other_modality():
    shared = torch.eye(4)  # a shared space in which pool text k and pool image k coincide
    pool = CompletionPool(
        text=torch.arange(4.0)[:, None],
        image=10 + torch.arange(4.0)[:, None],
        text_key=shared,
        image_key=shared,
    )
    codes = torch.tensor([2, 1])
    text, image = torch.tensor([[-1.0], [-1.0]]), torch.tensor([[-1.0], [-1.0]])
    done = RetrievalCompleter(pool, via="cross").complete(
        text, image, codes, text_key=shared[[2, 0]], image_key=shared[[0, 3]]
    )
    assert done.image[0].item() == 12.0 and done.text[1].item() == 3.0
    assert done.source.tolist() == [2, 3]


def test_none_drops_and_impute_fills_with_the_backbone_missing_input():
    text, image, codes = torch.ones(3, 2), torch.ones(3, 4), torch.tensor([0, 1, 2])
    dropped = NoneCompleter().complete(text, image, codes)
    assert dropped.keep.tolist() == [True, False, False] and not dropped.filled.any()
    imputed = ImputeCompleter(torch.full((2,), -5.0), torch.full((4,), 7.0)).complete(text, image, codes)
    assert (
        imputed.keep.all()
        and imputed.text[1].tolist() == [-5.0, -5.0]
        and imputed.image[2].tolist() == [7.0] * 4
    )
    assert imputed.text[0].tolist() == [1.0, 1.0] and text[1].tolist() == [1.0, 1.0]  # inputs untouched
    with pytest.raises(ValueError, match="modality code"):
        NoneCompleter().complete(text, image, torch.tensor([0, 1, 3]))


def test_completion_is_cached_and_not_recomputed(tmp_path):
    pool, calls = _pool(), []
    codes = torch.tensor([0, 1, 2, 2, 1])

    def build(n=4):
        calls.append(1)
        return RetrievalCompleter(pool).complete(pool.text[:n], pool.image[:n], codes[:n])

    first = cached_completion(build, "emoji", "retrieval", 0, n=4, root=tmp_path)
    second = cached_completion(build, "emoji", "retrieval", 0, n=4, root=tmp_path)
    assert len(calls) == 1
    assert all(
        torch.equal(a, b) for a, b in zip(first.to_dict().values(), second.to_dict().values(), strict=True)
    )
    cached_completion(build, "emoji", "retrieval", 1, n=4, root=tmp_path)  # another seed: another file
    assert len(calls) == 2
    path = completion_path("emoji", "retrieval", 0, tmp_path)
    path.write_bytes(b"not a torch file")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cached_completion(build, "emoji", "retrieval", 0, n=4, root=tmp_path)
    assert len(calls) == 3 and any("rebuilding" in str(w.message) for w in caught)
    with pytest.warns(UserWarning, match="rebuilding"):  # a cache for another number of samples
        five = cached_completion(lambda: build(5), "emoji", "retrieval", 0, n=5, root=tmp_path)
    assert len(calls) == 4 and five.keep.shape == (5,)
    with pytest.raises(ValueError):
        Completion.from_dict({"text": torch.zeros(1)})


def test_generate_completer_fills_raw_inputs():
    gen = GenerateCompleter(
        captioner=lambda imgs: [f"caption of {i}" for i in imgs], painter=lambda ts: [f"img<{t}>" for t in ts]
    )
    texts, images = gen.complete_raw(["a", None, "c"], ["A", "B", None], [0, 1, 2])
    assert texts == ["a", "caption of B", "c"] and images == ["A", "B", "img<c>"]


def test_hf_captioner_offline_on_a_tiny_random_model(tmp_path):
    """A tiny random ViT-GPT2 built from configs, saved and reloaded through from_pretrained."""
    tr = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    image_mod = pytest.importorskip("PIL.Image")
    from fedbench.methods.fedmvp.generate import HFCaptioner

    vocab = {w: i for i, w in enumerate(["[PAD]", "[BOS]", "[EOS]", "[UNK]", "a", "bird", "red"])}
    core = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok = tr.PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]", unk_token="[UNK]"
    )
    enc = tr.ViTConfig(image_size=32, patch_size=16, hidden_size=16, num_hidden_layers=1)
    enc.num_attention_heads, enc.intermediate_size = 2, 32
    dec = tr.GPT2Config(vocab_size=len(vocab), n_positions=16, n_embd=16, n_layer=1, n_head=2)
    dec.bos_token_id, dec.eos_token_id, dec.pad_token_id = 1, 2, 0
    cfg = tr.VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id = 1, 0, 2
    torch.manual_seed(0)
    model = tr.VisionEncoderDecoderModel(config=cfg)
    with torch.no_grad():  # make "bird" the greedy choice at every step, whatever the image
        v = torch.full((16,), 3.0)
        model.decoder.transformer.ln_f.bias.copy_(v)
        model.decoder.get_output_embeddings().weight[vocab["bird"]] = v
    model.save_pretrained(tmp_path)
    tr.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    captioner = HFCaptioner.from_pretrained(tmp_path, max_new_tokens=3, batch_size=1)
    images = [image_mod.new("RGB", (40, 40), (255, 0, 0)), image_mod.new("RGB", (40, 40), (0, 0, 255))]
    assert captioner(images) == ["bird bird bird"] * 2


# ----- network --------------------------------------------------------------------------------
def test_forward_shapes_for_pooled_and_token_inputs():
    g = _gen(4)
    b, c = 5, 3
    text, image = torch.randn(b, 10, generator=g), torch.randn(b, 12, generator=g)
    net = FedMVPNetwork(10, 12, c, FedMVPOptions(**SMALL))
    out = net(text, image)
    assert out.logits.shape == (b, c)
    assert out.h_joint.shape == out.h_image.shape == out.h_text.shape == (b, 32)
    for h in (out.h_image, out.h_text):
        assert torch.allclose(h.norm(dim=1), torch.ones(b))
    opts = FedMVPOptions(**SMALL, joint_pool="mean_then_normalise")
    net = FedMVPNetwork(10, 12, c, opts, text_token_dim=6, image_token_dim=7)
    pad = torch.zeros(b, 4, dtype=torch.bool)
    pad[0, 2:] = True
    pad[1] = True  # a row with every text token padded still gives finite outputs
    out = net(
        text,
        image,
        text_tokens=torch.randn(b, 4, 6, generator=g),
        image_tokens=torch.randn(b, 9, 7, generator=g),
        text_pad=pad,
    )
    assert out.logits.shape == (b, c) and torch.allclose(out.h_joint.norm(dim=1), torch.ones(b))
    assert torch.isfinite(out.logits).all()
    assert net.representation(out, "all").shape == (b, 96)
    tokens = FedMVPNetwork(10, 12, c, FedMVPOptions(**SMALL, fusion="tokens", joint_kv="self"), 6, 7)
    assert tokens(text, image, torch.randn(b, 4, 6), torch.randn(b, 4, 7)).logits.shape == (b, c)
    with pytest.raises(ValueError, match="fusion=sequence"):
        tokens(text, image, torch.randn(b, 4, 6), torch.randn(b, 9, 7))


def test_a_few_steps_reduce_the_loss_on_a_separable_toy_set():
    torch.manual_seed(0)
    g = _gen(5)
    labels = torch.arange(48) % 3
    text = 2 * torch.eye(3)[labels] @ torch.randn(3, 10, generator=g) + 0.3 * torch.randn(48, 10, generator=g)
    image = 2 * torch.eye(3)[labels] @ torch.randn(3, 12, generator=g) + 0.3 * torch.randn(
        48, 12, generator=g
    )
    net = FedMVPNetwork(10, 12, 3, FedMVPOptions(**SMALL))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss, parts = net.training_loss(net(text, image), labels)
        assert set(parts) == {"ce", "mcm", "ram"}
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    net.eval()
    assert (net(text, image).logits.argmax(1) == labels).float().mean() > 0.9
    net.opts.use_mcm = net.opts.use_ram = False
    assert set(net.training_loss(net(text, image), labels)[1]) == {"ce"}


def test_cka_aggregation_weights_clients_by_graph_degree():
    g = _gen(6)
    net = FedMVPNetwork(10, 12, 3, FedMVPOptions(**SMALL))
    inputs = {"text": torch.randn(20, 10, generator=g), "image": torch.randn(20, 12, generator=g)}
    base = {k: v.clone() for k, v in net.state_dict().items()}
    before = {k: v.clone() for k, v in base.items()}
    same, weights, sim = cka_aggregate(net, [base, base], inputs)
    np.testing.assert_allclose(weights, [0.5, 0.5])
    assert all(torch.allclose(same[k], base[k]) for k in base)
    torch.manual_seed(1)
    outlier = FedMVPNetwork(10, 12, 3, FedMVPOptions(**SMALL)).state_dict()
    _, weights, sim = cka_aggregate(net, [base, base, outlier], inputs)
    assert sim[0, 1] == pytest.approx(1.0) and sim[0, 2] < 1.0
    np.testing.assert_allclose(weights, sim.sum(1) / sim.sum())
    assert weights[2] < weights[0]
    assert all(torch.equal(net.state_dict()[k], before[k]) for k in before)  # network restored


# ----- options --------------------------------------------------------------------------------
def test_defaults_follow_the_paper_and_bad_options_name_their_field():
    opts = FedMVPOptions().validate()
    assert (opts.lr, opts.alpha, opts.tau, opts.beta, opts.use_mcm, opts.use_ram) == (
        2e-4,
        0.01,
        0.1,
        0.5,
        True,
        True,
    )
    for bad, field in (
        (dict(tau=0.0), "tau"),
        (dict(completer="dalle"), "completer"),
        (dict(fusion="tokens", latent_dim=256), "fusion"),
        (dict(embed_dim=30), "embed_dim"),
        (dict(beta=-1.0), "beta"),
        (dict(use_ram="yes"), "use_ram"),
    ):
        with pytest.raises(ConfigError, match=f"method.options.{field}") as err:
            FedMVPOptions(**bad).validate()
        assert "\n" not in str(err.value)


def test_cosine_over_local_epochs_or_per_batch_as_the_official_code():
    params = [torch.nn.Parameter(torch.zeros(1))]
    conf = configure_optimizer(params, FedMVPOptions(), local_epochs=4)
    assert isinstance(conf["optimizer"], torch.optim.AdamW) and conf["lr_scheduler"]["interval"] == "epoch"
    sched, rates = conf["lr_scheduler"]["scheduler"], []
    for _ in range(4):
        rates.append(sched.get_last_lr()[0])
        conf["optimizer"].step()
        sched.step()
    assert rates == pytest.approx([2e-4 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)])
    official = configure_optimizer(params, FedMVPOptions(cosine_step="batch"), local_epochs=4)
    assert official["lr_scheduler"]["interval"] == "step"
