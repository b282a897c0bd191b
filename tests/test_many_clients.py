"""Many clients: personal state is created only for sampled clients, checkpoints hold only what
changed, the disk-backed store gives the memory store's numbers, the personalized score can run on
a seeded sample of clients, and the synthetic scale-test dataset is seeded and sized as asked."""

import numpy as np
import pytest
import torch

from fedbench.data.synthetic import WORDS, SyntheticOptions, build_synthetic
from fedbench.federation.callbacks import Callback
from fedbench.federation.checkpoint import shard_folder
from fedbench.federation.loop import run_experiment
from fedbench.federation.personal_store import PersonalStore
from fedbench.safe_io import load_sealed


def many_cfg(tiny_cfg, n_clients=6, per_round=2, rounds=3, method="fedprime"):
    cfg = tiny_cfg(method, rounds=rounds)
    cfg.partition.name, cfg.partition.n_clients = "iid", n_clients
    cfg.federation.clients_per_round = per_round
    cfg.tracking.wandb = False
    return cfg


def same_numbers(a, b):
    assert (
        a["final"] == b["final"] and a["selected"] == b["selected"] and a["personalized"] == b["personalized"]
    )
    assert [r["val"] for r in a["rounds"]] == [r["val"] for r in b["rounds"]]


class Watch(Callback):
    """Checkpoints every round (as the default callback does) and notes what each shard holds."""

    def __init__(self):
        self.shard_clients, self.sampled, self.stored = [], [], []

    def on_round_end(self, fed, entry):
        fed.checkpoint(entry["round"])
        shard = shard_folder(fed.checkpoint_path) / f"r{entry['round']:05d}.pt"
        self.shard_clients.append(sorted(load_sealed(shard)["clients"]))
        self.sampled.append(entry["clients"])
        self.stored.append(fed.personal.sampled())


def test_fifty_clients_two_per_round_keep_state_for_sampled_clients_only(tiny_cfg):
    cfg = many_cfg(tiny_cfg, n_clients=50, per_round=2, rounds=3)
    watch = Watch()
    record = run_experiment(cfg, callbacks=[watch])
    ever = set()
    for sampled, stored, in_shard in zip(watch.sampled, watch.stored, watch.shard_clients, strict=True):
        ever |= set(sampled)
        assert stored == sorted(ever)  # states only for clients sampled so far (at most 2 per round)
        assert in_shard == sorted(sampled)  # each checkpoint writes only the clients that changed
    assert len(ever) <= 6
    assert record["personalized"]["scored_clients"] == record["personalized"]["of_clients"] == 50
    assert record["personalized"]["passes"] == len(ever) + 1  # one per distinct state: own ones + the initial


@pytest.mark.parametrize("store", ["memory", "disk"])
def test_resume_from_incremental_checkpoints_equals_uninterrupted(store, tiny_cfg, tmp_path):
    cfg = many_cfg(tiny_cfg, n_clients=6, per_round=2, rounds=3)
    cfg.federation.personal_store = store
    full = run_experiment(cfg)
    cfg.tracking.results_dir = str(tmp_path / "resumed")
    assert run_experiment(cfg, stop_after_rounds=1) is None
    assert run_experiment(cfg, stop_after_rounds=2) is None  # resumes once, stops again
    resumed = run_experiment(cfg)
    same_numbers(resumed, full)
    assert not list((tmp_path / "resumed" / "tiny" / "checkpoints").glob("*"))  # main file and shards removed


def test_disk_store_gives_the_memory_store_record(tiny_cfg, tmp_path):
    cfg = many_cfg(tiny_cfg, n_clients=6, per_round=2, rounds=2)
    memory = run_experiment(cfg)
    cfg.federation.personal_store = "disk"
    cfg.tracking.results_dir = str(tmp_path / "disk")
    disk = run_experiment(cfg)
    same_numbers(disk, memory)
    assert disk["run_id"] == memory["run_id"]  # where states live is not part of a run's identity
    assert not (tmp_path / "disk" / "tiny" / "personal-store").exists()  # the store's folder is gone


def test_personalized_score_on_a_seeded_sample_is_recorded(tiny_cfg, tmp_path):
    cfg = many_cfg(tiny_cfg, n_clients=10, per_round=3, rounds=1)
    cfg.federation.personalized_clients = 4
    first = run_experiment(cfg)["personalized"]
    cfg.tracking.results_dir = str(tmp_path / "again")
    again = run_experiment(cfg)["personalized"]
    assert first == again
    assert first["scored_clients"] == 4 and first["of_clients"] == 10
    assert len(first["clients"]) == 4 == len(set(first["clients"])) and first["clients"] == sorted(
        first["clients"]
    )
    assert first["accuracy"] == pytest.approx(np.mean(first["per_client"]))
    cfg.seed, cfg.tracking.results_dir = 1, str(tmp_path / "seed1")
    samples = {tuple(run_experiment(cfg)["personalized"]["clients"]), tuple(first["clients"])}
    cfg.seed, cfg.tracking.results_dir = 2, str(tmp_path / "seed2")
    samples.add(tuple(run_experiment(cfg)["personalized"]["clients"]))
    assert len(samples) > 1  # the sample follows the run's seed


def test_store_keeps_the_initial_state_once_and_disk_files_only_while_referenced(tmp_path):
    initial = {"p": torch.zeros(3)}
    for kind in ("memory", "disk"):
        store = PersonalStore(initial, 1000, kind, tmp_path)
        assert store.get(999) is store.initial and store.sampled() == []
        store.set(5, {"p": torch.ones(3)})
        store.set(7, {"p": torch.full((3,), 2.0)})
        snap = store.snapshot()
        store.set(5, {"p": torch.full((3,), 3.0)})
        assert torch.equal(store[5]["p"], torch.full((3,), 3.0)) and torch.equal(snap[5]["p"], torch.ones(3))
        groups = store.groups()
        assert [cs for _, cs in groups][:2] == [[5], [7]] and len(groups[2][1]) == 998
        assert store.dirty == {5, 7}
        if kind == "disk":
            store.prune()  # the snapshot is not kept: its version of client 5 may go
            assert len(list(store._backend.folder.iterdir())) == 2
        store.close()
    with pytest.raises(Exception, match="personal_store"):
        PersonalStore(initial, 3, "cloud")


def test_synthetic_dataset_is_seeded_and_sized():
    opts = SyntheticOptions(n_train=300, n_val=20, n_test=30, num_classes=4)
    a, b = build_synthetic(opts, 0), build_synthetic(opts, 0)
    assert len(a) == 350 and [len(a.splits[s]) for s in ("train", "val", "test")] == [300, 20, 30]
    assert (
        np.array_equal(a.labels, b.labels)
        and a.texts == b.texts
        and np.array_equal(a.images.array, b.images.array)
    )
    assert {k: v.tolist() for k, v in a.splits.items()} == {k: v.tolist() for k, v in b.splits.items()}
    other = build_synthetic(SyntheticOptions(n_train=300, n_val=20, n_test=30, num_classes=4, seed=1), 0)
    assert other.texts != a.texts
    resplit = build_synthetic(opts, 1)
    assert a.texts == resplit.texts and not np.array_equal(a.splits["test"], resplit.splits["test"])
    named = np.mean([WORDS[y] in t.split() for y, t in zip(a.labels, a.texts, strict=True)])
    assert named >= 0.85  # a clear signal per class (signal 0.9)
    assert set(a.labels.tolist()) == {0, 1, 2, 3}


def test_synthetic_backbone_featurises_synthetic_data_and_trains(tiny_cfg):
    cfg = many_cfg(tiny_cfg, n_clients=20, per_round=4, rounds=1, method="fedavg")
    cfg.data.dataset, cfg.backbone.name = "synthetic", "synthetic"
    cfg.data.options = {"n_train": 60, "n_val": 20, "n_test": 20, "num_classes": 3}
    cfg.federation.personalized_clients = 5
    record = run_experiment(cfg)
    assert record["data_info"]["image_tokens"] == "seeded random projection of the pixels"
    assert 0 <= record["final"]["complete"]["accuracy"] <= 1 and record["personalized"]["scored_clients"] == 5
