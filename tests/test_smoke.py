"""Smoke runs and the caps of a first real run: one round of two steps per client on the real data
path, a report instead of a record; gradient accumulation equals the larger batch's step; options
given on the command line merge into the file's."""

from __future__ import annotations

import json

import numpy as np
import torch

from fedbench.federation import client as client_mod
from fedbench.federation.loop import run_experiment
from fedbench.federation.resolve import identity_of


def test_a_smoke_run_writes_a_report_and_no_record(tiny_cfg, monkeypatch):
    cfg = tiny_cfg("fedavg", rounds=4)
    cfg.train.batch_size = 64
    steps = []
    real = client_mod.make_trainer

    def counting(train, epochs, max_steps=-1):
        trainer = real(train, epochs, max_steps)
        steps.append(trainer)
        return trainer

    monkeypatch.setattr(client_mod, "make_trainer", counting)
    out = run_experiment(cfg, smoke=True)
    report = out["smoke"]
    assert report["status"] == "ok" and len(out["rounds"]) == 1
    assert [t.global_step for t in steps] == [2] * cfg.partition.n_clients  # 2 steps per client, capped batch
    assert report["batch_size"] == 4 and report["splits"]["val"] <= 64
    results = cfg.tracking.results_dir
    assert not list(__import__("pathlib").Path(results).glob("tiny/*.json"))  # nothing recorded
    written = json.loads((__import__("pathlib").Path(results) / "smoke" / "tiny" / "fedavg.json").read_text())
    assert written["method"] == "fedavg" and written["peak_rss_gib"] > 0


def test_accumulating_two_batches_is_one_step_on_both(tmp_path):
    import lightning as L

    from fedbench.config import TrainConfig
    from fedbench.federation.trainer import make_trainer

    class Linear(L.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = torch.nn.Linear(3, 1)

        def training_step(self, batch, i):
            return ((self.net(batch[0]) - batch[1]) ** 2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y = torch.randn(16, 3, generator=torch.Generator().manual_seed(1)), torch.randn(16, 1)
    data = torch.utils.data.TensorDataset(x, y)
    small, big = Linear(), Linear()
    make_trainer(TrainConfig(accumulate=2), 1).fit(small, torch.utils.data.DataLoader(data, batch_size=8))
    make_trainer(TrainConfig(), 1).fit(big, torch.utils.data.DataLoader(data, batch_size=16))
    ref = Linear()  # one SGD step on the mean loss over all 16 rows, by hand
    loss = ((ref.net(x) - y) ** 2).mean()
    grads = torch.autograd.grad(loss, list(ref.net.parameters()))
    for p_small, p_big, p, g in zip(
        small.parameters(), big.parameters(), ref.parameters(), grads, strict=True
    ):
        torch.testing.assert_close(p_small, p - 0.1 * g)
        torch.testing.assert_close(p_big, p - 0.1 * g)


def test_eval_samples_is_one_seeded_sample_for_every_run():
    from fedbench.federation.setup import eval_rows

    rows = np.arange(100, 300)
    a, b = eval_rows(rows, 20, 0, "test"), eval_rows(rows, 20, 0, "test")
    assert np.array_equal(a, b) and len(a) == 20 and set(a) <= set(rows) and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, eval_rows(rows, 20, 1, "test"))
    assert np.array_equal(eval_rows(rows, None, 0, "test"), rows)


def test_new_train_fields_leave_old_identities_alone():
    from fedbench.config import ExperimentConfig

    cfg = ExperimentConfig()
    assert {"accumulate", "max_steps", "eval_samples"}.isdisjoint(identity_of(cfg)["train"])
    cfg.train.accumulate = 4
    assert identity_of(cfg)["train"]["accumulate"] == 4


def test_command_line_options_merge_into_the_files():
    from fedbench.cli_args import config_from, experiment_parser, parse

    ns = parse(
        experiment_parser("fedbench run"),
        ["--config", "experiments/fedprime_food101.yaml", "--backbone.options", '{"model": "/weights/vilt"}'],
    )
    cfg = config_from(ns)
    assert cfg.backbone.options == {"max_text_tokens": 40, "max_image_len": 40, "model": "/weights/vilt"}


def test_saved_bytes_counts_what_autograd_keeps_for_backward():
    from fedbench.federation.smoke import SavedBytes

    saved = SavedBytes()
    x, w = torch.randn(8, 16), torch.randn(16, 4, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
        (x @ w).relu().sum().backward()  # mm keeps x (w needs a gradient), relu keeps its output
    saved.step()
    assert saved.peak == 8 * 16 * 4 + 8 * 4 * 4
