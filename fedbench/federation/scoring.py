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
from fedbench.methods.base import ClientModule, State

PersonalStore = dict[int, State]


class Scorer:
    """Scores states of one experiment with one module instance."""

    def __init__(self, exp, spec, module: ClientModule):
        self.exp, self.spec, self.module = exp, spec, module
        self.batch_size, self.precision = exp.cfg.train.eval_batch_size, exp.cfg.train.precision
        self.task = exp.bundle.metric_spec.task

    def load(self, shared: State, personal: State) -> ClientModule:
        self.module.load_trainable_state({**shared, **personal})
        return self.module

    def eval_personal(self, personal: PersonalStore) -> State:
        """Personal tensors used when scoring the *global* model: the sample-weighted client mean."""
        if not personal or not next(iter(personal.values())):
            return {}
        sizes = [len(ix) for ix in self.exp.clients]
        return weighted_mean(list(personal.values()), sizes)

    def scoring_personals(self, personal: PersonalStore) -> list[State]:
        """Local-only methods are scored as the mean over the clients' own models; others as one
        global model."""
        return list(personal.values()) if self.spec.local_only else [self.eval_personal(personal)]

    def _predict(self, module, index, codes):
        return predict(module, self.exp.bundle, index, codes, batch_size=self.batch_size, precision=self.precision)

    def scored(self, shared: State, personal: PersonalStore, index: np.ndarray, codes: np.ndarray) -> tuple[dict[str, float], list]:
        """Metrics of the global model, or for local-only methods the mean over the clients' models."""
        results, preds = [], []
        for p_state in self.scoring_personals(personal):
            p, y = self._predict(self.load(shared, p_state), index, codes)
            results.append(classification_metrics(p, y, self.exp.bundle.num_classes, self.task))
            preds.append((p, y))
        return {k: float(np.mean([m[k] for m in results])) for k in results[0]}, preds

    def personalized(self, shared: State, personal: PersonalStore, global_preds: tuple | None = None) -> dict[str, float]:
        """Mean over clients of label-weighted test accuracy (as_train condition), each client with its
        own personal state; methods without personal state reuse the global model's predictions.
        Defined for single-label classification only (empty for multi-label and binary tasks)."""
        exp = self.exp
        if self.task != "multiclass":
            return {}
        idx, codes = exp.test["as_train"]
        labels = exp.bundle.labels.numpy()
        accs = []
        for c, rows in enumerate(exp.clients):
            counts = np.bincount(labels[rows], minlength=exp.bundle.num_classes)
            if self.spec.personalized or global_preds is None:
                p_state = personal[c] if self.spec.personalized else self.eval_personal(personal)
                p, y = self._predict(self.load(shared, p_state), idx, codes)
            else:
                p, y = global_preds
            accs.append(label_weighted_accuracy(p, y, exp.bundle.num_classes, counts))
        return {"accuracy": float(np.mean(accs)), "per_client": [float(a) for a in accs]}

    def test_metrics(self, shared: State, personal: PersonalStore) -> tuple[dict[str, dict[str, float]], tuple | None]:
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
        for p_state in self.scoring_personals(personal):
            module = self.load(shared, p_state)
            passes = [self._predict(module, index, np.full(len(index), code, dtype=np.int8)) for code in (0, 1, 2)]
            by_code.append(torch.stack([p for p, _ in passes]))  # [3, N]: prediction under each code
            labels = passes[0][1]
        out, as_train = {}, None
        for cond in TEST_CONDITIONS:
            cond_index, codes = exp.test[cond]
            assert np.array_equal(cond_index, index), "test conditions must share the test rows"
            codes = torch.as_tensor(codes, dtype=torch.long)
            results = [classification_metrics(bc[codes, rows], labels, exp.bundle.num_classes, self.task) for bc in by_code]
            out[cond] = {k: float(np.mean([m[k] for m in results])) for k in results[0]}
            if cond == "as_train" and len(by_code) == 1:
                as_train = (by_code[0][codes, rows], labels)
        return out, as_train

    def test_metrics_per_condition(self, shared: State, personal: PersonalStore) -> tuple[dict[str, dict[str, float]], tuple | None]:
        """One evaluation pass per condition: for modules whose predictions depend on the batch."""
        out, as_train = {}, None
        for cond in TEST_CONDITIONS:
            out[cond], preds = self.scored(shared, personal, *self.exp.test[cond])
            if cond == "as_train" and len(preds) == 1:
                as_train = preds[0]
        return out, as_train
