"""Board blocks that appear only where they apply, each checked against numbers worked out here:
the pool size per round (table and plot), setting labels without the partition options a
partitioner does not read, FedMVP's completion-quality columns, and the paper's numbers."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from fixtures import hashed
from test_leaderboard import COMMAND, glance_cell, hand_cell, rec, sections, table, table_rows

from fedbench.cli import main
from fedbench.data.registry import DATASETS
from fedbench.errors import ConfigError
from fedbench.tracking import paper_numbers as paper_module
from fedbench.tracking.leaderboard import render_leaderboard, write_leaderboard
from fedbench.tracking.paper_numbers import PAPER_NUMBERS, load_paper_numbers
from fedbench.tracking.records import write_record

IMBALANCED = {"partition.name": "imbalanced", "partition.n_dominant": 5}
SWEEP = "bench-ppt-quick"


def ppt(method, seed, acc, partition, pool=None):
    """A PPT-plan record: image-only task (text missing at rate 1), one of PPT's three partitions."""
    rounds = [
        {"round": i + 1, "bytes_up": 1_000_000} | ({} if pool is None else {"pool_size": p})
        for i, p in enumerate(pool or [0, 0, 0])
    ]
    return rec(method, "text", 1.0, seed, acc, sweep=SWEEP, set_=partition, rounds=rounds)


def ppt_records():
    dir05, dir01 = {"partition.alpha": 0.5}, {"partition.alpha": 0.1}
    return [
        ppt("ppt", 0, 0.50, dir05, [20, 16, 12]),
        ppt("ppt", 1, 0.54, dir05, [20, 14, 11]),
        ppt("ppt", 0, 0.40, dir01, [20, 18, 17]),
        ppt("ppt", 0, 0.45, IMBALANCED, [20, 19, 15]),
        ppt("fedavg-pt", 0, 0.48, dir05),  # logs no pool size
        ppt("fedavg-pt", 0, 0.38, dir01),
        ppt("fedavg-pt", 0, 0.44, IMBALANCED),
    ]


def test_setting_labels_show_only_the_options_their_partitioner_reads():
    md = render_leaderboard(ppt_records(), dataset="emoji", command=COMMAND)
    header, rows = table(sections(md)[SWEEP])
    assert header[1:] == [
        "text@1, partition=dirichlet, alpha=0.1",
        "text@1, partition=dirichlet, alpha=0.5",
        "text@1, partition=imbalanced, n_dominant=5",  # its alpha (0.5, unused) is not shown
    ]
    assert rows["ppt"] == ["40.0", glance_cell([0.50, 0.54]), "45.0"]
    for title in (
        "Missing text, partition=imbalanced, n_dominant=5 at rate 1",
        "Missing text, partition=dirichlet, alpha=0.5 at rate 1",
    ):
        assert f"\n### {title}\n" in md
    assert "n_dominant=none" not in md and "imbalanced, alpha" not in md


def test_partition_options_are_the_config_fields_each_partitioner_takes():
    import dataclasses
    import inspect

    from fedbench.config import PartitionConfig
    from fedbench.data.partition import PARTITION_OPTIONS, PARTITIONS

    fields = {f.name for f in dataclasses.fields(PartitionConfig)} - {"name", "n_clients"}
    assert set(PARTITION_OPTIONS) == set(PARTITIONS)
    for name, fn in PARTITIONS.items():
        assert set(PARTITION_OPTIONS[name]) == fields & set(inspect.signature(fn).parameters), name


def test_hidden_options_come_back_when_settings_would_read_the_same():
    """Two imbalanced runs that differ only in the (unused) alpha are different identities: their
    labels must still tell them apart."""
    records = [ppt("ppt", 0, 0.4, IMBALANCED | {"partition.alpha": a}) for a in (0.1, 0.5)]
    header, _ = table(sections(render_leaderboard(records, dataset="emoji", command=COMMAND))[SWEEP])
    assert header[1:] == ["text@1, alpha=0.1", "text@1, alpha=0.5"]


def test_pool_size_per_round_is_the_seed_mean_per_method_and_setting():
    md = sections(
        render_leaderboard(ppt_records(), dataset="emoji", command=COMMAND, pool_plot_path="emoji_pool.png")
    )[SWEEP]
    header, rows = table_rows(md, "Pool size per round")
    assert header == ["setting", "method", "seeds", "r1", "r2", "r3"]
    # dirichlet 0.5, seeds 0 and 1: (20+20)/2, (16+14)/2, (12+11)/2
    by_hand = [f"{(20 + 20) / 2:.0f}", f"{(16 + 14) / 2:.0f}", f"{(12 + 11) / 2:.1f}"]
    assert by_hand == ["20", "15", "11.5"]
    assert rows == [
        ["text@1, partition=dirichlet, alpha=0.1", "ppt", "1", "20", "18", "17"],
        ["text@1, partition=dirichlet, alpha=0.5", "ppt", "2", *by_hand],
        ["text@1, partition=imbalanced, n_dominant=5", "ppt", "1", "20", "19", "15"],
    ]  # fedavg-pt logs no pool size: no row
    assert "![pool size per round](emoji_pool.png)" in md


def test_pool_mean_skips_a_round_without_the_key_and_stops_at_the_shortest_run():
    a = ppt("ppt", 0, 0.5, {}, [20, 16, 12, 10])
    b = ppt("ppt", 1, 0.5, {}, [10, 12, 14])
    del b["rounds"][1]["pool_size"]  # every client dropped in round 2: no pool size logged
    md = render_leaderboard([a, b], dataset="emoji", command=COMMAND)
    header, rows = table_rows(sections(md)[SWEEP], "Pool size per round")
    assert header == ["method", "seeds", "r1", "r2", "r3"]  # round 4: only one run reached it
    assert rows == [["ppt", "2", f"{(20 + 10) / 2:.0f}", "16", f"{(12 + 14) / 2:.0f}"]]


def test_long_runs_show_ten_rounds_evenly_spread_with_the_last():
    sizes = list(range(100, 70, -1))  # 30 rounds
    md = render_leaderboard([ppt("ppt", 0, 0.5, {}, sizes)], dataset="emoji", command=COMMAND)
    header, rows = table_rows(sections(md)[SWEEP], "Pool size per round")
    picked = [round(i * 29 / 9) for i in range(10)]
    assert header[2:] == [f"r{i + 1}" for i in picked] and header[-1] == "r30"
    assert rows[0][2:] == [str(sizes[i]) for i in picked]


def test_write_leaderboard_draws_the_pool_plot_only_where_a_run_logs_it(tmp_path):
    results, out = tmp_path / "results", tmp_path / "boards"
    for record in ppt_records():
        write_record(results, record)
    text = write_leaderboard(results, out, "emoji", COMMAND).read_text()
    assert (out / "emoji_pool.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![pool size per round](emoji_pool.png)" in text

    bare = tmp_path / "bare"  # no run logs a pool size: no block, no plot, and the stale plot is gone
    for record in ppt_records():
        record["rounds"] = [{k: v for k, v in r.items() if k != "pool_size"} for r in record["rounds"]]
        write_record(bare, record)
    text = write_leaderboard(bare, out, "emoji", COMMAND).read_text()
    assert "Pool size" not in text and "pool_size" not in text and not (out / "emoji_pool.png").exists()


def fedmvp(method, seed, acc, text=None, image=None):
    record = rec(method, "both", 0.5, seed, acc, sweep="bench-fedmvp-quick")
    if text is not None:
        record["rounds"][-1]["completion"] = {
            "completer": "retrieval",
            "text/n": 40.0,
            "image/n": 40.0,
            "text/cosine": 0.3,
            "text/label_agreement": text,
            "image/label_agreement": image,
        }
    return record


def test_completion_quality_columns_for_runs_that_report_it():
    records = [
        fedmvp("fedmvp", 0, 0.6, 0.60, 0.71),
        fedmvp("fedmvp", 1, 0.6, 0.64, 0.75),
        fedmvp("fedavg", 0, 0.5),
    ]
    md = render_leaderboard(records, dataset="emoji", command=COMMAND)
    header, rows = table(sections(md)["bench-fedmvp-quick"], "Missing both at rate 0.5")
    assert header[-3:] == ["text completion", "image completion", "seeds"]
    assert hand_cell([0.60, 0.64]) == "62.0 ± 2.8"
    assert rows["fedmvp"][-3:] == ["62.0 ± 2.8", hand_cell([0.71, 0.75]), "2"]
    assert rows["fedavg"][-3:] == ["–", "–", "1"]
    assert "`text completion`: share of filled-in texts" in md and "`image completion`:" in md


def test_no_completion_column_where_no_run_reports_it():
    records = [fedmvp("fedavg", 0, 0.5), fedmvp("fedprox", 0, 0.5)]
    records[1]["rounds"][-1]["completion"] = {"completer": "none", "text/n": 0.0}  # nothing was filled
    md = render_leaderboard(records, dataset="emoji", command=COMMAND)
    assert "completion" not in md and "Pool size" not in md and "Paper's numbers" not in md


def test_the_board_reads_the_keys_fedmvp_writes():
    from fedbench.methods.fedmvp.completion import Completion, completion_quality
    from fedbench.tracking.board_extras import _COMPLETION

    filled = torch.tensor([[True, False], [False, True], [False, False]])
    done = Completion(
        torch.zeros(3, 4),
        torch.zeros(3, 4),
        torch.ones(3, dtype=torch.bool),
        filled,
        torch.tensor([0, 1, -1]),
    )
    quality = completion_quality(done, torch.tensor([0, 1, 2]), pool_labels=torch.tensor([0, 0]))
    assert {key for key, _ in _COMPLETION.values()} <= set(quality)
    assert quality["text/label_agreement"] == 1.0 and quality["image/label_agreement"] == 0.0


NUMBERS = """
tables:
  - paper: FedPrime (Phung et al., ICCV 2025)
    source: main table, UPMC Food-101
    dataset: food101
    metric: accuracy
    setting: {data.options.variant: fedprime, missing.rate: 0.7}
    numbers:
      - {method: fedprime, setting: {missing.type: text}, condition: as_train, value: 78.88}
      - {method: fedprime, setting: {missing.type: text}, condition: complete, value: 92.12}
      - {method: fedavg, setting: {missing.type: text}, condition: complete, value: 21.56}
      - {method: fedavg, setting: {missing.type: image}, condition: complete, value: 16.84}
  - paper: FedPrime (Phung et al., ICCV 2025)
    source: ablation table
    dataset: food101
    metric: macro_f1
    setting: {data.options.variant: fedprime, missing.type: text, missing.rate: 0.7}
    numbers:
      - {method: fedavg, condition: as_train, value: 11.5}
  - paper: MAP
    source: Table 1
    dataset: food101
    metric: accuracy
    setting: {data.options.variant: map, missing.type: text, missing.rate: 0.7}
    numbers:
      - {method: fedavg, condition: complete, value: 99.0}
"""


def food(method, mtype, seed, acc, variant="fedprime"):
    record = rec(method, mtype, 0.7, seed, acc, sweep="fedprime-food101")
    record["dataset"] = "food101"
    record["config"]["data"] = {"dataset": "food101", "options": {"variant": variant}}
    return hashed(record)


def test_the_papers_number_beside_ours_where_dataset_method_and_setting_match(tmp_path):
    (tmp_path / "numbers.yaml").write_text(NUMBERS)
    numbers = load_paper_numbers(tmp_path / "numbers.yaml")
    records = [
        food("fedprime", "text", 0, 0.74),
        food("fedprime", "text", 1, 0.78),
        food("fedavg", "text", 0, 0.20),
        food("fedprime", "image", 0, 0.80),
        food("fedavg", "image", 0, 0.25),
    ]
    md = render_leaderboard(records, dataset="food101", command=COMMAND, paper_numbers=numbers)
    block = sections(md)["fedprime-food101"].split("\n### Paper's numbers\n", 1)[1]
    assert (
        "[1] FedPrime (Phung et al., ICCV 2025), main table, UPMC Food-101; "
        "[2] FedPrime (Phung et al., ICCV 2025), ablation table." in block
    )
    assert "MAP" not in md and "99" not in block  # MAP's variant is another task
    header, rows = table_rows(block)
    assert header == ["setting", "method", "as_train", "as_train (macro_f1)", "complete"]
    # fedbench: as_train = acc, macro_f1 = acc - 0.1, complete = acc + 0.05 (see rec)
    assert rows == [
        ["text@0.7", "fedavg", "–", f"{100 * (0.20 - 0.1):.1f} / 11.5 [2]", f"{100 * 0.25:.1f} / 21.56 [1]"],
        [
            "text@0.7",
            "fedprime",
            f"{hand_cell([0.74, 0.78])} / 78.88 [1]",
            "–",
            f"{hand_cell([0.79, 0.83])} / 92.12 [1]",
        ],
        ["image@0.7", "fedavg", "–", "–", f"{100 * 0.30:.1f} / 16.84 [1]"],
    ]  # fedprime on missing images: no number in the file, no row
    assert "Paper's numbers" not in render_leaderboard(
        records, dataset="food101", command=COMMAND, paper_numbers=[]
    )
    mapped = render_leaderboard(
        [food("fedavg", "text", 0, 0.2, variant="map")],
        dataset="food101",
        command=COMMAND,
        paper_numbers=numbers,
    )  # MAP's 101-way task: MAP's number, none of FedPrime's
    assert "Source: MAP, Table 1." in mapped and "| fedavg | 25.0 / 99 |" in mapped and "21.56" not in mapped


def test_the_shipped_numbers_file_reads_and_names_registered_parts():
    from fedbench.methods.registry import available

    numbers = load_paper_numbers(PAPER_NUMBERS)
    assert len(numbers) == 47
    assert {n.dataset for n in numbers} <= set(DATASETS.names())
    assert {n.method for n in numbers} <= set(available())
    main_table = {
        (n.method, dict(n.setting)["missing.type"], n.condition): n.value
        for n in numbers
        if n.source.startswith("main")
    }
    assert (
        main_table["fedprime", "text", "as_train"] == 78.88
        and main_table["fed-inter", "image", "image_only"] == 37.56
    )
    assert ("fedavg", "both", "both_missing") not in main_table  # the paper gives none


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda t: t["numbers"][0].update(value="n/a"), "number 1: value must be a number"),
        (
            lambda t: t["numbers"][1].update(condition="full_modal"),
            "number 2: condition 'full_modal' is not one of",
        ),
        (lambda t: t["numbers"][0].pop("method"), "number 1: `method` must be a non-empty string"),
        (lambda t: t["numbers"][0].update(conditon="complete"), "number 1: unknown field conditon"),
        (lambda t: t.update(setting=["missing.type"]), "`setting` must map dotted config paths"),
        (lambda t: t.pop("dataset"), "table 1: `dataset` must be a non-empty string"),
    ],
)
def test_a_malformed_entry_is_one_clear_line(tmp_path, change, says):
    import yaml

    raw = yaml.safe_load(NUMBERS)
    change(raw["tables"][0])
    path = tmp_path / "numbers.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_paper_numbers(path)
    assert says in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_malformed_file_stops_the_cli_with_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    results, out, bad = tmp_path / "results", tmp_path / "boards", tmp_path / "numbers.yaml"
    write_record(results, food("fedavg", "text", 0, 0.2))
    bad.write_text(NUMBERS.replace("value: 21.56", "value: [21.56]"))
    monkeypatch.setattr(paper_module, "PAPER_NUMBERS", bad)
    assert (
        main(["leaderboard", "--results", str(results), "--leaderboards", str(out), "--dataset", "food101"])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "table 1" in err and "number 3: value must be a number" in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("dataset", DATASETS.names())
def test_leaderboard_command_works_for_every_registered_dataset(tmp_path, dataset):
    results, out = tmp_path / "results", tmp_path / "boards"
    for seed, acc in enumerate((0.5, 0.6)):
        record = copy.deepcopy(rec("fedavg", "text", 0.7, seed, acc))
        record["dataset"] = record["config"]["data"]["dataset"] = dataset
        write_record(results, hashed(record))
    assert (
        main(["leaderboard", "--results", str(results), "--leaderboards", str(out), "--dataset", dataset])
        == 0
    )
    text = (out / f"{dataset}.md").read_text()
    assert text.startswith(f"# fedbench leaderboard: {dataset}\n")
    mean = 100 * (0.5 + 0.6) / 2
    assert f"{mean:.1f} ± {math.sqrt(2 * (100 * 0.05) ** 2):.1f}" in text
