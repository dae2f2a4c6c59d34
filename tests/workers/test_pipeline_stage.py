"""PipelineStageWorker's endpoints on real worker processes: bad setups, steps and frames get
answers naming what to fix, a missing neighbour fails a step within its timeout, and a
pipeline of one takes the one-process MLP's step."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from chimera_nb import LocalCluster, PipelineStageWorker
from chimera_nb.algorithms.mlp import Layer, mlp_gradients
from chimera_nb.wire import encode_frame, paths

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 3))
Y = np.array([0, 1, 2] * 4)
W1, B1 = RNG.normal(size=(3, 4)), RNG.normal(size=4)
W2, B2 = RNG.normal(size=(4, 3)), RNG.normal(size=3)


def layer(weights, bias) -> dict:
    return {"weights": weights.tolist(), "bias": bias.tolist()}


def setup_body(**changes) -> dict:
    """A pipeline of one stage holding both layers."""
    body = {
        "fit_id": "test",
        "stage": 0,
        "n_stages": 1,
        "n_microbatches": 4,
        "layers": [layer(W1, B1), layer(W2, B2)],
        "classes": [0, 1, 2],
        "learning_rate": 0.1,
    }
    return {**body, **changes}


def step_body(**changes) -> dict:
    ops = [["F", i] for i in range(4)] + [["B", i] for i in range(4)]
    body = {"fit_id": "test", "step": 1, "n_microbatches": 4, "ops": ops, "rows": list(range(12))}
    return {**body, **changes}


def frame(n_numbers: int, **meta) -> tuple[bytes, dict]:
    fields = {"fit_id": "test", "step": 1, "micro_batch": 0, "n_rows": 2, "sender": "x"}
    return encode_frame([np.ones(n_numbers)], {**fields, **meta})


@pytest.fixture(scope="module")
def solo():
    """One stage worker, as a URL."""
    with LocalCluster({"solo": PipelineStageWorker().with_data(X, Y)}, name="stage") as cluster:
        yield cluster.endpoints["solo"]


def test_a_step_before_any_setup_is_refused_saying_to_set_up_first():
    with LocalCluster({"fresh": PipelineStageWorker().with_data(X, Y)}, name="fresh") as cluster:
        url = cluster.endpoints["fresh"]
        # Execute
        step = httpx.post(url + paths.PIPELINE_STEP, json=step_body())
        body, headers = frame(6)
        activation = httpx.post(url + paths.PIPELINE_ACTIVATION, content=body, headers=headers)
    # Assert
    assert step.status_code == activation.status_code == 409
    assert paths.PIPELINE_SETUP in step.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"layers": [layer(W1, B1), layer(W2[:3], B2)]}, "layers[0] has 4 outputs"),
        ({"layers": [layer(W1[:, :2], B1)]}, "weights must be n_in rows"),
        ({"classes": [0, 1]}, "the last stage needs classes"),
        ({"stage": 1}, "stage 1 is not in a pipeline of 1"),
        ({"n_stages": 2}, "next and next_url"),
        ({"layers": [layer(W1[:2], B1), layer(W2, B2)]}, "layers"),
        ({"learning_rate": "0.1"}, "learning_rate"),
    ],
)
def test_a_bad_setup_gets_422_naming_what_is_wrong(solo, changes, field):
    # Execute
    response = httpx.post(solo + paths.PIPELINE_SETUP, json=setup_body(**changes))
    # Assert
    assert response.status_code == 422
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {
                "ops": [
                    ["F", 0],
                    ["F", 1],
                    ["F", 2],
                    ["F", 3],
                    ["B", 0],
                    ["B", 1],
                    ["B", 2],
                    ["B", 9],
                ]
            },
            "micro-batch 9 does not exist",
        ),
        ({"ops": [["F", 0], ["B", 0]]}, "ops: the ops never run"),
        ({"rows": [0, 1]}, "rows: 2 rows cannot make 4 micro-batches"),
        ({"rows": [0, 1, 2, 99]}, "rows: row 99"),
        ({"rows": [0, 1, 2, 10**30]}, "rows[3]"),
        (
            {
                "n_microbatches": 8,
                "ops": [["F", i] for i in range(8)] + [["B", i] for i in range(8)],
            },
            "n_microbatches",
        ),
        ({"training": False, "ops": [["F", i] for i in range(4)]}, "inputs"),
        (
            {
                "training": False,
                "ops": [["F", 0]],
                "n_microbatches": 1,
                "inputs": [[1.0], [1.0, 2.0]],
            },
            "inputs: every row",
        ),
        (
            {"training": False, "ops": [["F", 0]], "n_microbatches": 1, "inputs": [[1.0, 2.0]]},
            "inputs: rows have 2 values, not 3",
        ),
    ],
)
def test_a_bad_step_gets_422_naming_the_field(solo, changes, field):
    # Prepare
    httpx.post(solo + paths.PIPELINE_SETUP, json=setup_body()).raise_for_status()
    # Execute
    response = httpx.post(solo + paths.PIPELINE_STEP, json=step_body(**changes))
    # Assert
    assert response.status_code == 422
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "n_numbers", "meta", "status", "field"),
    [
        (paths.PIPELINE_ACTIVATION, 6, {}, 409, "takes no activations"),
        (paths.PIPELINE_GRADIENT, 6, {"micro_batch": 7}, 422, "micro_batch"),
        (paths.PIPELINE_GRADIENT, 6, {"micro_batch": 5000}, 422, "micro_batch"),
        (paths.PIPELINE_GRADIENT, 6, {"fit_id": "old"}, 409, "fit old is not this stage's"),
    ],
)
def test_a_bad_frame_is_refused_naming_what_is_wrong(solo, path, n_numbers, meta, status, field):
    # Prepare
    httpx.post(solo + paths.PIPELINE_SETUP, json=setup_body()).raise_for_status()
    body, headers = frame(n_numbers, **meta)
    # Execute
    response = httpx.post(solo + path, content=body, headers=headers)
    # Assert
    assert response.status_code == status
    assert field in response.json()["detail"]


@pytest.fixture(scope="module")
def pair():
    """Two stage workers, ``a`` and ``b``, by URL."""
    workers = {name: PipelineStageWorker().with_data(X, Y) for name in ("a", "b")}
    with LocalCluster(workers, name="pair") as cluster:
        yield cluster.endpoints


def second_stage(pair) -> str:
    """``b`` set up as the second of two stages (inputs 4 wide), waiting at most 0.5 s for
    ``a``; its URL."""
    setup = setup_body(
        stage=1,
        n_stages=2,
        layers=[layer(W2, B2)],
        previous="a",
        previous_url=pair["a"],
        timeout=0.5,
    )
    httpx.post(pair["b"] + paths.PIPELINE_SETUP, json=setup).raise_for_status()
    return pair["b"]


def test_an_activation_of_the_wrong_shape_gets_422_naming_the_body(pair):
    # Prepare
    url = second_stage(pair)
    body, headers = frame(5)  # 2 rows of 4 are 8 numbers
    # Execute
    response = httpx.post(url + paths.PIPELINE_ACTIVATION, content=body, headers=headers)
    # Assert
    assert response.status_code == 422
    assert "body" in response.json()["detail"] and "2 rows of 4" in response.json()["detail"]


def test_a_stage_whose_input_never_comes_fails_the_step_within_its_timeout(pair):
    # Prepare: a never runs, so never sends
    url = second_stage(pair)
    started = time.monotonic()
    # Execute
    response = httpx.post(url + paths.PIPELINE_STEP, json=step_body(), timeout=30)
    elapsed = time.monotonic() - started
    # Assert
    assert response.status_code == 504
    assert "activation of micro-batch 0 (step 1) from a" in response.json()["detail"]
    assert elapsed < 5


def test_an_activation_that_comes_twice_is_refused(pair):
    # Prepare
    url = second_stage(pair)
    body, headers = frame(8)
    # Execute
    first = httpx.post(url + paths.PIPELINE_ACTIVATION, content=body, headers=headers)
    second = httpx.post(url + paths.PIPELINE_ACTIVATION, content=body, headers=headers)
    # Assert
    assert first.status_code == 204
    assert second.status_code == 409 and "came twice" in second.json()["detail"]


def test_a_pipeline_of_one_steps_along_the_one_process_gradient(solo):
    # Prepare
    httpx.post(solo + paths.PIPELINE_SETUP, json=setup_body()).raise_for_status()
    expected = mlp_gradients([Layer(W1.copy(), B1.copy()), Layer(W2.copy(), B2.copy())], X, Y)
    # Execute
    answer = httpx.post(solo + paths.PIPELINE_STEP, json=step_body()).json()
    layers = httpx.get(solo + paths.PIPELINE_WEIGHTS).json()["layers"]
    # Assert
    np.testing.assert_allclose(
        layers[0]["weights"], W1 - 0.1 * expected.weights[0], rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(layers[1]["bias"], B2 - 0.1 * expected.bias[1], rtol=0, atol=1e-12)
    assert answer["loss_sum"] / answer["n_rows"] == pytest.approx(expected.loss, rel=1e-12)
    assert answer["peak_stashed"] == 4
    ops = [span["endpoint"] for span in answer["spans"]]
    assert ops == [f"compute F({i})" for i in range(4)] + [f"compute B({i})" for i in range(4)]


def test_the_data_answer_names_rows_columns_and_classes(solo):
    # Execute
    answer = httpx.get(solo + paths.PIPELINE_DATA).json()
    # Assert
    assert answer == {"n_samples": 12, "columns": answer["columns"], "classes": [0, 1, 2]}
    assert len(answer["columns"]) == 3
