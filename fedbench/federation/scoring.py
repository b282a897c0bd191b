"""Scoring a federation's state: the global model on validation and test conditions, and each
client's model (personalized). Every function takes the states to score as arguments, so scoring
the validation-selected round never swaps the federation's own state in and out.
"""

from __future__ import annotations

import numpy as np
import torch

from fedbench.aggregation.weighted import weighted_mean
from fedbench.batch import TEST_CONDITIONS
from fedbench.federation.evaluate import classification_metrics, label_weighted_accuracy, predict
from fedbench.federation.personal_store import PersonalStore
from fedbench.methods.base import ClientModule, State
from fedbench.seeds import rng


def _per_client_mean(
    results: list[dict[str, float]], groups: list[tuple[State, list[int] | None]]
) -> dict[str, float]:
    """The mean over clients of each metric, where ``results[i]`` holds for every client of
    ``groups[i]`` (summed in client order, so the numbers equal a mean over one pass per client)."""
    per_client = sorted(
        ((c, i) for i, (_, cs) in enumerate(groups) for c in (cs or [-1])), key=lambda t: t[0]
    )
    return {k: float(np.mean([results[i][k] for _, i in per_client])) for k in results[0]}


class Scorer:
    """Scores states of one experiment with one module instance."""

    def __init__(self, exp, spec, module: ClientModule):
        self.exp, self.spec, self.module = exp, spec, module
        self.batch_size, self.precision = exp.cfg.train.eval_batch_size, exp.cfg.train.precision
        self.task = exp.bundle.metric_spec.task
        self.sizes = [len(ix) for ix in exp.clients]

    def load(self, shared: State, personal: State) -> ClientModule:
        self.module.load_trainable_state({**shared, **personal})
        return self.module

    def eval_personal(self, personal: PersonalStore) -> State:
        """Personal tensors used when scoring the *global* model: the sample-weighted mean over all
        clients of their personal states.

        It is computed over the distinct states only: each client with a state of its own,
        weighted by its sample count, then the initial state once, weighted by the summed sample
        counts of the clients never sampled. Once every client has its own state this is the
        per-client mean term by term; before, it equals it up to float64 rounding (the mean is
        accumulated in float64 and cast back)."""
        if not personal.initial:
            return {}
        groups = personal.groups()
        return weighted_mean([s for s, _ in groups], [sum(self.sizes[c] for c in cs) for _, cs in groups])

    def scoring_groups(self, personal: PersonalStore) -> list[tuple[State, list[int] | None]]:
        """Local-only methods are scored as the mean over the clients' own models (one pass per
        distinct state, counted once per client holding it); others as one global model."""
        return personal.groups() if self.spec.local_only else [(self.eval_personal(personal), None)]

    def _predict(self, module, index, codes):
        return predict(
            module, self.exp.bundle, index, codes, batch_size=self.batch_size, precision=self.precision
        )

    def scored(
        self, shared: State, personal: PersonalStore, index: np.ndarray, codes: np.ndarray
    ) -> tuple[dict[str, float], list]:
        """Metrics of the global model, or for local-only methods the mean over the clients' models."""
        groups = self.scoring_groups(personal)
        results, preds = [], []
        for p_state, _ in groups:
            p, y = self._predict(self.load(shared, p_state), index, codes)
            results.append(classification_metrics(p, y, self.exp.bundle.num_classes, self.task))
            preds.append((p, y))
        return _per_client_mean(results, groups), preds

    def personalized_clients(self) -> list[int] | None:
        """The clients the personalized score covers: all (None), or a seeded sample of
        ``federation.personalized_clients`` when there are more clients than that."""
        k, n = self.exp.cfg.federation.personalized_clients, len(self.exp.clients)
        if k is None or n <= k:
            return None
        return sorted(rng(self.exp.cfg.seed, "personalized-sample").choice(n, size=k, replace=False).tolist())

    def personalized(self, shared: State, personal: PersonalStore, global_preds: tuple | None = None) -> dict:
        """Mean over clients of label-weighted test accuracy (as_train condition), each client with its
        own personal state; methods without personal state reuse the global model's predictions.
        One test pass per distinct personal state (never-sampled clients share the initial one),
        over every client or a seeded sample of them (``federation.personalized_clients``). The
        record says which: ``scored_clients`` of ``of_clients`` (fewer: a sample, whose ids are in
        ``clients``; ``per_client`` follows that order) and ``passes`` over the test split. Defined
        for single-label classification only (empty for multi-label and binary tasks)."""
        exp = self.exp
        if self.task != "multiclass":
            return {}
        sample = self.personalized_clients()
        clients = list(range(len(exp.clients))) if sample is None else sample
        idx, codes = exp.test["as_train"]
        labels = exp.bundle.labels.numpy()
        if self.spec.personalized:
            groups = personal.groups(clients)
        else:  # one global model: its as_train predictions when given, else one pass
            groups = [(None if global_preds is not None else self.eval_personal(personal), clients)]
        accs: dict[int, float] = {}
        for p_state, members in groups:
            p, y = global_preds if p_state is None else self._predict(self.load(shared, p_state), idx, codes)
            for c in members:
                counts = np.bincount(labels[exp.clients[c]], minlength=exp.bundle.num_classes)
                accs[c] = label_weighted_accuracy(p, y, exp.bundle.num_classes, counts)
        per_client = [float(accs[c]) for c in clients]
        out = {
            "accuracy": float(np.mean(per_client)),
            "per_client": per_client,
            "scored_clients": len(clients),
            "of_clients": len(exp.clients),
            "passes": sum(p is not None for p, _ in groups),
        }
        if sample is not None:
            out["clients"] = sample
        return out

    def test_metrics(
        self, shared: State, personal: PersonalStore
    ) -> tuple[dict[str, dict[str, float]], tuple | None]:
        """Metrics per test condition, plus the as_train predictions of a single global model.

        When a module's prediction for a sample depends only on that sample and its missing code
        (``batch_independent``), every condition is assembled from three passes over the test
        split (complete, text missing, image missing) instead of one pass per condition.
        """
        if not getattr(self.module, "batch_independent", True):
            return self.test_metrics_per_condition(shared, personal)
        exp = self.exp
        index = exp.test["as_train"][0]
        rows = torch.arange(len(index))
        by_code, labels = [], None
        groups = self.scoring_groups(personal)
        for p_state, _ in groups:
            module = self.load(shared, p_state)
            passes = [
                self._predict(module, index, np.full(len(index), code, dtype=np.int8)) for code in (0, 1, 2)
            ]
            by_code.append(torch.stack([p for p, _ in passes]))  # [3, N]: prediction under each code
            labels = passes[0][1]
        out, as_train = {}, None
        for cond in TEST_CONDITIONS:
            cond_index, codes = exp.test[cond]
            assert np.array_equal(cond_index, index), "test conditions must share the test rows"
            codes = torch.as_tensor(codes, dtype=torch.long)
            results = [
                classification_metrics(bc[codes, rows], labels, exp.bundle.num_classes, self.task)
                for bc in by_code
            ]
            out[cond] = _per_client_mean(results, groups)
            if cond == "as_train" and len(by_code) == 1:
                as_train = (by_code[0][codes, rows], labels)
        return out, as_train

    def test_metrics_per_condition(
        self, shared: State, personal: PersonalStore
    ) -> tuple[dict[str, dict[str, float]], tuple | None]:
        """One evaluation pass per condition: for modules whose predictions depend on the batch."""
        out, as_train = {}, None
        for cond in TEST_CONDITIONS:
            out[cond], preds = self.scored(shared, personal, *self.exp.test[cond])
            if cond == "as_train" and len(preds) == 1:
                as_train = preds[0]
        return out, as_train
