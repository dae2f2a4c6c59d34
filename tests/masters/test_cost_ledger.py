"""The cost model's ledger on the spans of real fits (real worker processes) of the star, the
sharded parameter servers and the ring: the bytes each node moved per round, beside the
alpha-beta prediction."""

from __future__ import annotations

import numpy as np
import pytest

from chimera_nb import (
    LocalCluster,
    ParameterServerMaster,
    ParameterShard,
    RingAllReduceMaster,
    RingWorker,
    SGDWorker,
    ShardedParameterServerMaster,
    ShardedSGDWorker,
)
from chimera_nb.algorithms import (
    AlphaBeta,
    TopK,
    ledger,
    ring_round,
    round_seconds,
    sharded_round,
    star_round,
)
from chimera_nb.wire import paths

N_WORKERS, N_PARAMETERS = 3, 13  # wine quality: 12 features and the bias
NETWORK = AlphaBeta.emulated(latency_ms=1.0, bandwidth_mbps=100.0)


@pytest.fixture(scope="module")
def wine_cluster(wine_quality):
    X, y = wine_quality
    with LocalCluster.from_shards(
        SGDWorker("regressor"), X, y, n_workers=N_WORKERS, name="ledger"
    ) as cluster:
        yield cluster


def test_ledger_of_a_star_fit_is_n_d_8_bytes_at_the_master_per_round(wine_cluster) -> None:
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=5, tol=0.0, encoding="binary")
    master.fit(wine_cluster)

    # Execute
    table = ledger(master.spans_.to_frame(), star_round(N_WORKERS, N_PARAMETERS, NETWORK))
    table = table.set_index("node")

    # Assert: bodies only (the frame's header is not in spans), so exactly N d 8
    assert table.attrs["n_rounds"] == 6
    assert table.loc["master", "received_per_round"] == N_WORKERS * N_PARAMETERS * 8
    assert table.loc["master", "sent_per_round"] == N_WORKERS * N_PARAMETERS * 8
    assert sorted(table.index) == ["master", "worker1", "worker2", "worker3"]
    assert (table["received_ratio"] == 1.0).all() and (table["sent_ratio"] == 1.0).all()
    assert len(round_seconds(master.spans_.snapshot())) == 6


def test_ledger_of_a_top_k_fit_shows_k_index_value_pairs_per_worker(wine_cluster) -> None:
    # Prepare
    master = ParameterServerMaster(
        "regressor", max_iter=5, tol=0.0, encoding="binary", compression=TopK(0.01)
    )
    master.fit(wine_cluster)

    # Execute
    table = ledger(master.spans_.snapshot()).set_index("node")

    # Assert: k = 1 uint32 index and 1 float64 value from each worker
    assert table.loc["master", "received_per_round"] == N_WORKERS * (4 + 8)
    assert table.loc["worker1", "sent_per_round"] == 4 + 8
    assert table["predicted_sent"].isna().all()


def test_ledger_of_a_sharded_fit_is_n_slices_at_each_shard_per_round(wine_quality) -> None:
    # Prepare: 3 workers, 2 shards; the hash ring places the 12 weight columns and the bias
    X, y = wine_quality
    with (
        LocalCluster.from_shards(
            ShardedSGDWorker("regressor"), X, y, n_workers=N_WORKERS, name="ledger-sharded"
        ) as workers,
        LocalCluster({"shard1": ParameterShard(), "shard2": ParameterShard()}, name="ls") as shards,
    ):
        master = ShardedParameterServerMaster("regressor", servers=shards, max_iter=3, tol=0.0)
        master.fit(workers)
    spans = master.spans_.snapshot()
    held = {shard: list(master.placement_.values()).count(shard) for shard in shards.names}

    # Execute: the weights a shard sends are its pulls' answers, the gradients it receives
    # its pushes (the control calls' JSON and a pull's block names are left out)
    pulls = ledger([s for s in spans if s.endpoint == paths.SHARD_PULL]).set_index("node")
    pushes = ledger([s for s in spans if s.endpoint == paths.SHARD_PUSH]).set_index("node")

    # Assert: each shard moves N slices of what it holds each way, as the model says for it
    assert min(held.values()) > 0 and sum(held.values()) == N_PARAMETERS  # one value a block
    for shard, n_held in held.items():
        cost = sharded_round(N_WORKERS, N_PARAMETERS, 2, NETWORK, largest_shard=n_held)
        assert pulls.loc[shard, "sent_per_round"] == cost.server_bytes_sent
        assert pushes.loc[shard, "received_per_round"] == cost.server_bytes_received
        assert cost.server_bytes_received == N_WORKERS * n_held * 8
    # each worker pulls all d weights and pushes all d gradients, over both shards
    cost = sharded_round(N_WORKERS, N_PARAMETERS, 2, NETWORK)
    for worker in workers.names:
        assert pulls.loc[worker, "received_per_round"] == cost.worker_bytes_received
        assert pushes.loc[worker, "sent_per_round"] == cost.worker_bytes_sent == N_PARAMETERS * 8
    assert pulls.attrs["n_rounds"] == pushes.attrs["n_rounds"] == 4


def test_ledger_of_a_ring_fit_is_two_n_minus_one_chunks_per_worker_per_round() -> None:
    # Prepare: 4 ring workers, d = 10 features + the bias; with the sample count the kit
    # reduces 12 values, 3 per chunk, so every chunk has the same size
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 10))
    y = X @ rng.normal(size=10) + rng.normal(size=80)
    with LocalCluster.from_shards(RingWorker("regressor"), X, y, n_workers=4, name="lr") as ring:
        master = RingAllReduceMaster("regressor", max_iter=3, tol=0.0).fit(ring)
    spans = master.spans_.snapshot()
    prediction = ring_round(4, 11, NETWORK, queued=False)

    # Execute: the workers' calls to each other (the master's JSON round calls left out)
    table = ledger([span for span in spans if span.peer], prediction).set_index("node")

    # Assert: 6 steps of 3 values each way, exactly, at every worker; no master in the ring
    assert prediction.worker_bytes_sent == 6 * 3 * 8
    assert sorted(table.index) == sorted(master.ring_)
    assert (table["sent_per_round"] == 6 * 3 * 8).all()
    assert (table["received_per_round"] == 6 * 3 * 8).all()
    assert (table["sent_ratio"] == 1.0).all() and (table["received_ratio"] == 1.0).all()
    assert table.attrs["n_rounds"] == 4
