"""Ring all-reduce (and a pipeline) in containers: workers reach their neighbour by its container's name on
the run's Docker network (``cluster.peer_endpoints``), never by the master's published
``127.0.0.1`` port, which inside a container would mean the container itself."""

from __future__ import annotations

import numpy as np
import pytest

from chimera_nb import (
    LocalCluster,
    ParameterServerMaster,
    PipelineMaster,
    PipelineStageWorker,
    RingAllReduceMaster,
    RingWorker,
)
from chimera_nb.algorithms.mlp import fit_mlp
from chimera_nb.cluster import DockerCluster, SwarmCluster

from .conftest import leftovers


def regression_rows(n_rows: int = 300):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, 4))
    return X, X @ np.array([1.0, 2.0, -1.0, 0.5]) + 0.5 + 0.1 * rng.normal(size=n_rows)


def test_peer_endpoints_are_the_endpoints_on_one_machine():
    X, y = regression_rows()
    with LocalCluster.from_shards(RingWorker("regressor"), X, y, 2, name="peers") as cluster:
        assert cluster.peer_endpoints == cluster.endpoints


@pytest.mark.parametrize(
    ("backend", "engine"), [(DockerCluster, "docker_client"), (SwarmCluster, "swarm_client")]
)
def test_a_ring_of_containers_fits_the_stars_weights(request, backend, engine):
    # Prepare
    client = request.getfixturevalue(engine)
    X, y = regression_rows()
    options = dict(max_iter=10, tol=0.0)
    cluster = backend.from_shards(RingWorker("regressor"), X, y, 3, name="ring")

    # Execute
    with cluster:
        label = f"chimera-nb.run={cluster.run_id}"
        peers = cluster.peer_endpoints
        ring = RingAllReduceMaster("regressor", **options).fit(cluster)
        star = ParameterServerMaster("regressor", **options).fit(cluster)

    # Assert: neighbours by container name; the ring's weights are the star's
    assert all(not url.startswith("http://127.0.0.1") for url in peers.values())
    np.testing.assert_allclose(ring.coef_, star.coef_, rtol=1e-10, atol=1e-12)
    assert leftovers(client, label) == {key: [] for key in leftovers(client, label)}


def test_a_pipeline_of_containers_passes_activations_by_container_name(docker_client):
    # Prepare: three stages in containers; the gradient step equals the one-process MLP's
    X, y = regression_rows(120)
    labels = (y > np.median(y)).astype(int)
    cluster = DockerCluster([PipelineStageWorker().with_data(X, labels)] * 3, name="pipe")

    # Execute
    with cluster:
        label = f"chimera-nb.run={cluster.run_id}"
        master = PipelineMaster(
            (8, 8), n_microbatches=3, max_iter=2, batch_size=None, random_state=4
        )
        master.fit(cluster)

    # Assert: frames between stages went to container names; the layers are the twin's
    sends = [span for span in master.spans_ if span.peer and span.peer != span.worker]
    assert sends and all(not span.worker_url.startswith("http://127.0.0.1") for span in sends)
    layers, _ = fit_mlp(
        X, labels, [4, 8, 8, 2], learning_rate=0.1, max_iter=2, batch_size=None, random_state=4
    )
    for actual, expected in zip(master.coefs_, layers):
        np.testing.assert_allclose(actual, expected.weights, rtol=0, atol=1e-10)
    assert leftovers(docker_client, label) == {key: [] for key in leftovers(docker_client, label)}
