"""The README's "Adding a method" example is real code: executed as written, it registers a method
that trains one round on the tiny fixture with the options it inherits for tests."""

import re
from pathlib import Path

from fedbench.federation.loop import run_experiment
from fedbench.methods.registry import METHODS

README = Path(__file__).parent.parent / "README.md"


def readme_block(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading) :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_adding_a_method_example_runs(tiny_cfg):
    exec(compile(readme_block("## Adding a method"), "README.md", "exec"), {})
    spec = METHODS.get("mine")
    assert spec.options_for_tests() == {"prompt_length": 2, "prompt_layers": 1}
    cfg = tiny_cfg("mine", rounds=1)
    record = run_experiment(cfg)
    assert record["method"] == "mine" and len(record["rounds"]) == 1
    assert record["identity"]["method"]["options"]["strength"] == 0.1


def test_the_sweep_example_is_small_and_writes_to_its_own_folder():
    """A newcomer pasting the README's sweep must not start 108 runs nor rewrite the committed
    board: count its grid by hand from the flags, and check where it writes."""
    import math
    import shlex

    text = README.read_text()
    block = re.search(r"```bash\n(.*?)```", text[text.index("## Running experiments") :], re.S).group(1)
    commands = [shlex.split(c) for c in block.replace("\\\n", " ").splitlines() if c.strip()]
    (sweep,) = [c for c in commands if c[1:2] == ["sweep"]]
    flags = dict(zip(sweep[2::2], sweep[3::2], strict=False))
    runs = math.prod(
        len(flags.get(f, "one").split()) for f in ("--methods", "--rates", "--types", "--alphas", "--seeds")
    )
    assert runs <= 8, f"the README's sweep is {runs} runs"
    for command in commands:
        given = dict(zip(command[2::2], command[3::2], strict=False))
        results = given.get("--tracking.results_dir", given.get("--results", "results"))
        assert results.split("/")[0] not in ("results", "leaderboards"), command
        if command[1] in ("sweep", "leaderboard"):
            assert given.get("--leaderboards", "leaderboards").split("/")[0] != "leaderboards", command
