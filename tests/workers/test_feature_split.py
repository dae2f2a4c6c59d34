"""FeatureSplitWorker on a real worker process: its block and statistics, a round's two calls
(scores, then gradient) checked against the same arithmetic in one process, predictions
with the fitted weights, and 409/422 answers that say what comes first or which field is
wrong."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from chimera_nb import ConfigurationError, FeatureSplitWorker, LocalCluster
from chimera_nb.algorithms import ColumnStatistics, block_gradient
from chimera_nb.wire import paths
from chimera_nb.wire.feature_split_models import MatrixFrame

RNG = np.random.default_rng(1)
X = RNG.normal(loc=3.0, scale=2.0, size=(30, 2))
MEAN, SCALE = X.mean(axis=0), X.std(axis=0)
X_STD = (X - MEAN) / SCALE
SETUP = {"feature_mean": MEAN.tolist(), "feature_scale": SCALE.tolist(), "n_outputs": 3}


@pytest.fixture(scope="module")
def url():
    worker = FeatureSplitWorker("classifier").with_block(X, first_row=10, columns=["a", "b"])
    with LocalCluster({"block": worker}, name="feature-split-worker") as cluster:
        yield cluster.endpoints["block"]


def post_frame(url: str, path: str, frame: MatrixFrame | None) -> httpx.Response:
    body, headers = frame.encode() if frame is not None else (b"", {})
    return httpx.post(url + path, content=body, headers=headers)


def answer(response: httpx.Response, name: str) -> MatrixFrame:
    assert response.status_code == 200, response.text
    return MatrixFrame.decode(name, response.content, response.headers)


def test_the_block_says_its_columns_rows_and_statistics(url):
    # Prepare
    expected = ColumnStatistics.of(X)
    # Execute
    block = httpx.get(url + paths.FEATURE_SPLIT_BLOCK).json()
    # Assert
    assert (block["columns"], block["n_samples"], block["first_row"]) == (["a", "b"], 30, 10)
    np.testing.assert_allclose(block["feature_sum"], expected.sum)
    np.testing.assert_allclose(block["feature_m2"], expected.m2)


def test_a_round_applies_the_step_then_answers_scores_and_the_block_gradient(url):
    # Prepare
    step, rate = RNG.normal(size=(3, 2)), 0.5
    residuals = RNG.normal(size=(30, 3))
    weights = -rate * step
    # Execute
    setup = httpx.post(url + paths.FEATURE_SPLIT_SETUP, json=SETUP)
    first = answer(
        post_frame(url, paths.FEATURE_SPLIT_SCORES, MatrixFrame("step", np.zeros((0, 0)))), "scores"
    )
    second = answer(
        post_frame(url, paths.FEATURE_SPLIT_SCORES, MatrixFrame("step", step, learning_rate=rate)),
        "scores",
    )
    gradient = answer(
        post_frame(
            url, paths.FEATURE_SPLIT_GRADIENT, MatrixFrame("residuals", residuals, alpha=0.1)
        ),
        "gradient",
    )
    # Assert
    assert setup.json() == {"n_weights": 6}
    np.testing.assert_array_equal(first.matrix, np.zeros((30, 3)))
    np.testing.assert_allclose(second.matrix, X_STD @ weights.T, rtol=1e-13)
    assert second.meta["weights_norm2"] == pytest.approx(np.sum(weights**2))
    np.testing.assert_allclose(
        gradient.matrix, block_gradient(X_STD, residuals, weights, 0.1), rtol=1e-13
    )
    assert gradient.meta["n_samples"] == 30


def test_finish_keeps_the_weights_that_predictions_use(url):
    # Prepare
    new_rows = RNG.normal(size=(4, 2))
    httpx.post(url + paths.FEATURE_SPLIT_SETUP, json=SETUP).raise_for_status()
    step = MatrixFrame("step", np.ones((3, 2)), learning_rate=1.0)
    post_frame(url, paths.FEATURE_SPLIT_SCORES, MatrixFrame("step", np.zeros((0, 0))))
    post_frame(url, paths.FEATURE_SPLIT_SCORES, step).raise_for_status()
    # Execute
    weights = answer(post_frame(url, paths.FEATURE_SPLIT_FINISH, None), "weights")
    httpx.post(url + paths.FEATURE_SPLIT_SETUP, json=SETUP).raise_for_status()  # a new fit
    scores = answer(
        post_frame(url, paths.FEATURE_SPLIT_BLOCK_SCORES, MatrixFrame("rows", new_rows)), "scores"
    )
    # Assert: predictions use the finished fit's weights, not the new fit's zeros
    np.testing.assert_array_equal(weights.matrix, -np.ones((3, 2)))
    np.testing.assert_allclose(scores.matrix, ((new_rows - MEAN) / SCALE) @ -np.ones((2, 3)))


@pytest.mark.parametrize(
    ("path", "frame", "field"),
    [
        (
            paths.FEATURE_SPLIT_SCORES,
            MatrixFrame("step", np.ones((3, 5)), learning_rate=0.1),
            "step",
        ),
        (paths.FEATURE_SPLIT_SCORES, MatrixFrame("step", np.ones((3, 2))), "learning_rate"),
        (paths.FEATURE_SPLIT_GRADIENT, MatrixFrame("residuals", np.ones((29, 3))), "residuals"),
        (paths.FEATURE_SPLIT_BLOCK_SCORES, MatrixFrame("rows", np.ones((4, 3))), "rows"),
    ],
)
def test_a_frame_of_the_wrong_shape_gets_422_naming_the_field(url, path, frame, field):
    # Prepare
    httpx.post(url + paths.FEATURE_SPLIT_SETUP, json=SETUP).raise_for_status()
    post_frame(url, paths.FEATURE_SPLIT_FINISH, None).raise_for_status()
    # Execute
    response = post_frame(url, path, frame)
    # Assert
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}:")


def test_a_setup_for_other_columns_gets_422_naming_the_field(url):
    # Execute
    response = httpx.post(
        url + paths.FEATURE_SPLIT_SETUP, json={**SETUP, "feature_mean": [0.0, 1.0, 2.0]}
    )
    # Assert
    assert response.status_code == 422
    assert "feature_mean" in response.json()["detail"] and "['a', 'b']" in response.json()["detail"]


def test_a_round_before_setup_gets_409_saying_what_comes_first():
    # Prepare
    worker = FeatureSplitWorker("regressor").with_block(X)
    with LocalCluster([worker], name="feature-split-fresh") as cluster:
        url = cluster.endpoints["worker1"]
        # Execute
        scores = post_frame(url, paths.FEATURE_SPLIT_SCORES, MatrixFrame("step", np.zeros((0, 0))))
        predicted = post_frame(url, paths.FEATURE_SPLIT_BLOCK_SCORES, MatrixFrame("rows", X))
    # Assert
    assert scores.status_code == 409 and "setup" in scores.json()["detail"]
    assert predicted.status_code == 409 and "fit the master first" in predicted.json()["detail"]


def test_a_feature_split_worker_refuses_labels():
    # Execute, Assert
    with pytest.raises(ConfigurationError, match="never the labels"):
        FeatureSplitWorker("regressor").with_data(X, np.zeros(30))
    assert (
        repr(FeatureSplitWorker("regressor").with_block(X))
        == "FeatureSplitWorker('regressor', 30 rows)"
    )
