"""Consistency models on the parameter server (BSP, SSP, ASP) and backup workers, on real
worker processes; each checked against BSP or the central twin, and by its trace."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from chimera_nb import ConfigurationError, LocalCluster, ParameterServerMaster, SGDWorker
from chimera_nb.algorithms import gradient_descent, squared_loss
from chimera_nb.algorithms.consistency import ASP, BSP, SSP, make_consistency, staleness_aware
from chimera_nb.algorithms.preprocessing import ColumnStatistics, Standardizer


@pytest.fixture(scope="module")
def wine_trio(wine_quality):
    """Three SGD workers on unequal shards (50/30/20 %) of wine quality."""
    X, y = wine_quality
    with LocalCluster.from_shards(
        SGDWorker("regressor"), X, y, n_workers=3, proportions=[0.5, 0.3, 0.2], name="clocks"
    ) as cluster:
        yield cluster


def test_ssp_with_staleness_zero_gives_bsp_weights_bit_for_bit(wine_trio):
    # Prepare
    options = dict(max_iter=40, tol=0.0, encoding="binary")
    bsp = ParameterServerMaster("regressor", **options)
    ssp0 = ParameterServerMaster(
        "regressor", consistency="ssp", staleness=0, staleness_aware=True, **options
    )

    # Execute
    bsp.fit(wine_trio)
    ssp0.fit(wine_trio)

    # Assert: the same weights, losses and rounds, and every update fresh
    assert np.array_equal(bsp.coef_, ssp0.coef_)
    assert np.array_equal(bsp.intercept_, ssp0.intercept_)
    assert bsp.loss_curve_ == ssp0.loss_curve_
    assert [r.answered for r in bsp.history_] == [r.answered for r in ssp0.history_]
    assert len(ssp0.updates_) == 40 * 3
    assert {u.staleness for u in ssp0.updates_} == {0}


def test_no_ssp_update_is_staler_than_s_with_a_straggler(wine_trio):
    # Prepare: worker3 answers 20 ms late, so the others run ahead as far as SSP(2) lets them
    master = ParameterServerMaster("regressor", max_iter=30, consistency="ssp", staleness=2)
    wine_trio.slow("worker3", 0.02)
    try:
        # Execute
        master.fit(wine_trio)
    finally:
        wine_trio.slow("worker3", 0)

    # Assert: the trace (updates_ and spans) never exceeds s, and it did run ahead
    staleness = [update.staleness for update in master.updates_]
    assert max(staleness) == 2
    spans = master.spans_.to_frame()
    fit_steps = spans[spans["endpoint"].str.endswith("fit-step")]
    assert fit_steps["staleness"].max() == 2
    assert all(0 <= update.clock - 1 - update.read_clock <= 2 for update in master.updates_)
    per_worker = {
        name: [u.clock for u in master.updates_ if u.worker == name] for name in wine_trio.names
    }
    assert all(clocks == list(range(1, len(clocks) + 1)) for clocks in per_worker.values())
    records = [r for r in master.history_ if "staleness" in r.extra]
    assert max(max(r.extra["staleness"].values()) for r in records) == 2


@pytest.mark.parametrize(
    "options", [dict(consistency="ssp", staleness=3), dict(consistency="asp")], ids=["ssp3", "asp"]
)
def test_ssp_and_asp_converge_to_linear_regression(wine_trio, wine_quality, options):
    # Prepare
    X, y = wine_quality
    expected = LinearRegression().fit(X, y).score(X, y)

    # Execute
    master = ParameterServerMaster("regressor", encoding="binary", **options).fit(wine_trio)

    # Assert
    assert r2_score(y, master.predict(X)) == pytest.approx(expected, abs=0.01)
    assert master.history_[-1].loss == master.loss_curve_[-1]


def test_asp_never_waits_so_fast_workers_send_more_gradients(wine_trio):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=20, consistency="asp")
    wine_trio.slow("worker1", 0.05)
    try:
        # Execute
        master.fit(wine_trio)
    finally:
        wine_trio.slow("worker1", 0)

    # Assert: the budget is 20 gradients per worker, spent mostly by the fast two
    counts = {name: sum(u.worker == name for u in master.updates_) for name in wine_trio.names}
    assert sum(counts.values()) == 60
    assert counts["worker1"] < min(counts["worker2"], counts["worker3"])
    assert max(u.staleness for u in master.updates_) > 2
    assert master.flowcharts[0].machine == "parameter-server fit (ASP)"


def test_backup_workers_use_the_first_replies_weighted_as_their_shards(wine_quality):
    # Prepare: worker3 is a straggler; with one backup worker each round uses the other two
    X, y = wine_quality
    with LocalCluster.from_shards(
        SGDWorker("regressor"), X, y, n_workers=3, proportions=[0.5, 0.3, 0.2], name="backup"
    ) as cluster:
        cluster.slow("worker3", 0.2)
        master = ParameterServerMaster("regressor", max_iter=8, tol=0.0, backup_workers=1)

        # Execute
        master.fit(cluster)

    # Assert: every round cancelled worker3, and the steps are those of full-batch gradient
    # descent on the first two shards (standardized with all three shards' statistics)
    assert all(set(r.cancelled) == {"worker3"} for r in master.history_)
    assert all(r.answered == ["worker1", "worker2"] for r in master.history_)
    spans = master.spans_.to_frame()
    fit_steps = spans[spans["endpoint"].str.endswith("fit-step")]
    assert set(fit_steps[fit_steps.worker == "worker3"].status) == {"cancelled"}
    n_fast = int(round(0.8 * len(X)))
    X_all = np.asarray(X, dtype=float)
    standardizer = Standardizer.from_statistics(
        ColumnStatistics.of(X_all), ColumnStatistics.of(np.asarray(y, dtype=float))
    )
    fast_X = standardizer.transform(X_all[:n_fast])
    fast_y = standardizer.transform_target(np.asarray(y, dtype=float)[:n_fast])
    twin = gradient_descent(fast_X, fast_y, squared_loss, schedule=0.1, max_iter=8)
    weights, bias = standardizer.weights_to_raw(twin.weights, twin.bias)
    assert np.max(np.abs(master.coef_ - weights[0])) < 1e-10 * max(1, np.max(np.abs(weights)))
    assert master.intercept_ == pytest.approx(bias, rel=1e-10)


def test_consistency_rules():
    assert BSP().may_start(3, 3) and not BSP().may_start(4, 3)
    assert SSP(2).may_start(5, 3) and not SSP(2).may_start(6, 3)
    assert ASP().may_start(10_000, 0)
    assert make_consistency("ssp", 0) == SSP(0) and SSP(0).staleness == BSP().staleness
    assert staleness_aware(0.3, 0) == 0.3 and staleness_aware(0.3, 2) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="staleness must be an int >= 0"):
        SSP(-1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(consistency="ssp"), "needs staleness=s"),
        (dict(consistency="asp", staleness=2), "staleness applies only to consistency='ssp'"),
        (dict(consistency="tsp"), "consistency must be 'bsp' or 'ssp' or 'asp'"),
        (dict(consistency="asp", backup_workers=1), "backup_workers applies to BSP rounds"),
        (dict(backup_workers=-1), "backup_workers must be an integer in"),
        (dict(staleness_aware="yes"), "staleness_aware must be True or False"),
    ],
)
def test_bad_consistency_options_say_what_to_fix(wine_trio, options, message):
    with pytest.raises(ConfigurationError, match=message):
        ParameterServerMaster("regressor", **options).fit(wine_trio)


class EveryOtherClock:
    """A rule of one's own (as a lab's): a worker may be one clock ahead of the slowest."""

    def may_start(self, clock: int, slowest: int) -> bool:
        return clock - slowest <= 1


def test_a_rule_object_of_ones_own_runs_as_ssp_does(wine_trio):
    # Execute
    master = ParameterServerMaster("regressor", max_iter=10, consistency=EveryOtherClock())
    master.fit(wine_trio)

    # Assert
    assert len(master.updates_) == 30
    assert max(update.staleness for update in master.updates_) <= 1
    assert master.flowcharts[0].machine == "parameter-server fit (SSP)"
