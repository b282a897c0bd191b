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


def recipe_of(rec: dict) -> str | None:
    """The candidate a record draws, or None when it is none of them."""
    train = rec["config"]["train"]
    for label, (lr, schedule) in RECIPES.items():
        if train["lr"] == lr and train["lr_schedule"] == schedule:
            return label
    return None


def candidate_curves(folders: list[Path]) -> dict[tuple[str, str], list[float]]:
    """{(recipe, method): validation accuracy of rounds 1..ROUNDS} of the records in ``folders``. A
    constant-rate curve may be longer and is read to ROUNDS; a decaying one must be ROUNDS long."""
    found = {}
    for folder in folders:
        for rec in run_files(folder / DATASET, SWEEP):
            label = recipe_of(rec)
            if label is None or rec["method"] not in METHODS or rec["seed"] != 0:
                continue
            if rec["config"]["partition"]["name"] != PARTITION:
                continue
            n, constant = len(rec["rounds"]), RECIPES[label][1] == "constant"
            if n == ROUNDS or (constant and n > ROUNDS):
                found[label, rec["method"]] = [r["val"]["accuracy"] for r in rec["rounds"][:ROUNDS]]
    return found


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


def recipe_table(results: Path) -> str:
    curves = candidate_curves([results / "curves", results / "ppt-recipe"])
    verdicts = {key: judge(values) for key, values in curves.items()}
    lines = table_head(
        ["recipe", "lr", "schedule", "method", "plateau", "at plateau", "best", "lowest after", "settles"]
    )
    for label, (lr, schedule) in RECIPES.items():
        for method in METHODS:
            v = verdicts.get((label, method))
            if v is None:
                lines.append(table_row([label, f"{lr:g}", schedule, method, "not drawn", "", "", "", ""]))
                continue
            cells = [
                "still climbing" if v["plateau"] is None else str(v["plateau"]),
                "–" if v["value"] is None else f"{100 * v['value']:.1f}",
                f"{100 * v['best']:.1f}",
                "–" if v["lowest"] is None else f"{100 * v['lowest']:.1f}",
                "yes" if v["settles"] else "no",
            ]
            lines.append(table_row([label, f"{lr:g}", schedule, method, *cells]))
    missing = [f"{label} {m}" for label in RECIPES for m in METHODS if (label, m) not in verdicts]
    if missing:
        verdict = f"Not all drawn ({', '.join(missing)}): no recipe is chosen yet."
    elif (label := chosen(verdicts)) is None:
        verdict = "No recipe settles for both methods: PPT's record rounds stay unchosen."
    else:
        verdict = f"Chosen by the rule: recipe ({label})."
    return "\n".join([*lines, "", verdict])
