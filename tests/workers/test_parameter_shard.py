"""A parameter shard, served for real: it holds blocks, averages a round's gradient slices as
the star does, and refuses what it cannot use with a message saying what."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from chimera_nb import ConfigurationError, LocalCluster, ParameterShard
from chimera_nb.algorithms import WeightedMean
from chimera_nb.algorithms.aggregation import ShardGradient
from chimera_nb.wire import paths
from chimera_nb.workers.parameter_shard import blocks_frame, read_blocks


@pytest.fixture(scope="module")
def shard_url():
    with LocalCluster([ParameterShard()], name="one-shard") as cluster:
        yield cluster.endpoints["worker1"]


def post_frame(url, path, blocks, **meta):
    body, headers = blocks_frame(blocks, **meta)
    return httpx.post(url + path, content=body, headers=headers)


def test_a_round_steps_by_the_weighted_mean_of_the_pushed_slices(shard_url):
    # Prepare
    held = {"w0": np.array([1.0, 2.0]), "bias": np.array([0.5])}
    slices = {
        "a": (30, {"w0": np.array([1.0, -1.0]), "bias": np.array([2.0])}),
        "b": (10, {"w0": np.array([5.0, 3.0]), "bias": np.array([-2.0])}),
    }
    assert post_frame(shard_url, paths.SHARD_BLOCKS, held, reset=True).status_code == 200
    for worker, (n, blocks) in slices.items():
        answer = post_frame(
            shard_url, paths.SHARD_PUSH, blocks, round_number=1, worker=worker, n_samples=n
        )
        assert answer.status_code == 200, answer.text
    # Execute
    proposed = httpx.post(
        shard_url + paths.SHARD_PROPOSE,
        json={"round_number": 1, "workers": ["a", "b"], "learning_rate": 0.5, "alpha": 0.1},
    )
    committed = httpx.post(shard_url + paths.SHARD_COMMIT, json={"round_number": 1})
    pulled = httpx.post(shard_url + paths.SHARD_PULL, json={"blocks": None})
    # Assert: the star's weighted mean, the L2 term on weights only, the step taken
    mean = WeightedMean().aggregate(
        {w: ShardGradient(b["w0"], b["bias"], n, 0.0) for w, (n, b) in slices.items()}
    )
    expected_w0 = held["w0"] - 0.5 * (mean.weights + 0.1 * held["w0"])
    expected_bias = held["bias"] - 0.5 * mean.bias
    assert proposed.status_code == 200 and committed.status_code == 200
    blocks, _ = read_blocks(pulled.content, pulled.headers)
    np.testing.assert_allclose(blocks["w0"], expected_w0, rtol=1e-15)
    np.testing.assert_allclose(blocks["bias"], expected_bias, rtol=1e-15)
    step = np.concatenate([expected_w0 - held["w0"], expected_bias - held["bias"]])
    assert proposed.json()["norm2"] == pytest.approx(float(step @ step), rel=1e-12)
    assert proposed.json()["penalty"] == pytest.approx(0.05 * 5.0)


def test_a_propose_without_a_worker_s_slices_is_a_409_naming_it(shard_url):
    # Prepare
    post_frame(shard_url, paths.SHARD_BLOCKS, {"w0": np.zeros(2)}, reset=True)
    # Execute
    answer = httpx.post(
        shard_url + paths.SHARD_PROPOSE,
        json={"round_number": 4, "workers": ["worker9"], "learning_rate": 0.1},
    )
    # Assert
    assert answer.status_code == 409
    assert "worker9" in answer.json()["detail"] and "round 4" in answer.json()["detail"]


def test_a_push_for_a_block_held_elsewhere_is_a_409_saying_the_placement_is_old(shard_url):
    # Prepare
    post_frame(shard_url, paths.SHARD_BLOCKS, {"w0": np.zeros(2)}, reset=True)
    # Execute
    answer = post_frame(
        shard_url, paths.SHARD_PUSH, {"w7": np.ones(3)}, round_number=1, worker="a", n_samples=3
    )
    # Assert
    assert answer.status_code == 409
    assert "w7" in answer.json()["detail"] and "out of date" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (paths.SHARD_PROPOSE, {"round_number": 0, "workers": ["a"], "learning_rate": 0.1}, "round"),
        (paths.SHARD_PROPOSE, {"round_number": 1, "workers": ["a"], "learning_rate": -1}, "learn"),
        (paths.SHARD_COMMIT, {"round": 1}, "round"),
        (paths.SHARD_PULL, {"blocks": "w0"}, "blocks"),
    ],
)
def test_bad_control_bodies_get_a_422_naming_the_field(shard_url, path, body, field):
    answer = httpx.post(shard_url + path, json=body)
    assert answer.status_code == 422
    assert field in answer.json()["detail"]


def test_a_frame_without_block_names_is_a_422_naming_the_header(shard_url):
    answer = httpx.post(
        shard_url + paths.SHARD_BLOCKS,
        content=np.zeros(2).tobytes(),
        headers={"content-type": "application/octet-stream", "x-chimera-meta": '{"lengths":[2]}'},
    )
    assert answer.status_code == 422
    assert "x-chimera-meta" in answer.json()["detail"]


def test_a_shard_refuses_training_data():
    with pytest.raises(ConfigurationError, match="not training data"):
        ParameterShard().with_data(np.zeros((2, 2)), np.zeros(2))
