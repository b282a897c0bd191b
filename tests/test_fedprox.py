"""FedProx's proximal term adds exactly mu * (w - w_global) to the gradient."""

import torch
from fixtures import tiny_backbone, tiny_bundle

from fedbench.methods.base import TrainSettings
from fedbench.methods.fedprox import FedProxModule, FedProxOptions, proximal_term


def test_proximal_gradient_is_mu_times_drift():
    torch.manual_seed(0)
    w = {"a": torch.randn(3, 4, requires_grad=True), "b": torch.randn(5, requires_grad=True)}
    anchor = {"a": torch.randn(3, 4), "b": torch.randn(5)}
    mu = 0.3
    proximal_term(w, anchor, mu).backward()
    for k in w:
        assert torch.allclose(w[k].grad, mu * (w[k].detach() - anchor[k]), atol=1e-6)
    # value: (mu / 2) * sum of squared differences, by hand
    expected = 0.5 * mu * sum(((w[k].detach() - anchor[k]) ** 2).sum() for k in w)
    assert torch.allclose(proximal_term(w, anchor, mu), expected)


def test_module_gradient_gains_mu_drift():
    bundle, backbone = tiny_bundle(), tiny_backbone()
    idx = torch.arange(8)
    batch = bundle.batch(idx, torch.zeros(8, dtype=torch.long))
    opts = FedProxOptions(prompt_length=2, prompt_layers=1, mu=0.5)
    mod = FedProxModule(backbone, bundle.num_classes, TrainSettings(), opts)
    global_state = {k: v + 0.1 * torch.randn_like(v) for k, v in mod.trainable_state().items()}

    def grads(with_prox: bool):
        mod.zero_grad()
        mod.on_round_start(global_state if with_prox else {}, 0)
        logits = mod(batch)
        loss = mod.task_loss(logits, batch["label"])
        extra = mod.extra_loss(batch, logits)
        (loss + extra if extra is not None else loss).backward()
        return {n: p.grad.clone() for n, p in mod.named_parameters() if p.requires_grad}

    plain, prox = grads(False), grads(True)
    params = dict(mod.named_parameters())
    for name in plain:
        drift = params[name].detach() - global_state[name]
        assert torch.allclose(prox[name] - plain[name], 0.5 * drift, atol=1e-5), name
