"""The Byzantine fault (``cluster.byzantine``) on real worker processes: what a corrupted
worker answers, how the cluster records and announces it, and what it does to a parameter
server's mean and not to the robust aggregators (issue 13's acceptance, on digits)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from chimera_nb import ConfigurationError, LocalCluster, ParameterServerMaster, SGDWorker
from chimera_nb.algorithms import CoordinateMedian, Krum, TrimmedMean, dirichlet_shards
from chimera_nb.cluster import WorkerState
from chimera_nb.states import WorkerFault
from chimera_nb.wire import FitStep, FitStepResult, paths

X, y = load_digits(return_X_y=True)
X_TRAIN, X_TEST, Y_TRAIN, Y_TEST = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
ROUNDS = 50  # enough for 0.93 accuracy; Krum (one worker's gradient a round) is near it


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Five SGD workers holding random (IID) shards of digits."""
    with LocalCluster.from_shards(
        SGDWorker("classifier"),
        X_TRAIN,
        Y_TRAIN,
        n_workers=5,
        method="random",
        random_state=0,
        name="byzantine",
        run_dir=tmp_path_factory.mktemp("run"),
    ) as cluster:
        yield cluster


@pytest.fixture
def byzantine(cluster):
    """The cluster, every worker honest again after the test."""
    yield cluster
    for name in cluster.byzantine_workers():
        cluster.byzantine(name, kind=None)


def _headers(cluster) -> dict[str, str]:
    return {"Authorization": f"Bearer {cluster.token}"} if cluster.token else {}


def _gradient(cluster, name: str, encoding: str = "json") -> FitStepResult:
    """What ``name`` answers a fit-step at fixed weights (the fast route, as a master calls it)."""
    weights = np.linspace(-0.01, 0.01, 10 * 64).reshape(10, 64)
    step = FitStep(weights, np.zeros(10), classes=list(range(10)))
    body, headers = step.encode(encoding)
    answer = httpx.post(
        cluster.endpoints[name] + paths.SGD_FIT_STEP,
        content=body,
        headers={**headers, **_headers(cluster)},
    )
    answer.raise_for_status()
    return FitStepResult.decode(answer.content, answer.headers)


def _accuracy(cluster, aggregator=None) -> float:
    master = ParameterServerMaster(
        "classifier", max_iter=ROUNDS, tol=0.0, aggregator=aggregator, encoding="binary"
    ).fit(cluster)
    return float(np.mean(master.predict(X_TEST).astype(int) == Y_TEST))


@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_a_sign_flipping_worker_answers_minus_scale_times_its_gradient(byzantine, encoding):
    # Prepare
    honest = _gradient(byzantine, "worker2", encoding)

    # Execute
    byzantine.byzantine("worker2", "sign-flip", scale=4.0)
    corrupted = _gradient(byzantine, "worker2", encoding)

    # Assert: the gradient flipped and scaled, the loss and sample count left true
    np.testing.assert_allclose(corrupted.weights_gradient, -4.0 * honest.weights_gradient)
    np.testing.assert_allclose(corrupted.bias_gradient, -4.0 * honest.bias_gradient)
    assert (corrupted.loss, corrupted.n_samples) == (honest.loss, honest.n_samples)


def test_kind_none_makes_the_worker_honest_again(byzantine):
    # Prepare
    honest = _gradient(byzantine, "worker3")
    byzantine.byzantine("worker3", "scaled")

    # Execute
    scaled = _gradient(byzantine, "worker3")
    byzantine.byzantine("worker3", kind=None)
    again = _gradient(byzantine, "worker3")

    # Assert: "scaled" defaults to 10 times
    np.testing.assert_allclose(scaled.weights_gradient, 10.0 * honest.weights_gradient)
    np.testing.assert_array_equal(again.weights_gradient, honest.weights_gradient)
    assert byzantine.byzantine_workers() == {}


def test_seeded_noise_replays_and_ignores_the_gradient(byzantine):
    # Execute
    byzantine.byzantine("worker1", "noise", scale=2.0, seed=7)
    first = _gradient(byzantine, "worker1")
    byzantine.byzantine("worker1", "noise", scale=2.0, seed=7)
    replay = _gradient(byzantine, "worker1")
    following = _gradient(byzantine, "worker1")

    # Assert
    np.testing.assert_array_equal(first.weights_gradient, replay.weights_gradient)
    assert not np.array_equal(replay.weights_gradient, following.weights_gradient)
    assert 1.8 < np.std(first.weights_gradient) < 2.2


def test_a_byzantine_worker_shows_up_and_is_announced_and_recorded(byzantine):
    # Prepare
    heard = []
    unsubscribe = byzantine.on_fault(lambda *call: heard.append(call))

    # Execute
    byzantine.byzantine("worker4", "sign-flip", scale=3.0, seed=1)
    states = byzantine.status()
    byzantine.byzantine("worker4", kind=None)
    unsubscribe()

    # Assert: alive and on time, so UP; the fault is in the announcement and the record
    assert states["worker4"] is WorkerState.UP
    assert [(name, fault) for name, _, fault, _ in heard] == [
        ("worker4", WorkerFault.BYZANTINE),
        ("worker4", None),
    ]
    assert byzantine.byzantine_workers() == {}


def test_the_cluster_records_the_settings_until_made_honest(byzantine):
    # Execute
    byzantine.byzantine("worker5", "noise", scale=0.5, seed=3)

    # Assert
    settings = byzantine.byzantine_workers()["worker5"]
    assert (settings.kind, settings.scale, settings.seed) == ("noise", 0.5, 3)


def test_a_restart_makes_the_worker_honest(byzantine):
    # Prepare
    honest = _gradient(byzantine, "worker4")
    byzantine.byzantine("worker4", "sign-flip")

    # Execute
    byzantine.restart("worker4")

    # Assert
    assert byzantine.byzantine_workers() == {}
    np.testing.assert_array_equal(
        _gradient(byzantine, "worker4").weights_gradient, honest.weights_gradient
    )


def test_bad_settings_are_refused_naming_the_field(byzantine):
    # Execute / Assert: by the cluster, before anything is sent
    with pytest.raises(ConfigurationError, match="kind"):
        byzantine.byzantine("worker1", "flip")
    with pytest.raises(ConfigurationError, match="scale"):
        byzantine.byzantine("worker1", "scaled", scale=-1.0)
    # and by the worker, to a client that skips the cluster
    answer = httpx.post(
        byzantine.endpoints["worker1"] + paths.FAULTS_BYZANTINE,
        json={"kind": "sign-flip", "scale": "big"},
        headers=_headers(byzantine),
    )
    assert answer.status_code == 422 and "scale" in answer.text
    assert byzantine.byzantine_workers() == {}


def test_one_sign_flipping_worker_collapses_the_mean_but_not_the_robust_rules(byzantine):
    # Prepare
    clean = _accuracy(byzantine)

    # Execute: worker5 sends -10 times its gradient, outweighing the four honest ones
    byzantine.byzantine("worker5", "sign-flip", scale=10.0)
    mean = _accuracy(byzantine)
    median = _accuracy(byzantine, CoordinateMedian())
    krum = _accuracy(byzantine, Krum(n_byzantine=1))
    trimmed = _accuracy(byzantine, TrimmedMean(trim=1))

    # Assert
    assert clean > 0.9
    assert mean < 0.5
    assert median >= clean - 0.03
    assert krum >= clean - 0.03
    assert trimmed >= clean - 0.03


def test_from_shards_deals_dirichlet_shards_to_the_workers(tmp_path):
    # Prepare
    expected = [len(shard) for shard in dirichlet_shards(Y_TRAIN, 3, 0.1, random_state=0)]

    # Execute
    with LocalCluster.from_shards(
        SGDWorker("classifier"),
        X_TRAIN,
        Y_TRAIN,
        n_workers=3,
        method="dirichlet",
        alpha=0.1,
        random_state=0,
        run_dir=tmp_path,
    ) as cluster:
        sizes = [
            httpx.get(url + paths.HEALTH).json()["n_samples"] for url in cluster.endpoints.values()
        ]

    # Assert
    assert sizes == expected


def test_a_byzantine_federated_client_breaks_fedavgs_mean_but_not_the_median(tmp_path):
    # Prepare: five federated clients on digits, one sends its update sign-flipped x10
    from chimera_nb import FederatedAveragingMaster, FederatedClient

    def accuracy(cluster, aggregator=None) -> float:
        master = FederatedAveragingMaster(
            "classifier", n_rounds=20, local_epochs=1, aggregator=aggregator, random_state=0
        ).fit(cluster)
        return float(np.mean(master.predict(X_TEST).astype(int) == Y_TEST))

    with LocalCluster.from_shards(
        FederatedClient("classifier"),
        X_TRAIN,
        Y_TRAIN,
        n_workers=5,
        method="random",
        random_state=0,
        name="fed-byzantine",
        run_dir=tmp_path / "run",
    ) as cluster:
        clean = accuracy(cluster)
        cluster.byzantine("worker1", "sign-flip", scale=10.0)

        # Execute
        attacked_mean, attacked_median = accuracy(cluster), accuracy(cluster, CoordinateMedian())

    # Assert
    assert attacked_mean < 0.5 < clean
    assert attacked_median > clean - 0.03
