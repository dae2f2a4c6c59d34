"""ShardedParameterServerMaster with real worker and parameter-shard processes: the same
rounds as the star (ParameterServerMaster), and a shard joining mid-fit moves only the
blocks the hash ring says."""

from __future__ import annotations

import time

import numpy as np
import pytest

from chimera_nb import (
    LocalCluster,
    ParameterServerMaster,
    ParameterShard,
    ShardedParameterServerMaster,
    ShardedSGDWorker,
)
from chimera_nb.algorithms import HashRing
from chimera_nb.wire import paths


@pytest.fixture(scope="module")
def wine_workers(wine_quality):
    """Three sharded SGD workers on unequal shards (50/30/20 %) of wine quality; they answer
    the star's fit-step too."""
    X, y = wine_quality
    with LocalCluster.from_shards(
        ShardedSGDWorker("regressor"),
        X,
        y,
        n_workers=3,
        proportions=[0.5, 0.3, 0.2],
        name="sharded-wine",
    ) as cluster:
        yield cluster


@pytest.fixture
def four_shards():
    with LocalCluster(
        {f"shard{i}": ParameterShard() for i in range(1, 5)}, name="shards"
    ) as cluster:
        yield cluster


def test_one_round_averages_the_gradient_as_the_star_does(wine_workers, four_shards):
    # Prepare: one step of rate 1 from zero weights is minus the averaged gradient
    star = ParameterServerMaster("regressor", learning_rate=1.0, max_iter=1, tol=0.0)
    sharded = ShardedParameterServerMaster(
        "regressor", servers=four_shards, learning_rate=1.0, max_iter=1, tol=0.0
    )
    # Execute
    star.fit(wine_workers)
    sharded.fit(wine_workers)
    # Assert
    np.testing.assert_allclose(sharded._model.weights, star._model.weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sharded._model.bias, star._model.bias, rtol=0, atol=1e-12)
    assert np.abs(star._model.weights).max() > 0.01  # a real gradient, not zeros
    assert sharded.loss_curve_ == pytest.approx(star.loss_curve_, rel=1e-12)


def test_a_full_fit_gives_the_star_s_weights_and_its_spans_show_each_link(
    wine_workers, four_shards
):
    # Prepare
    star = ParameterServerMaster("regressor", max_iter=100, tol=0.0, alpha=0.01)
    sharded = ShardedParameterServerMaster(
        "regressor", servers=four_shards, max_iter=100, tol=0.0, alpha=0.01
    )
    # Execute
    star.fit(wine_workers)
    sharded.fit(wine_workers)
    spans = sharded.spans_.to_frame()
    # Assert: the same model
    np.testing.assert_allclose(sharded.coef_, star.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sharded.intercept_, star.intercept_, rtol=0, atol=1e-10)
    assert sharded.loss_curve_ == pytest.approx(star.loss_curve_, rel=1e-10)
    assert len(sharded.history_) == 101 and sharded.n_iter_ == 100
    # Assert: the placement is the ring's, and only the shards holding blocks take part
    blocks = [f"w{i}" for i in range(sharded.n_features_in_)] + ["bias"]
    assert sharded.placement_ == HashRing(four_shards.endpoints, blocks=blocks).placement()
    holders = set(sharded.placement_.values())
    # Assert: every worker pulled from and pushed to each holding shard every round, and the
    # bytes it pushed are 8 per value of the blocks held there
    pushes = spans[spans["endpoint"] == paths.SHARD_PUSH]
    pulls = spans[spans["endpoint"] == paths.SHARD_PULL].dropna(subset=["peer"])
    assert len(pushes) == len(pulls) == 101 * 3 * len(holders)
    assert set(pushes["peer"]) == {"worker1", "worker2", "worker3"}
    assert set(pushes["worker"]) == holders
    per_shard = pushes[pushes["round"] == 1].groupby("worker")["bytes_sent"].first()
    for shard, sent in per_shard.items():
        n_values = sum(1 for block, owner in sharded.placement_.items() if owner == shard)
        assert sent == 8 * n_values  # one float64 per weight column or bias


@pytest.fixture(scope="module")
def wide_workers():
    """Three sharded SGD workers on a regression of 200 features: 201 blocks to place."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(900, 200))
    y = X @ rng.normal(size=200) + rng.normal(scale=0.1, size=900)
    with LocalCluster.from_shards(
        ShardedSGDWorker("regressor"), X, y, n_workers=3, name="sharded-wide"
    ) as cluster:
        yield cluster


def test_a_shard_joining_mid_fit_takes_only_the_blocks_the_ring_gives_it(wide_workers, four_shards):
    # Prepare: the placement the ring predicts, and the star's fit to compare with
    ring = HashRing(four_shards.endpoints, blocks=[f"w{i}" for i in range(200)] + ["bias"])
    expected_moves = ring.add("shard5")
    star = ParameterServerMaster("regressor", max_iter=60, tol=0.0)
    sharded = ShardedParameterServerMaster("regressor", servers=four_shards, max_iter=60, tol=0.0)
    star.fit(wide_workers)
    for name in wide_workers.endpoints:  # rounds slow enough to join during the fit
        wide_workers.slow(name, 0.02)
    try:
        # Execute
        handle = sharded.fit(wide_workers, wait=False)
        deadline = time.monotonic() + 60
        while len(getattr(sharded, "history_", [])) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        four_shards.add_worker(ParameterShard(), name="shard5")
        handle.result(timeout=120)
    finally:
        for name in wide_workers.endpoints:
            wide_workers.slow(name, 0.0)
    # Assert: the blocks the ring said moved (about a fifth), all to the new shard
    assert len(sharded.moves_) == 1
    round_number, shard, moves = sharded.moves_[0]
    assert shard == "shard5" and 5 < round_number < 61
    assert sorted(moves) == sorted(expected_moves)
    assert 0.10 <= len(moves) / 201 <= 0.30
    assert sharded.placement_ == ring.placement()
    # Assert: the fit went on across the change, to the star's weights
    np.testing.assert_allclose(sharded.coef_, star.coef_, rtol=0, atol=1e-10)
    assert len(sharded.history_) == 61
    pushes = sharded.spans_.to_frame().query("endpoint == @paths.SHARD_PUSH")
    assert "shard5" in set(pushes[pushes["round"] > round_number]["worker"])
    assert "shard5" not in set(pushes[pushes["round"] < round_number]["worker"])
