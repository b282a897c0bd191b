"""PPT's recipe for its board of record, chosen on validation by the rule docs/board-of-record.md
fixed before the candidates were drawn.

At the quick recipe's constant learning rate of 5e-3, PPT's 120-round validation curves wander
instead of settling. The three candidates differ only in the learning rate. Each is drawn for
``fedavg-pt`` and ``ppt``, seed 0, the imbalanced partition, for 80 rounds:
  (a) constant 5e-3: the committed 120-round curves (results/curves) read to round 80, which is
      exactly an 80-round run (a constant rate, and a round's sampled clients do not depend on
      the number of rounds);
  (b) 5e-3 decaying linearly to zero over the 80 rounds (results/ppt-recipe);
  (c) constant 1e-4, the PFPT code's rate for the imbalanced split (results/ppt-recipe).
A candidate qualifies when, for both methods, every smoothed validation value from the plateau
round on (the plateau rule of fedbench/tracking/curves.py) is within ``STAY`` of the best smoothed
value. Of those that qualify, the one whose two plateau values have the higher mean is chosen.

None qualified at seed 0: (b) settled for ``fedavg-pt`` and missed by a fraction of a point for
``ppt``. The second step, fixed before it was drawn, draws (b) at seeds 1 and 2 as well and
applies the same rule to each method's 3-seed mean curve (the rule's own notion of a curve is a
seed mean); (b) is chosen if both mean curves settle.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.run_files import run_files
from fedbench.tracking.board_stats import table_head, table_row

RECIPES = {  # label: (train.lr, train.lr_schedule)
    "a": (5e-3, "constant"),
    "b": (5e-3, "linear"),
    "c": (1e-4, "constant"),
}
METHODS = ("fedavg-pt", "ppt")
ROUNDS = 80
STAY = 0.02  # two points of accuracy
SWEEP, PARTITION, DATASET = "bench-ppt-quick", "imbalanced", "emoji"
STEPS = (  # (seeds whose mean curve is judged, recipes judged): the first draw, then the second step
    ((0,), tuple(RECIPES)),
    ((0, 1, 2), ("b",)),
)


def recipe_of(rec: dict) -> str | None:
    """The candidate a record draws, or None when it is none of them."""
    train = rec["config"]["train"]
    for label, (lr, schedule) in RECIPES.items():
        if train["lr"] == lr and train["lr_schedule"] == schedule:
            return label
    return None


def candidate_curves(folders: list[Path]) -> dict[tuple[str, str, int], list[float]]:
    """{(recipe, method, seed): validation accuracy of rounds 1..ROUNDS} of the records in ``folders``.
    A constant-rate curve may be longer and is read to ROUNDS; a decaying one must be ROUNDS long."""
    found = {}
    for folder in folders:
        for rec in run_files(folder / DATASET, SWEEP):
            label = recipe_of(rec)
            if label is None or rec["method"] not in METHODS:
                continue
            if rec["config"]["partition"]["name"] != PARTITION:
                continue
            n, constant = len(rec["rounds"]), RECIPES[label][1] == "constant"
            if n == ROUNDS or (constant and n > ROUNDS):
                values = [r["val"]["accuracy"] for r in rec["rounds"][:ROUNDS]]
                found[label, rec["method"], rec["seed"]] = values
    return found


def mean_curve(curves: dict, label: str, method: str, seeds: tuple[int, ...]) -> list[float] | None:
    """The round-by-round mean over ``seeds`` of one recipe's curve for one method; None unless every
    seed is drawn."""
    runs = [curves.get((label, method, seed)) for seed in seeds]
    if any(run is None for run in runs):
        return None
    return [sum(values) / len(runs) for values in zip(*runs, strict=True)]


def judge(values: list[float]) -> dict:
    """The plateau round, its smoothed value, the best smoothed value, the lowest smoothed value
    from the plateau on, and whether the curve stays within STAY of the best after its plateau."""
    from fedbench.tracking.curves import WINDOW, plateau_round, trailing_means

    means = trailing_means(values)  # means[i] ends at round i + WINDOW
    best, plateau = max(means), plateau_round(values)
    if plateau is None:
        return {"plateau": None, "value": None, "best": best, "lowest": None, "settles": False}
    after = means[plateau - WINDOW :]
    lowest = min(after)
    return {
        "plateau": plateau,
        "value": means[plateau - WINDOW],
        "best": best,
        "lowest": lowest,
        "settles": best - lowest <= STAY,
    }


def chosen(verdicts: dict[tuple[str, str], dict]) -> str | None:
    """The recipe both of whose curves settle, with the higher mean plateau value; None if none."""
    qualified = {
        label: sum(verdicts[label, m]["value"] for m in METHODS) / len(METHODS)
        for label in RECIPES
        if all((label, m) in verdicts and verdicts[label, m]["settles"] for m in METHODS)
    }
    return max(qualified, key=qualified.get) if qualified else None


def seeds_label(seeds: tuple[int, ...]) -> str:
    """``0``, ``0-2``: the seeds a step judges (their mean curve where more than one)."""
    return str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"


def step_verdicts(curves: dict, seeds: tuple[int, ...], labels) -> dict[tuple[str, str], dict | None]:
    """{(recipe, method): the rule's verdict on its mean curve over ``seeds``, None if not drawn}."""
    out = {}
    for label in labels:
        for method in METHODS:
            values = mean_curve(curves, label, method, seeds)
            out[label, method] = None if values is None else judge(values)
    return out


def _row(label: str, seeds: tuple[int, ...], method: str, v: dict | None) -> str:
    lr, schedule = RECIPES[label]
    seeds_word = seeds_label(seeds) + (" (mean)" if len(seeds) > 1 else "")
    head = [label, f"{lr:g}", schedule, seeds_word, method]
    if v is None:
        return table_row([*head, "not drawn", "", "", "", ""])
    return table_row(
        [
            *head,
            "still climbing" if v["plateau"] is None else str(v["plateau"]),
            "–" if v["value"] is None else f"{100 * v['value']:.1f}",
            f"{100 * v['best']:.1f}",
            "–" if v["lowest"] is None else f"{100 * v['lowest']:.1f}",
            "yes" if v["settles"] else "no",
        ]
    )


def _missing(verdicts: dict) -> str:
    return ", ".join(f"{label} {method}" for (label, method), v in verdicts.items() if v is None)


def decision(results: Path) -> tuple[str | None, list[str]]:
    """The chosen recipe (None if none yet) and the table rows and verdict lines that say why."""
    curves = candidate_curves([results / "curves", results / "ppt-recipe"])
    rows, lines = [], []
    for number, (seeds, labels) in enumerate(STEPS, start=1):
        verdicts = step_verdicts(curves, seeds, labels)
        rows += [_row(label, seeds, m, verdicts[label, m]) for label in labels for m in METHODS]
        drawn = {key: v for key, v in verdicts.items() if v is not None}
        where = f"step {number} (seeds {seeds_label(seeds)})"
        if missing := _missing(verdicts):
            lines.append(f"At {where} not all drawn ({missing}): no recipe is chosen yet.")
            return None, rows + ["", *lines]
        if (label := chosen(drawn)) is not None:
            lines.append(f"Chosen by the rule at {where}: recipe ({label}).")
            return label, rows + ["", *lines]
        lines.append(f"At {where} no recipe settles for both methods.")
    lines.append("PPT's record rounds stay unchosen.")
    return None, rows + ["", *lines]


def recipe_table(results: Path) -> str:
    head = table_head(
        [
            "recipe",
            "lr",
            "schedule",
            "seeds",
            "method",
            "plateau",
            "at plateau",
            "best",
            "lowest after",
            "settles",
        ]
    )
    return "\n".join([*head, *decision(results)[1]])
