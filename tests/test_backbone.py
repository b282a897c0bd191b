"""The backbone's own layer loop agrees with transformers' BertModel, and missing modalities are
fed as the documented placeholders."""

import torch
from fixtures import tiny_backbone, tiny_bundle, tiny_pair

from fedbench.batch import IMAGE_MISSING, TEXT_MISSING


def test_layers_match_bert_model(tmp_path):
    backbone = tiny_backbone(save_dir=tmp_path / "bert")
    bundle = tiny_bundle()
    ids = bundle.columns["text_ids"][:5].clone()
    keep = torch.ones_like(ids, dtype=torch.bool)
    keep[0, 4:] = False  # one padded row
    ours = backbone.run_layers(backbone.text_embeddings(ids), keep)
    ref = backbone.bert(
        input_ids=ids, attention_mask=keep.long(), token_type_ids=torch.zeros_like(ids)
    ).last_hidden_state
    assert torch.allclose(ours[keep], ref[keep], atol=1e-5)


def test_real_minilm_matches_too():
    from fedbench.backbones.minilm_effnet import load_minilm

    bert, tok = load_minilm()
    from fedbench.backbones.minilm_effnet import MiniLMEffNetBackbone

    bb = MiniLMEffNetBackbone(bert, torch.zeros(1, 1, bert.config.hidden_size))
    enc = tok(["a smiling face", "flag of japan"], padding=True, return_tensors="pt")
    keep = enc["attention_mask"].bool()
    ours = bb.run_layers(bb.text_embeddings(enc["input_ids"]), keep)
    ref = bert(**enc).last_hidden_state
    assert torch.allclose(ours[keep], ref[keep], atol=1e-4)


def test_missing_placeholders():
    bundle, backbone = tiny_pair()
    idx = torch.arange(3)
    codes = torch.tensor([0, TEXT_MISSING, IMAGE_MISSING])
    tokens, keep = backbone.embed(bundle.batch(idx, codes))
    n_text = bundle.columns["text_ids"].shape[1]
    assert keep[0, :n_text].all()
    assert keep[1, :n_text].tolist() == [True, True] + [False] * (n_text - 2)  # [CLS][SEP] only
    cls_sep = backbone.text_embeddings(torch.tensor([[1, 2]]))[0]
    assert torch.allclose(tokens[1, :2], cls_sep, atol=1e-6)
    blank = backbone.image_bank[-1]
    assert torch.allclose(tokens[2, n_text:], blank)  # the blank canvas replaces the image
    assert torch.allclose(tokens[0, n_text:], backbone.image_bank[bundle.columns["image"][0]])
