"""The cost model's ledger on the spans of real parameter-server fits (real worker processes):
the bytes the master and each worker moved per round, beside the alpha-beta prediction."""

from __future__ import annotations

import pytest

from chimera_nb import LocalCluster, ParameterServerMaster, SGDWorker
from chimera_nb.algorithms import AlphaBeta, TopK, ledger, round_seconds, star_round

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
