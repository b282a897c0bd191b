"""The README's "Adding a method" example is real code: executed as written, it registers a method
that trains one round on the tiny fixture with the options it inherits for tests."""

import re
from pathlib import Path

from fedbench.federation.loop import run_experiment
from fedbench.methods.registry import METHODS

README = Path(__file__).parent.parent / "README.md"


def readme_block(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_adding_a_method_example_runs(tiny_cfg):
    exec(compile(readme_block("## Adding a method"), "README.md", "exec"), {})
    spec = METHODS.get("mine")
    assert spec.options_for_tests() == {"prompt_length": 2, "prompt_layers": 1}
    cfg = tiny_cfg("mine", rounds=1)
    record = run_experiment(cfg)
    assert record["method"] == "mine" and len(record["rounds"]) == 1
    assert record["identity"]["method"]["options"]["strength"] == 0.1
