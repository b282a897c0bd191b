"""Methods registered by name. A method is one subpackage under ``fedbench/methods/`` (or a
plugin's package) that registers a :class:`MethodSpec`: its options, client module, aggregator,
bench plan, leaderboard note and the options the shared smoke test uses on the tiny fixture.

Built-ins and plugins register the same way (the ``fedbench.methods`` entry-point group; see
:mod:`fedbench.registry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fedbench.errors import ConfigError
from fedbench.methods.base import Aggregator, ClientModule
from fedbench.registry import Registry, build_options


@dataclass(frozen=True)
class BenchPlan:
    """What ``make bench METHOD=X`` runs: X beside ``baselines`` (and ``ablations`` on request)
    under one missing protocol, over ``types`` x rates x seeds. ``profiles`` overrides per profile:
    ``rates``, ``seeds`` and ``overrides`` (config sections to set, e.g. ``{"federation": {...}}``)."""

    baselines: tuple[str, ...] = ("fedavg", "fedprox")
    ablations: tuple[str, ...] = ()
    types: tuple[str, ...] = ("text",)
    protocol: str = "per_sample"
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, PaperTable] = field(default_factory=dict)  # dataset -> the paper's table on it
    # the test condition of the board's at-a-glance table (FedMVP's paper tests on complete data)
    headline: str = "as_train"
    # the baseline every method of the plan is compared with on the board (paired differences, bold):
    # the plan's FedAvg variant (FedPrime's FedAvg-P and MAP's are fedavg, PPT's FedAvg-PT fedavg-pt)
    reference: str = "fedavg"
    # the board of record's rounds (PROFILE=record): the plateau round of the plan's validation curves
    # (results/curves, benchmarks/round_curves.py, rule in tracking/curves.py); None: not chosen yet
    record_rounds: int | None = None

    def profile(self, name: str) -> dict[str, Any]:
        """The plan's settings under bench profile ``name``. ``record`` (the board of record) is the
        quick profile's federation and model run for ``record_rounds`` rounds, on the record
        profile's own seeds (the quick entry's seeds are dropped)."""
        if name != "record":
            return self.profiles.get(name, {})
        if self.record_rounds is None:
            raise ConfigError(
                "PROFILE=record: this plan's board-of-record rounds are not chosen yet; draw its "
                "validation curves (benchmarks/round_curves.py) and set BenchPlan.record_rounds"
            )
        quick = {k: v for k, v in self.profiles.get("quick", {}).items() if k != "seeds"}
        overrides = dict(quick.get("overrides", {}))
        overrides["federation"] = {**overrides.get("federation", {}), "rounds": self.record_rounds}
        return {**quick, "overrides": overrides}


# the bench profiles of ``make bench PROFILE=P`` on emoji (their grids: fedbench/bench_plans.py): quick is
# the smoke benchmark, record the board of record (quick's model and federation at converged rounds, 5
# seeds), full the larger federation
_QUICK = {"config": "experiments/emoji_quick.yaml", "rates": [0.1, 0.5, 0.9], "seeds": [0, 1], "workers": 2}
PROFILES = {
    "quick": _QUICK,  # the smoke benchmark (run times per plan and kind of CPU: README)
    # the board of record: each plan's quick settings for its BenchPlan.record_rounds, on 5 seeds, in
    # bf16-mixed on every machine: a record spans sessions, so its cells must not mix precisions as
    # `auto` would on machines of both kinds; bf16 is what FedAvg's record and FedAvg's and FedPrime's
    # curves ran in, and about 3x faster than 32-true where the CPU has it natively (a CPU without it
    # is refused; docs/board-of-record.md)
    "record": {**_QUICK, "seeds": [0, 1, 2, 3, 4], "precision": "bf16-mixed"},
    "full": {"config": "experiments/emoji_full.yaml", "rates": [0.0, 0.3, 0.5, 0.7, 0.9], "seeds": [0, 1, 2]},
}
BENCH_PROFILES = tuple(PROFILES)
# what each profile's board section is for, shown under its heading
PROFILE_ROLES = {
    "quick": (
        "A smoke benchmark (PROFILE=quick): a few rounds, where every method is still climbing, on one "
        "or two seeds. It shows that the methods run and roughly where they land, not which is "
        "better; cite the board of record (PROFILE=record)."
    ),
    "record": (
        "The board of record (PROFILE=record): the quick settings run to the round where every "
        "method's validation curve has plateaued (BenchPlan.record_rounds), on 5 seeds, in bf16-mixed "
        "on CPUs with native bf16."
    ),
    "full": "A larger federation (PROFILE=full): 10 clients, half of them per round.",
}

ANY_METHOD = "*"  # PaperTable.per_method key: options for every method of the table that has them


@dataclass(frozen=True)
class PaperTable:
    """``make bench METHOD=X DATASET=Y``: the paper's table of X on the real dataset Y.

    ``config`` is the experiments/ YAML with the paper's setting (dataset, backbone, protocol,
    rounds, optimiser); ``axes`` are the table's columns as sweep axes; the rows are X, its
    baselines (and ablations on request) plus ``extra_methods`` (e.g. a centralized upper bound).
    The quick profile runs the first of ``seeds``, the full profile all of them. ``per_method``:
    options of single methods as the paper runs them (e.g. a baseline's server optimiser); under
    ``"*"`` (:data:`ANY_METHOD`), options for every method of the table that has them all. An axis
    named ``setting`` takes dicts of config paths set together (a column that pairs a partition
    with its learning rate)."""

    config: str
    axes: dict[str, list[Any]]
    extra_methods: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0, 1, 2)
    per_method: dict[str, dict[str, Any]] = field(default_factory=dict)

    def options_for(self, method: str, option_names: set[str]) -> dict[str, Any]:
        """The table's options of ``method`` (whose options class has ``option_names``): the
        ``"*"`` options when it has them all, then its own."""
        common = self.per_method.get(ANY_METHOD, {})
        return {**(common if set(common) <= option_names else {}), **self.per_method.get(method, {})}


# MAP's prompts as its paper and code run them (vilt/config.py: prompt_length 16, prompt_layers
# [0..5]), for every method of a MAP table that has those options (MAPOptions' own defaults, 4 x 3,
# are the emoji prototype's)
MAP_PROMPTS = {"prompt_length": 16, "prompt_layers": 6}

# MAP's per-sample protocol with missing text: on emoji the text carries most of the signal, so
# missing text is where the missing rate bites (image-only ~62% vs complete ~70%).
DEFAULT_PLAN = BenchPlan(
    # MAP's Table 1 (eta 0.7, each missing type) on its three datasets, with its centralized row
    tables={
        dataset: PaperTable(
            f"experiments/map_{dataset}.yaml",
            {"missing.type": ["text", "image", "both"]},
            ("centralized",),
            per_method={ANY_METHOD: MAP_PROMPTS},
        )
        for dataset in ("mmimdb", "food101", "hatememes")
    },
    record_rounds=10,  # results/curves: fedavg plateaus at 10, fedprox at 9 (rate 0.5, 40 rounds)
)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    client: type[ClientModule]
    aggregator: Callable[..., Aggregator]  # (options, context) -> Aggregator
    options: type  # a dataclass of the method's own settings
    description: str
    personalized: bool = False  # clients keep state: report per-client (personalized) metrics
    centralized: bool = False  # pool every client's data into one
    local_only: bool = (
        False  # no global model: scored as the mean over the clients' own models (local, pFedPG)
    )
    notes: str = ""  # shown on the leaderboard (once, when the method is on the board)
    bench_plan: BenchPlan | None = None  # None: the default plan (MAP's protocol beside fedavg, fedprox)
    test_options: dict[str, Any] | None = None  # None: the options class's TEST_OPTIONS, if any
    requires: frozenset[str] = frozenset({"prompts", "multimodal"})  # backbone capabilities needed
    needs_server_context: bool = False  # the aggregator gets a ServerContext
    # "parallel": every sampled client starts from the round's global state (FedAvg and friends);
    # "cyclic": client t+1 starts from client t's shared result, one after another within a round
    # (what the official FedPrime code does by aliasing the shared tensors)
    schedule: str = "parallel"
    # the version of the method's behaviour: bump it with any change that can change a result
    # (federation/resolve.py puts it in the run identity from 2 on; tests/fingerprints.json checks it)
    version: int = 1

    def supports(self, backbone_spec) -> bool:
        return self.requires <= backbone_spec.capabilities

    @property
    def requirement(self) -> str:
        return "needs a backbone with " + ", ".join(sorted(self.requires))

    @property
    def plan(self) -> BenchPlan:
        return self.bench_plan or DEFAULT_PLAN

    def options_for_tests(self) -> dict[str, Any]:
        """Options the shared smoke test uses on the tiny fixture (2 layers, hidden 32)."""
        if self.test_options is not None:
            return dict(self.test_options)
        return dict(getattr(self.options, "TEST_OPTIONS", {}))


METHODS: Registry[MethodSpec] = Registry(
    "method", "fedbench.methods", "fedbench.methods.builtin", "method.name"
)
register = METHODS.register


def bench_sweep(method: str, profile: str) -> str:
    """The sweep name (board section) of ``make bench METHOD=method PROFILE=profile``."""
    return f"bench-{method}-{profile}"


def table_sweep(method: str, dataset: str) -> str:
    """The sweep name (board section) of ``method``'s paper table on ``dataset``."""
    return f"table-{method}-{dataset}"


def plan_sections(method: str, profiles=BENCH_PROFILES) -> list[str]:
    """The board sections (sweep names) that ``method``'s plan writes:
    its bench profiles and its paper tables."""
    plan = get_method(method).plan
    return [*(bench_sweep(method, p) for p in profiles), *(table_sweep(method, d) for d in plan.tables)]


def plan_headlines(profiles=BENCH_PROFILES) -> dict[str, str]:
    """Board section -> the test condition of its at-a-glance table, for the plans that name one
    other than ``as_train`` (``BenchPlan.headline``)."""
    return {
        section: get_method(method).plan.headline
        for method in available()
        if get_method(method).plan.headline != "as_train"
        for section in plan_sections(method, profiles)
    }


def plan_references(profiles=BENCH_PROFILES) -> dict[str, str]:
    """Board section -> the baseline its methods are compared with (``BenchPlan.reference``)."""
    return {
        section: get_method(method).plan.reference
        for method in available()
        for section in plan_sections(method, profiles)
    }


def plan_roles(profiles=BENCH_PROFILES) -> dict[str, str]:
    """Board section -> what it is for (:data:`PROFILE_ROLES`), for every plan's bench sections."""
    return {bench_sweep(method, p): PROFILE_ROLES[p] for method in available() for p in profiles}


def available() -> list[str]:
    return METHODS.names()


def get_method(name: str) -> MethodSpec:
    return METHODS.get(name)


def method_options(spec: MethodSpec, options: dict[str, Any] | None) -> Any:
    """The method's options dataclass from a dict, refusing unknown keys with a clear line."""
    return build_options(spec.options, options, "method.options")


def plan_methods(method: str, ablations: bool) -> list[str]:
    """``method``, its plan's baselines and (``ablations``) its ablations, in that order."""
    plan = get_method(method).plan
    return list(dict.fromkeys([method, *plan.baselines, *(plan.ablations if ablations else [])]))


def record_cell_count(method: str) -> int:
    """How many cells ``make bench METHOD=method PROFILE=record ABLATIONS=1`` runs: methods x missing
    types x rates x the plan's other axes x seeds, the product fedbench/sweep.py's Grid crosses
    (tests/test_record_profile.py checks it against the cells themselves for every plan)."""
    plan = get_method(method).plan
    profile = plan.profile("record")
    count = (
        len(plan_methods(method, ablations=True))
        * len(plan.types)
        * len(profile.get("rates", PROFILES["record"]["rates"]))
    )
    for values in profile.get("axes", {}).values():
        count *= len(values)
    return count * len(PROFILES["record"]["seeds"])


def record_progress(records: list[dict[str, Any]], dataset: str = "emoji") -> dict[str, str]:
    """Board section -> its role line with how far it is, for every ``PROFILE=record`` section of
    ``records`` that holds fewer runs than its plan has cells: the board of record is built over
    several sessions, and until a plan's section is complete it must not read as finished. Runs are
    counted by distinct run id against the plan's cell count. The record's precision is pinned, so
    each cell has one run id; cells a maintainer adds in another precision (``PRECISION=``) into the
    same section would be counted too."""
    found: dict[str, set] = {}
    for rec in records:
        if rec.get("dataset") == dataset and rec.get("sweep"):
            found.setdefault(rec["sweep"], set()).add(rec.get("run_id"))
    progress = {}
    for method in available():
        section = bench_sweep(method, "record")
        if section in found and len(found[section]) < (cells := record_cell_count(method)):
            progress[section] = (
                f"{PROFILE_ROLES['record']} In progress: {len(found[section])} of the plan's {cells} cells "
                "are recorded so far; until all are, this section is not the board of record and its "
                "statistics cover only those cells."
            )
    return progress
