"""FedMVP as a registered method, on the tiny fixture: frozen features, completion before
federation (retrieval finds the true partner, the cache is reused), the client's inputs and
losses, CKA-graph and FedAvg aggregation against computations written out here, and one run."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures import tiny_pair

from fedbench.batch import COMPLETE, IMAGE_MISSING, TEXT_MISSING
from fedbench.methods.base import ClientUpdate, ServerContext, TrainSettings
from fedbench.methods.fedmvp import TEST_OPTIONS, FedMVPOptions
from fedbench.methods.fedmvp import completion as completion_mod
from fedbench.methods.fedmvp import features as features_mod
from fedbench.methods.fedmvp.aggregator import FedMVPAggregator
from fedbench.methods.fedmvp.client import FedMVPModule
from fedbench.methods.fedmvp.prepare import prepare


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDBENCH_CACHE", str(tmp_path / "cache"))
    features_mod._MEMO.clear()
    yield tmp_path / "cache"
    features_mod._MEMO.clear()


def _options(**kw):
    return FedMVPOptions(**{**TEST_OPTIONS, **kw}).validate()


def _sentence(backbone, ids, keep):
    """Mean of BertModel's last hidden states over the kept tokens (transformers' own forward)."""
    h = backbone.bert(
        input_ids=ids, attention_mask=keep.long(), token_type_ids=torch.zeros_like(ids)
    ).last_hidden_state
    return (h * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)


def test_feature_table_rows_are_the_backbone_run_on_each_modality_alone(cache):
    bundle, backbone = tiny_pair()
    table, _ = features_mod.feature_table(backbone, bundle)
    n = len(bundle.labels)
    assert table.text.shape[0] == n + 1 and table.missing_row == n
    ids, keep = bundle.columns["text_ids"][:4], bundle.columns["text_keep"][:4]
    torch.testing.assert_close(table.text[:4], _sentence(backbone, ids, keep), atol=1e-5, rtol=1e-5)
    # the image: [CLS] + the image tokens through the layers, mean over the image tokens
    cls = backbone.text_embeddings(ids[:1, :1])
    seq = torch.cat([cls.expand(4, 1, -1), backbone.image_bank[:4]], 1)
    h = backbone.run_layers(seq, torch.ones(seq.shape[:2], dtype=torch.bool))[:, 1:]
    torch.testing.assert_close(table.image[:4], h.mean(1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(table.image_tokens[:4], h, atol=1e-5, rtol=1e-5)
    # the missing-input row: the empty text [CLS][SEP] and the blank canvas
    torch.testing.assert_close(
        table.text[n],
        _sentence(backbone, torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=torch.bool))[0],
        atol=1e-5,
        rtol=1e-5,
    )
    assert table.text_pad[n].tolist() == [False, False] + [True] * (table.text_pad.shape[1] - 2)
    blank = torch.cat([cls, backbone.image_bank[-1:]], 1)
    torch.testing.assert_close(
        table.image[n],
        backbone.run_layers(blank, torch.ones(blank.shape[:2], dtype=torch.bool))[0, 1:].mean(0),
        atol=1e-5,
        rtol=1e-5,
    )


def test_retrieval_fills_the_true_partner_when_it_is_in_the_pool(cache):
    bundle, backbone = tiny_pair()
    pool = np.sort(bundle.splits["val"])  # any rows no client holds
    done = prepare(backbone, bundle, pool, _options(), seed=0)
    assert done.server_split == "public" and np.array_equal(done.server_rows, pool)
    rows = torch.as_tensor(pool)
    # every pool row's text is its own nearest neighbour, so its missing image is its own image
    assert torch.equal(done.image_from[rows], rows)
    # images repeat (9 colour patches): the filled text comes from an identical image
    assert torch.equal(done.table.image[done.text_from[rows]], done.table.image[rows])
    # other rows are filled from the pool only
    train = torch.as_tensor(bundle.splits["train"])
    assert set(done.text_from[train].tolist()) <= set(pool.tolist())
    # quality on the train split, against an independent count: pool label == sample label
    labels = bundle.labels
    expected = float((labels[done.image_from[train]] == labels[train]).double().mean())
    assert done.quality["image/label_agreement"] == pytest.approx(expected, abs=1e-4)
    assert done.quality["image/n"] == len(train) and done.quality["pool"] == len(pool)


def test_completion_is_cached_and_a_second_run_does_not_recompute_it(cache, monkeypatch):
    bundle, backbone = tiny_pair()
    calls = {"complete": 0, "features": 0}
    real_complete, real_build = completion_mod.RetrievalCompleter.complete, features_mod.build_feature_table

    def counting_complete(self, *a, **kw):
        calls["complete"] += 1
        return real_complete(self, *a, **kw)

    def counting_build(*a, **kw):
        calls["features"] += 1
        return real_build(*a, **kw)

    monkeypatch.setattr(completion_mod.RetrievalCompleter, "complete", counting_complete)
    monkeypatch.setattr(features_mod, "build_feature_table", counting_build)
    pool = np.sort(bundle.splits["val"])
    first = prepare(backbone, bundle, pool, _options(), seed=0)
    features_mod._MEMO.clear()  # a new process: only the disk cache is left
    second = prepare(backbone, bundle, pool, _options(), seed=0)
    assert calls == {"complete": 1, "features": 1}
    assert torch.equal(first.text_from, second.text_from) and torch.equal(first.image_from, second.image_from)
    assert len(list((cache / "fedmvp").glob("completion-retrieval-*.pt"))) == 1
    prepare(backbone, bundle, pool, _options(), seed=1)  # another seed: another completion file
    prepare(backbone, bundle, pool, _options(retrieval_via="cross"), seed=0)  # another completer setting
    assert calls == {"complete": 3, "features": 1}


def test_held_out_rows_default_to_rows_no_split_holds():
    bundle, _ = tiny_pair()
    with pytest.warns(UserWarning, match="no held-out split"):
        rows, where = features_mod.held_out_rows(bundle, None)
    assert where == "val"  # the tiny data has no held-out rows
    kept = {k: v for k, v in bundle.splits.items()}
    bundle.splits = {"train": kept["train"], "val": kept["val"], "test": kept["test"][:-5]}
    rows, where = features_mod.held_out_rows(bundle, None)
    assert where == "held-out" and rows.tolist() == sorted(kept["test"][-5:].tolist())


def _module(bundle, backbone, **kw):
    torch.manual_seed(0)
    return FedMVPModule(backbone, bundle.num_classes, TrainSettings(), _options(**kw))


def test_client_inputs_swap_in_the_completed_modality_and_none_drops_incomplete_pairs(cache):
    bundle, backbone = tiny_pair()
    pool = np.sort(bundle.splits["val"])
    done = prepare(backbone, bundle, pool, _options(), seed=0)
    module = _module(bundle, backbone)
    rows = torch.as_tensor(bundle.splits["train"][:3])
    batch = bundle.batch(rows, torch.tensor([COMPLETE, TEXT_MISSING, IMAGE_MISSING]))
    got = module.network_inputs(batch)
    t = done.table
    torch.testing.assert_close(
        got["text"], torch.stack([t.text[rows[0]], t.text[done.text_from[rows[1]]], t.text[rows[2]]])
    )
    torch.testing.assert_close(
        got["image"], torch.stack([t.image[rows[0]], t.image[rows[1]], t.image[done.image_from[rows[2]]]])
    )

    prepare(backbone, bundle, pool, _options(completer="none"), seed=0)
    dropper = _module(bundle, backbone, completer="none")
    dropper.on_train_epoch_start()
    dropper.on_round_start({}, 0)
    seen = []
    dropper.forward = lambda b: (
        seen.append(b["code"].tolist()) or torch.zeros(len(b["code"]), bundle.num_classes, requires_grad=True)
    )
    dropper.extra_loss = lambda b, logits: None
    batch = bundle.batch(torch.as_tensor(bundle.splits["train"][:4]), torch.tensor([0, 1, 2, 0]))
    assert dropper.training_step(batch, 0) is not None and seen == [[0, 0]]
    assert (
        dropper.training_step(bundle.batch(rows[:2], torch.tensor([1, 2])), 1) is None
    )  # nothing complete: skipped
    assert dropper.round_metadata()["n_trained"] == 2
    # at evaluation a missing modality is the backbone's missing input
    got = dropper.network_inputs(bundle.batch(rows[:2], torch.tensor([TEXT_MISSING, IMAGE_MISSING])))
    torch.testing.assert_close(got["text"][0], t.text[t.missing_row])
    torch.testing.assert_close(got["image"][1], t.image[t.missing_row])


def _linear_cka_by_kernels(x, y):
    """tr(Kx Ky) / sqrt(tr(Kx Kx) tr(Ky Ky)), K = Xc Xc^T of row-normalised, column-centred X."""

    def gram(z):
        z = F.normalize(z.double(), dim=1)
        z = z - z.mean(0)
        return z @ z.T

    kx, ky = gram(x), gram(y)
    return float(torch.trace(kx @ ky) / math.sqrt(float(torch.trace(kx @ kx) * torch.trace(ky @ ky))))


def _context(bundle, backbone, pool):
    return ServerContext(backbone, bundle, pool, torch.device("cpu"), 0)


def test_cka_aggregation_weights_every_tensor_by_graph_degree(cache):
    bundle, backbone = tiny_pair()
    pool = np.sort(bundle.splits["val"])
    agg = FedMVPAggregator(_options(), _context(bundle, backbone, pool))
    states = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        states.append(
            FedMVPModule(backbone, bundle.num_classes, TrainSettings(), _options()).trainable_state()
        )
    updates = [ClientUpdate(client_id=i, state=s, n_samples=10 * (i + 1)) for i, s in enumerate(states)]
    result = agg.aggregate({}, updates, 0, 0)

    # independent: each state in a fresh module, h_J of the pool's complete pairs, kernel CKA
    reps = []
    for state in states:
        module = _module(bundle, backbone)
        module.load_trainable_state(state)
        module.eval()
        rows = torch.as_tensor(pool)
        with torch.no_grad():
            module(bundle.batch(rows, torch.zeros(len(rows), dtype=torch.long)))
        reps.append(module._out.h_joint)
    sim = np.array(
        [[1.0 if i == j else _linear_cka_by_kernels(reps[i], reps[j]) for j in range(3)] for i in range(3)]
    )
    weights = sim.sum(1) / sim.sum()
    np.testing.assert_allclose(agg.metadata()["cka"], sim, atol=1e-4)
    np.testing.assert_allclose(agg.metadata()["aggregation_weights"], weights, atol=1e-4)
    assert weights[2] < weights[0]  # the outlier counts less; sample counts play no part
    for name in states[0]:
        expected = sum(w * s[name].double() for w, s in zip(weights, states, strict=True)).float()
        torch.testing.assert_close(result[name], expected, atol=1e-6, rtol=1e-5)
    assert agg.metadata()["completion"]["completer"] == "retrieval"


def test_fedavg_variant_weights_by_the_samples_each_client_trained_on(cache):
    bundle, backbone = tiny_pair()
    agg = FedMVPAggregator(_options(use_cka=False), _context(bundle, backbone, np.sort(bundle.splits["val"])))
    a = {"net.w": torch.zeros(2)}
    b = {"net.w": torch.ones(2)}
    updates = [
        ClientUpdate(0, a, n_samples=30, meta={"n_trained": 1}),
        ClientUpdate(1, b, n_samples=30, meta={"n_trained": 3}),
    ]
    assert agg.aggregate({}, updates, 0, 0)["net.w"].tolist() == [0.75, 0.75]
    assert agg.metadata()["aggregation_weights"] == [0.25, 0.75] and "cka" not in agg.metadata()


def test_a_fit_runs_fedmvps_own_local_epochs_with_a_fresh_cosine_adamw(cache):
    from fedbench.config import TrainConfig
    from fedbench.federation.client import ClientRunner, ClientTask

    bundle, backbone = tiny_pair()
    prepare(backbone, bundle, np.sort(bundle.splits["val"]), _options(local_epochs=3), seed=0)
    module = _module(bundle, backbone, local_epochs=3)
    runner = ClientRunner(module, bundle, TrainConfig(batch_size=16, accelerator="cpu"), local_epochs=1)
    rows = np.sort(bundle.splits["train"])[:40]
    task = ClientTask(
        0, 0, module.trainable_state(), {}, rows, np.zeros(len(rows), dtype=np.int64), seed=0, lr=0.5
    )
    result = runner.run(task)
    assert len(module.epoch_losses) == 3 and result.meta["n_trained"] == 40
    optimizer = module.trainer.optimizers[0]
    scheduler = module.trainer.lr_scheduler_configs[0].scheduler
    assert (
        isinstance(optimizer, torch.optim.AdamW) and optimizer.param_groups[0]["initial_lr"] == 2e-4
    )  # not task.lr
    assert scheduler.last_epoch == 3 and scheduler.T_max == 3
    assert any(not torch.equal(result.state[k], task.global_state[k]) for k in result.state)


def test_one_round_records_completion_quality_and_weights(tiny_cfg, cache):
    from fedbench.federation.loop import run_experiment

    cfg = tiny_cfg("fedmvp", rounds=1)
    cfg.missing.type, cfg.missing.rate = "both", 0.5
    with pytest.warns(UserWarning, match="no held-out split"):
        record = run_experiment(cfg)
    entry = record["rounds"][0]
    assert sum(entry["aggregation_weights"]) == pytest.approx(1.0, abs=1e-3)
    assert len(entry["cka"]) == len(entry["clients"])
    quality = entry["completion"]
    assert quality["pool_split"] == "val" and 0.0 <= quality["text/label_agreement"] <= 1.0


def test_bench_plan_is_fedmvps_protocol_and_every_cell_is_a_valid_config():
    from fedbench.federation.resolve import validate
    from fedbench.methods.registry import get_method
    from fedbench.registry import build_options
    from fedbench.sweep import load_config

    plan = get_method("fedmvp").plan
    assert plan.baselines == ("fedmvp-fedavg", "fedavg", "fedprox") and plan.types == ("both",)
    quick = plan.profiles["quick"]
    cells = 0
    for rate in quick["rates"]:
        for partition in quick["axes"]["partition"]:
            for method in ("fedmvp", *plan.baselines):
                cfg = load_config("experiments/emoji_quick.yaml")
                cfg.missing.protocol, cfg.missing.type, cfg.missing.rate = plan.protocol, "both", rate
                for section, values in {
                    **quick["overrides"],
                    "partition": {**quick["overrides"]["partition"], **partition},
                }.items():
                    for key, value in values.items():
                        setattr(getattr(cfg, section), key, value)
                cfg.method.name, cfg.method.options = method, quick["per_method"].get(method, {})
                validate(cfg)
                build_options(get_method(method).options, cfg.method.options, "method.options")
                assert (cfg.partition.n_clients, cfg.federation.client_fraction, cfg.missing.both_ratio) == (
                    10,
                    0.5,
                    0.5,
                )
                cells += 1
    assert cells == 3 * 2 * 4
    assert quick["per_method"]["fedmvp-fedavg"] == quick["per_method"]["fedmvp"]
