"""Extensions from outside fedbench: a plugin package declares a method, a dataset, a backbone and an
executor through entry points, and the CLI runs a round with each, with no file under fedbench/
edited. The package metadata is written here, as pip would write it on install."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from processes import HANG_GUARD_S

TESTS = Path(__file__).parent

ENTRY_POINTS = """\
[fedbench.methods]
demo-l2 = fedbench_demo_plugin:METHOD

[fedbench.datasets]
demo = fedbench_demo_plugin:DATASET

[fedbench.backbones]
demo-bert = fedbench_demo_plugin:BACKBONE

[fedbench.executors]
reversed = fedbench_demo_plugin:EXECUTOR
"""


def _install_metadata(site: Path) -> dict:
    dist = site / "fedbench_demo_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fedbench-demo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    path = os.pathsep.join([str(site), str(TESTS / "plugin"), str(TESTS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "FEDBENCH_WANDB": "0"}


def _fedbench(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "fedbench.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )


def test_plugin_registers_every_kind_and_runs_one_round(tmp_path):
    env = _install_metadata(tmp_path / "site")
    listing = _fedbench(env, "methods")
    assert listing.returncode == 0 and "demo-l2" in listing.stdout
    for kind, name in (("datasets", "demo"), ("backbones", "demo-bert"), ("executors", "reversed")):
        out = _fedbench(env, kind)
        assert out.returncode == 0 and name in out.stdout, out.stderr
    results = tmp_path / "results"
    run = _fedbench(
        env,
        "run",
        "--data.dataset",
        "demo",
        "--data.options",
        '{"n": 90}',
        "--backbone.name",
        "demo-bert",
        "--method.name",
        "demo-l2",
        "--method.options",
        '{"prompt_length": 2, "prompt_layers": 1, "strength": 0.5}',
        "--executor.name",
        "reversed",
        "--partition.n_clients",
        "3",
        "--partition.min_size",
        "4",
        "--federation.rounds",
        "1",
        "--tracking.progress",
        "false",
        "--tracking.results_dir",
        str(results),
    )
    assert run.returncode == 0, run.stderr
    (record_path,) = (results / "demo").glob("*.json")
    record = json.loads(record_path.read_text())
    assert record["method"] == "demo-l2" and record["backbone"] == "demo-bert"
    assert record["identity"]["method"]["options"]["strength"] == 0.5
    assert record["identity"]["data"]["options"] == {"n": 90}
    assert len(record["rounds"]) == 1 and record["rounds"][0]["bytes_up"] > 0
    assert sum(record["partition_report"]["sizes"]) == 54  # 60% of 90 samples are training rows


def test_a_broken_plugin_is_one_line(tmp_path):
    env = _install_metadata(tmp_path / "site")
    dist = tmp_path / "site" / "fedbench_demo_plugin-0.1.dist-info" / "entry_points.txt"
    dist.write_text("[fedbench.methods]\nbroken = fedbench_demo_plugin:NO_SUCH_NAME\n")
    out = _fedbench(env, "methods")
    assert out.returncode == 2
    assert "plugin 'broken'" in out.stderr and len(out.stderr.strip().splitlines()) == 1


CLASH = """\
from fedbench.methods.fedavg import FedAvgAggregator
from fedbench.methods.map_prompts import MAPOptions, MissingAwarePromptModule
from fedbench.methods.registry import MethodSpec

SPEC = MethodSpec(name="fedavg", client=MissingAwarePromptModule, aggregator=FedAvgAggregator, options=MAPOptions,
                  description="a second fedavg")
"""  # noqa: E501 (the embedded script stays byte-identical)


def test_a_plugin_that_takes_a_builtin_name_is_refused_naming_both(tmp_path):
    env = _install_metadata(tmp_path / "site")
    (tmp_path / "site" / "clash_plugin.py").write_text(CLASH)
    entry = tmp_path / "site" / "fedbench_demo_plugin-0.1.dist-info" / "entry_points.txt"
    entry.write_text("[fedbench.methods]\nfedavg = clash_plugin:SPEC\n")
    out = _fedbench(env, "methods")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert re.search(
        r"'fedavg' is registered by both "
        r"(fedbench and fedbench-demo-plugin|fedbench-demo-plugin and fedbench);",
        out.stderr,
    ), out.stderr


def test_an_entry_point_that_is_not_a_spec_is_one_line(tmp_path):
    env = _install_metadata(tmp_path / "site")
    entry = tmp_path / "site" / "fedbench_demo_plugin-0.1.dist-info" / "entry_points.txt"
    entry.write_text("[fedbench.backbones]\nodd = fedbench_demo_plugin:__name__\n")
    out = _fedbench(env, "backbones")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "plugin 'odd'" in out.stderr and "is not a backbone spec" in out.stderr
