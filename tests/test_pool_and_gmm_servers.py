"""PPT's pool server (fallbacks, the kappa filler, its metadata), GMM-PT's server against a direct
scikit-learn fit, and the exact messages and edge cases of the ARI and CKA-weight helpers.

The PPT tests replace the matcher with a stub that returns chosen centres, so every expected pool
is worked out by hand from the clients' rows."""

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture

from fedbench.aggregation.cka import cka_weights
from fedbench.aggregation.matching_scenarios import adjusted_rand_index
from fedbench.errors import ConfigError
from fedbench.methods.base import ClientUpdate
from fedbench.methods.ppt import PPTAggregator, PPTOptions
from fedbench.methods.prompt_baselines.gmm import GMMPTAggregator, GMMPTOptions


class StubMatcher:
    """Stands in for ``options.matched_centres``: records the local rows, returns ``centres``."""

    def __init__(self, centres, merge_radius=None):
        self.centres, self.seen, self.radius = torch.tensor(centres, dtype=torch.float64), None, None
        self.result = type("Result", (), {} if merge_radius is None else {"merge_radius": merge_radius})()

    def __call__(self, local, weights, seed, radius=None):
        self.seen, self.radius = [x.clone() for x in local], radius
        return self.centres, self.result


def stubbed(monkeypatch, centres, kappa, merge_radius=None, new_centre="fixed"):
    opts = PPTOptions(pool_size=max(kappa, 4), kappa=kappa, new_centre=new_centre)
    stub = StubMatcher(centres, merge_radius)
    monkeypatch.setattr(opts, "matched_centres", stub)
    return PPTAggregator(opts), stub


def test_too_few_centres_are_padded_with_the_weighted_mean_of_the_dropped_rows(monkeypatch):
    """Rows 0 and 2 are used, 1 and 3 dropped; the matcher returns one centre but kappa = 3, so the
    pool gets the sample-weighted means of rows 1 and 3 (the dropped rows, in index order)."""
    a = torch.tensor([[0.0, 1.0], [2.0, 4.0], [5.0, 5.0], [8.0, 0.0]])
    b = torch.tensor([[1.0, 1.0], [6.0, 0.0], [7.0, 7.0], [0.0, 4.0]])
    agg, stub = stubbed(monkeypatch, [[9.0, 9.0]], kappa=3)
    usages = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0]]
    out = agg.aggregate_pool([a, b], usages, [1.0, 3.0], seed=0)
    # weights 1/4 and 3/4: row 1 -> (2 + 18) / 4, (4 + 0) / 4; row 3 -> (8 + 0) / 4, (0 + 12) / 4
    assert torch.equal(out, torch.tensor([[9.0, 9.0], [5.0, 1.0], [2.0, 3.0]]))
    assert torch.equal(stub.seen[0], a[[0, 2]]) and torch.equal(stub.seen[1], b[[0, 2]])
    assert agg.metadata() == {"pool_size": 3, "pool_used": 2}


def test_exactly_kappa_centres_are_kept_as_they_are_even_when_no_client_reports_samples(monkeypatch):
    """Only the pool is shared and the matcher already returns kappa = 2 centres: no sample-count
    average is taken, so clients reporting 0 samples still give a pool (weighted_mean would refuse)."""
    agg, _ = stubbed(monkeypatch, [[1.5, -2.0], [0.25, 3.0]], kappa=2)
    pool = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    update = ClientUpdate(0, {"pool": pool}, 0, meta={"usage": [1.0, 1.0, 0.0]})
    out = agg.aggregate({}, [update], round_index=0, seed=0)
    assert list(out) == ["pool"]
    assert out["pool"].dtype == torch.float32
    assert torch.equal(out["pool"], torch.tensor([[1.5, -2.0], [0.25, 3.0]]))
    assert agg.metadata() == {"pool_size": 2, "pool_used": 2}


@pytest.mark.parametrize("usage", [[0.0, 0.0, 0.0, 0.0], None], ids=["no-row-used", "no-report"])
def test_a_single_client_that_used_no_row_or_sent_no_report_keeps_its_whole_pool(monkeypatch, usage):
    """Both cases send all M = 4 rows (not the d = 2 columns) to the matcher; the pool comes back in
    the client's dtype."""
    pool = torch.arange(8, dtype=torch.float16).reshape(4, 2)
    agg, stub = stubbed(monkeypatch, [[1.0, 2.0], [3.0, 4.0]], kappa=2)
    out = agg.aggregate_pool([pool], [usage], [5.0], seed=0)
    assert len(stub.seen) == 1 and torch.equal(stub.seen[0], pool)
    assert out.dtype == torch.float16 and torch.equal(out, torch.tensor([[1.0, 2.0], [3.0, 4.0]]).half())
    assert agg.metadata() == {"pool_size": 2, "pool_used": 4}


def test_pools_of_different_shapes_are_refused_with_their_sorted_shapes(monkeypatch):
    agg, _ = stubbed(monkeypatch, [[0.0, 0.0]], kappa=1)
    with pytest.raises(ValueError) as e:
        agg.aggregate_pool([torch.zeros(4, 2), torch.zeros(3, 2)], [None, None], [1.0, 1.0], seed=0)
    assert str(e.value) == "PPT: clients returned pools of shapes [(3, 2), (4, 2)]"


def test_the_matchers_merge_radius_is_reported_as_a_float(monkeypatch):
    agg, _ = stubbed(monkeypatch, [[1.0, 0.0], [0.0, 1.0]], kappa=2, merge_radius=np.float32(0.25))
    agg.aggregate_pool([torch.eye(2)], [[1.0, 1.0]], [1.0], seed=0)
    meta = agg.metadata()
    assert meta == {"pool_size": 2, "pool_used": 2, "merge_radius": 0.25}
    assert type(meta["merge_radius"]) is float


def test_ppt_server_keeps_its_context_starts_with_no_metadata_and_refuses_alias_without_cycle():
    context = object()
    agg = PPTAggregator(PPTOptions(), context)
    assert agg.context is context and agg.metadata() == {}
    with pytest.raises(ConfigError) as e:
        PPTAggregator(PPTOptions(alias_shared=True))
    assert str(e.value) == (
        "method.options.alias_shared needs the cyclic schedule of ppt-official; use method.name=ppt-official"
    )


# ----- GMM-PT --------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=2 on purpose
def test_gmm_pt_server_is_the_seeded_bayesian_gmm_of_the_pooled_tokens_ranked_by_weight():
    """One client, 12 unclustered tokens (so the covariance type and the iteration cap change the
    means), a seed above 2**32 (the server passes seed mod 2**32: sklearn takes no more), a
    prompts-only state with 0 samples (no head to average, so no sample count is needed).
    Reference: scikit-learn fitted directly with n_components = n_init = n_tokens, then the means
    ordered by decreasing weight."""
    tokens = torch.randn(12, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    opts = GMMPTOptions(n_tokens=3, covariance_type="spherical", max_iter=2)
    agg = GMMPTAggregator(opts)
    out = agg.aggregate({}, [ClientUpdate(0, {"prompts": tokens}, 0)], round_index=0, seed=2**32 + 7)
    ref = BayesianGaussianMixture(
        n_components=3, n_init=3, covariance_type="spherical", max_iter=2, random_state=7
    ).fit(tokens.numpy())
    order = np.argsort(-ref.weights_, kind="stable")
    assert list(out) == ["prompts"]
    np.testing.assert_allclose(out["prompts"].numpy(), ref.means_[order], rtol=0, atol=1e-12)
    assert agg.metadata() == {"gmm_components": 3, "gmm_converged": bool(ref.converged_)}


def test_gmm_pt_server_keeps_its_context_and_starts_with_no_metadata():
    context = object()
    agg = GMMPTAggregator(GMMPTOptions(), context)
    assert agg.context is context and agg.metadata() == {}


def test_gmm_pt_max_iter_below_one_is_refused_with_the_default_as_hint():
    with pytest.raises(ConfigError) as e:
        GMMPTOptions(max_iter=0).validate()
    assert str(e.value) == "method.options.max_iter: must be >= 1, got 0; try 100"


# ----- ARI and CKA weights -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "a, b",
    [
        ([3], [7]),
        ([0, 0, 1, 1], [0, 0, 1, 2]),
        ([2, 2, 0, 1, 1, 0, 2], [1, 0, 0, 1, 1, 0, 5]),
        ([4, 4], [1, 2]),
    ],
)
def test_adjusted_rand_index_agrees_with_sklearn(a, b):
    """Including one item only (no pairs at all: sklearn's 1.0, the partitions agree)."""
    assert adjusted_rand_index(np.array(a), np.array(b)) == pytest.approx(
        adjusted_rand_score(a, b), abs=1e-12
    )


def test_cka_weights_without_clients_names_the_function():
    with pytest.raises(ValueError) as e:
        cka_weights([])
    assert str(e.value) == "cka_weights: no client features"
