"""The paper experiment files: valid config sections, a registered dataset with valid options, the
data folder under ./data/, and the paper's reported number (or why there is none) beside it."""

from pathlib import Path

import pytest
import yaml

from fedbench.data.registry import DATASETS
from fedbench.methods.registry import METHODS
from fedbench.registry import build_options
from fedbench.sweep import load_config

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
# the papers' tables on their real datasets (a paper's protocol on the offline emoji data, such as
# ppt_emoji_quick.yaml, is not a paper table)
PAPER_FILES = sorted(
    p
    for p in EXPERIMENTS.glob("*.yaml")
    if p.name.split("_")[0] in ("map", "fedprime", "ppt", "fedmvp") and "_emoji" not in p.stem
)
BACKBONES = {
    "vilt",
    "clip",
    "vit",
    "torchvision-vit",
}  # named as reference/data.md names them; PPT's: torchvision's checkpoint


def test_one_file_per_paper_table():
    names = {p.stem for p in PAPER_FILES}
    assert names == {
        "map_mmimdb",
        "map_food101",
        "map_hatememes",
        "fedprime_mmimdb",
        "fedprime_food101",
        "ppt_cifar10",
        "ppt_cifar100",
        "ppt_tinyimagenet",
        "fedmvp_cub200",
        "fedmvp_flowers102",
    }


@pytest.mark.parametrize("path", PAPER_FILES, ids=lambda p: p.stem)
def test_experiment_file(path):
    cfg = load_config(path)  # unknown sections or fields are refused here
    spec = DATASETS.get(cfg.data.dataset)
    options = build_options(spec.options, cfg.data.options, "data.options")
    assert options.root == f"data/{cfg.data.dataset}"
    assert path.stem.endswith(cfg.data.dataset)
    assert cfg.backbone.name in BACKBONES
    text = path.read_text()
    assert (
        "# paper" in text
        and f"fedbench data prepare {cfg.data.dataset} --root data/{cfg.data.dataset}" in text
    )
    raw = yaml.safe_load(text)
    assert raw["data"]["split_seed"] == 0


def test_paper_protocols_pick_the_right_variants():
    def opts(name):
        return load_config(EXPERIMENTS / f"{name}.yaml").data.options

    assert opts("map_mmimdb")["variant"] == "map" and opts("fedprime_mmimdb")["variant"] == "fedprime"
    assert opts("map_food101")["variant"] == "map" and opts("fedprime_food101")["variant"] == "fedprime"
    assert opts("fedmvp_cub200")["split"] == "fedmvp" and opts("fedmvp_flowers102")["split"] == "fedmvp"
    fedprime = load_config(EXPERIMENTS / "fedprime_food101.yaml")
    assert fedprime.partition.n_clients == 20 and fedprime.missing.rate == 0.7
    # the paper's numbers for this file live in paper_numbers.yaml, and every one of them can match
    # a run of this file: same dataset, variant, protocol and rate, a method the table runs
    from fedbench.tracking.paper_numbers import load_paper_numbers

    cfg = load_config(EXPERIMENTS / "fedprime_food101.yaml")
    mine = [n for n in load_paper_numbers() if n.dataset == "food101" and n.paper.startswith("FedPrime")]
    assert {dict(n.setting)["missing.type"] for n in mine} == {"text", "image", "both"}
    for n in mine:
        setting = dict(n.setting)
        assert setting["data.options.variant"] == cfg.data.options["variant"]
        assert (
            setting["missing.protocol"] == cfg.missing.protocol
            and setting["missing.rate"] == cfg.missing.rate
        )
        assert n.method in METHODS.names()


def test_unreachable_tables_name_the_sources_tried(tmp_path):
    """Every paper table without numbers is listed with what was read (issue 18), and a malformed
    entry stops the file from loading."""
    from fedbench.errors import ConfigError
    from fedbench.tracking.paper_numbers import PAPER_NUMBERS, load_paper_numbers

    raw = yaml.safe_load(PAPER_NUMBERS.read_text())
    papers = " ".join(e["paper"] for e in raw["unreachable"])
    assert all(name in papers for name in ("MAP", "PFPT", "FedMVP", "FedPrime"))
    assert all(e["tried"] and e["why"] for e in raw["unreachable"])
    bad = dict(raw, unreachable=[{"paper": "X", "tables": "T1", "why": "w"}])
    path = tmp_path / "numbers.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="tried"):
        load_paper_numbers(path)
