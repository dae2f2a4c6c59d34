"""Bagging workers' endpoints, called directly on real worker processes: the seed's shapes,
and clear 4xx answers to bad input, after which the worker keeps serving."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_iris
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from chimera_nb import ClassificationWorker, ConfigurationError, LocalCluster, RegressionWorker
from chimera_nb.wire import paths
from tests.helpers import post_json


@pytest.fixture(scope="module")
def iris_worker():
    """One classification worker on iris, and its URL."""
    X, y = load_iris(return_X_y=True, as_frame=True)
    worker = ClassificationWorker(DecisionTreeClassifier(max_depth=3), bootstrap=True)
    with LocalCluster([worker.with_data(X, y)]) as cluster:
        yield cluster.endpoints["worker1"], list(X.columns)


def test_predict_before_fit_is_a_409_that_says_what_to_call(iris_worker):
    # Prepare
    url, columns = iris_worker
    # Execute
    answer = httpx.post(
        url + paths.MODEL_PREDICT, json={"X_pred_columns": columns, "X_pred_rows": [[1, 2, 3, 4]]}
    )
    # Assert
    assert answer.status_code == 409
    assert paths.MODEL_FIT in answer.json()["detail"]


def test_fit_then_predict_returns_probabilities_of_every_class(iris_worker):
    # Prepare
    url, columns = iris_worker
    # Execute
    fitted = httpx.post(url + paths.MODEL_FIT, json={"random_state": 7}).json()
    answer = httpx.post(
        url + paths.MODEL_PREDICT,
        json={"X_pred_columns": columns[::-1], "X_pred_rows": [[0.2, 1.4, 3.5, 5.1]]},
    )
    # Assert
    assert fitted == {
        "fit": "ok",
        "n_samples": 150,
        "columns": columns,
        "random_state": 7,
        "classes": [0, 1, 2],
    }
    assert answer.status_code == 200
    assert answer.json()["classes"] == [0, 1, 2]
    assert len(answer.json()["y_pred_rows"][0]) == 3
    assert math.isclose(sum(answer.json()["y_pred_rows"][0]), 1.0)


def test_fit_accepts_the_seed_empty_body(iris_worker):
    url, _ = iris_worker
    answer = httpx.post(url + paths.MODEL_FIT)
    assert answer.status_code == 200 and answer.json()["fit"] == "ok"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"X_pred_columns": ["sepal length (cm)"], "X_pred_rows": [[1.0]]}, "missing"),
        ({"X_pred_columns": "EXTRA", "X_pred_rows": [[1.0, 2, 3, 4, 5]]}, "unexpected ['extra']"),
        (
            {"X_pred_columns": "ALL", "X_pred_rows": [[1.0, float("nan"), 3, 4]]},
            "X_pred_rows[0][1]",
        ),
        ({"X_pred_columns": "ALL", "X_pred_rows": [[1.0, "abc", 3, 4]]}, "X_pred_rows[0][1]"),
        (
            {"X_pred_columns": "ALL", "X_pred_rows": [[1.0, 2.0, 3.0]]},
            "X_pred_rows[0] has 3 values",
        ),
        ({"X_pred_columns": "ALL", "X_pred_rows": [1.0, 2.0, 3.0, 4.0]}, "X_pred_rows[0]"),
        ({"X_pred_columns": "ALL"}, "X_pred_rows: Field required"),
        ({"X_pred_columns": "ALL", "X_pred_rows": [[1, 2, 3, 4]], "typo": 1}, "typo"),
    ],
)
def test_bad_predict_bodies_get_422_naming_the_problem_and_the_worker_keeps_serving(
    iris_worker, body, named
):
    # Prepare
    url, columns = iris_worker
    httpx.post(url + paths.MODEL_FIT)
    if body["X_pred_columns"] == "ALL":
        body["X_pred_columns"] = columns
    elif body["X_pred_columns"] == "EXTRA":
        body["X_pred_columns"] = [*columns, "extra"]
    # Execute
    answer = post_json(url + paths.MODEL_PREDICT, body)
    # Assert
    assert answer.status_code == 422
    assert named in answer.json()["detail"]
    assert httpx.get(url + paths.HEALTH).status_code == 200


def test_a_body_that_is_not_json_gets_422(iris_worker):
    url, _ = iris_worker
    answer = httpx.post(
        url + paths.MODEL_PREDICT,
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422


def test_a_classifier_without_predict_proba_is_refused_with_the_fix():
    with pytest.raises(ConfigurationError, match="probability=True"):
        ClassificationWorker(SVC())


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"random_state": 2**40}, "random_state: Input should be less than or equal to 4294967295"),
        ({"random_state": "7"}, "random_state: Input should be a valid integer"),
        ({"random_state": -1}, "random_state: Input should be greater than or equal to 0"),
    ],
)
def test_a_seed_outside_numpys_range_gets_422_naming_it(iris_worker, body, named):
    # Prepare
    url, _ = iris_worker

    # Execute
    answer = httpx.post(url + paths.MODEL_FIT, json=body)

    # Assert
    assert answer.status_code == 422
    assert named in answer.json()["detail"]


def test_feature_values_beyond_float32_get_422_naming_the_cell(iris_worker):
    # Prepare: a tree computes in float32, where 1e39 would be infinite
    url, columns = iris_worker
    httpx.post(url + paths.MODEL_FIT)

    # Execute
    answer = httpx.post(
        url + paths.MODEL_PREDICT,
        json={"X_pred_columns": columns, "X_pred_rows": [[1.0, 2.0, 1e39, 4.0]]},
    )

    # Assert
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("X_pred_rows[0][2]: Input should be less than")


def test_the_seeds_older_paths_fit_and_predict_too(iris_worker):
    # Prepare
    url, columns = iris_worker

    # Execute
    fitted = httpx.post(url + "/v1/chimera-model/fit")
    predicted = httpx.post(
        url + "/v1/chimera-model/predict",
        json={"X_pred_columns": columns, "X_pred_rows": [[5.1, 3.5, 1.4, 0.2]]},
    )

    # Assert
    assert fitted.json()["fit"] == "ok"
    assert predicted.json()["classes"] == [0, 1, 2]


@pytest.fixture(scope="module")
def awkward_workers():
    """Regression members that refuse some rows or overflow on them, and their URLs."""
    X = np.abs(np.random.default_rng(0).normal(size=(30, 2))) + 1.0
    y = X.sum(axis=1)
    log_then_linear = make_pipeline(FunctionTransformer(np.log), LinearRegression())
    exponential = TransformedTargetRegressor(
        DummyRegressor(strategy="constant", constant=1000.0),
        func=np.log,
        inverse_func=np.exp,
        check_inverse=False,
    )
    members = {
        "refuses": RegressionWorker(log_then_linear),
        "overflows": RegressionWorker(exponential),
    }
    with LocalCluster(
        {name: w.with_data(X, y) for name, w in members.items()}, name="awkward"
    ) as cluster:
        for url in cluster.endpoints.values():
            httpx.post(url + paths.MODEL_FIT).raise_for_status()
        yield cluster.endpoints


@pytest.mark.parametrize(
    ("worker", "expected"),
    [
        ("refuses", "X_pred_rows: Pipeline refused these rows: Input X contains NaN"),
        ("overflows", "X_pred_rows: rows [0] give predictions that are infinite or NaN"),
    ],
)
def test_rows_an_estimator_cannot_predict_get_422_and_the_worker_keeps_serving(
    awkward_workers, worker, expected
):
    # Prepare
    url = awkward_workers[worker]
    body = {"X_pred_columns": ["x0", "x1"], "X_pred_rows": [[-1.0, 2.0]]}

    # Execute
    answer = httpx.post(url + paths.MODEL_PREDICT, json=body)

    # Assert
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(expected)
    assert httpx.get(url + paths.HEALTH).status_code == 200


def test_a_regression_worker_given_labels_as_its_target_is_refused():
    # Execute / Assert
    with pytest.raises(ConfigurationError, match="is a regressor, so its target y must be"):
        RegressionWorker(DecisionTreeRegressor()).with_data([[1.0], [2.0]], ["red", "white"])


def test_a_page_of_another_origin_cannot_refit_the_worker(iris_worker):
    # Prepare
    url, _ = iris_worker

    # Execute: a form on another site, posting text/plain
    answer = httpx.post(
        url + paths.MODEL_FIT,
        content="random_state=2",
        headers={"origin": "http://evil.example", "content-type": "text/plain"},
    )

    # Assert: refused before the endpoint ran
    assert answer.status_code == 403
    assert "http://evil.example" in answer.json()["detail"]
