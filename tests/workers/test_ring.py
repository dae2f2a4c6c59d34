"""RingWorker's endpoints on a real worker process: bad setups, rounds and chunks get answers
that say what to fix; a ring of one is a plain gradient step."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from chimera_nb import LocalCluster, RingWorker
from chimera_nb.algorithms import squared_loss
from chimera_nb.wire import decode_frame, encode_frame, paths

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
Y = X @ [1.0, -2.0, 0.5] + 3.0


def setup_body(url: str, **changes) -> dict:
    """A ring of one: the worker is its own right neighbour; identity standardization."""
    body = {
        "fit_id": "test",
        "position": 0,
        "n_workers": 1,
        "left": "solo",
        "right": "solo",
        "right_url": url,
        "feature_mean": [0.0, 0.0, 0.0],
        "feature_scale": [1.0, 1.0, 1.0],
        "weights": [0.1, 0.2, 0.3],
        "bias": [0.5],
        "learning_rate": 0.1,
    }
    return {**body, **changes}


@pytest.fixture(scope="module")
def solo():
    """One ring worker, as a URL."""
    with LocalCluster({"solo": RingWorker("regressor").with_data(X, Y)}) as cluster:
        yield cluster.endpoints["solo"]


def test_a_chunk_before_any_setup_is_refused_saying_to_set_up_first():
    # Prepare
    with LocalCluster({"fresh": RingWorker("regressor").with_data(X, Y)}) as cluster:
        url = cluster.endpoints["fresh"]
        body, headers = encode_frame(
            [np.ones(2)],
            {
                "fit_id": "test",
                "round_number": 1,
                "phase": "reduce-scatter",
                "step": 0,
                "index": 0,
                "sender": "x",
            },
        )
        # Execute
        chunk = httpx.post(url + paths.RING_CHUNK, content=body, headers=headers)
        round_ = httpx.post(url + paths.RING_ROUND, json={"round_number": 1})
    # Assert
    assert chunk.status_code == round_.status_code == 409
    assert paths.RING_SETUP in chunk.json()["detail"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"feature_mean": [0.0, 0.0], "feature_scale": [1.0, 1.0], "weights": [0.1, 0.2]},
            "feature_mean",
        ),
        ({"position": 1}, "position 1 is not in a ring of 1"),
        ({"feature_scale": [1.0, 0.0, 1.0]}, "feature_scale"),
        ({"weights": [0.1]}, "weights has 1 values"),
        ({"n_workers": 10**9}, "n_workers: Input should be less than or equal to 1000"),
    ],
)
def test_a_bad_setup_gets_422_naming_what_is_wrong(solo, changes, field):
    # Execute
    response = httpx.post(solo + paths.RING_SETUP, json=setup_body(solo, **changes))
    # Assert
    assert response.status_code == 422
    assert field in response.text


def test_a_ring_of_one_steps_along_its_own_gradient(solo):
    # Prepare
    httpx.post(solo + paths.RING_SETUP, json=setup_body(solo)).raise_for_status()
    expected = squared_loss(np.array([[0.1, 0.2, 0.3]]), np.array([0.5]), X, Y)
    # Execute
    answer = httpx.post(solo + paths.RING_ROUND, json={"round_number": 1}).json()
    response = httpx.get(solo + paths.RING_WEIGHTS)
    (weights, bias), meta = decode_frame(response.content, response.headers, ["weights", "bias"])
    # Assert
    np.testing.assert_allclose(weights, [0.1, 0.2, 0.3] - 0.1 * expected.weights_gradient[0])
    np.testing.assert_allclose(bias, [0.5] - 0.1 * expected.bias_gradient)
    assert answer["loss_sum"] == pytest.approx(40 * expected.loss)
    assert answer["stepped"] and answer["spans"] == [] and meta["rounds"] == 1


def test_a_chunk_with_a_bad_label_gets_422_naming_the_field(solo):
    # Prepare
    httpx.post(solo + paths.RING_SETUP, json=setup_body(solo)).raise_for_status()
    body, headers = encode_frame(
        [np.ones(2)],
        {
            "fit_id": "test",
            "round_number": 1,
            "phase": "sideways",
            "step": 0,
            "index": 0,
            "sender": "x",
        },
    )
    # Execute
    response = httpx.post(solo + paths.RING_CHUNK, content=body, headers=headers)
    # Assert
    assert response.status_code == 422
    assert "phase" in response.text


def test_a_late_chunk_of_an_earlier_fit_is_refused(solo):
    # Prepare
    httpx.post(solo + paths.RING_SETUP, json=setup_body(solo, fit_id="new")).raise_for_status()
    body, headers = encode_frame(
        [np.ones(5)],
        {
            "fit_id": "old",
            "round_number": 1,
            "phase": "all-gather",
            "step": 0,
            "index": 0,
            "sender": "x",
        },
    )
    # Execute
    response = httpx.post(solo + paths.RING_CHUNK, content=body, headers=headers)
    # Assert
    assert response.status_code == 409
    assert "a chunk of fit old came late" in response.json()["detail"]


def test_a_round_whose_right_neighbour_is_gone_is_a_502_the_schema_documents():
    # Prepare: a ring of two whose right neighbour's port has nothing behind it
    with LocalCluster({"left": RingWorker("regressor").with_data(X, Y)}, name="gone") as cluster:
        url = cluster.endpoints["left"]
        gone = setup_body(url, n_workers=2, right="gone", right_url="http://127.0.0.1:9")
        httpx.post(url + paths.RING_SETUP, json=gone).raise_for_status()
        # Execute
        answer = httpx.post(url + paths.RING_ROUND, json={"round_number": 1}, timeout=30)
        schema = httpx.get(url + "/openapi.json").json()
    # Assert: the link is named, and the status and its body are in the schema
    assert answer.status_code == 502
    assert "left -> gone" in answer.json()["detail"]
    documented = schema["paths"][paths.RING_ROUND]["post"]["responses"]
    assert {"409", "422", "502", "504"} <= set(documented)
    assert documented["502"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorResponse"
    )


def test_the_weights_answer_is_binary_as_the_schema_says(solo):
    # Prepare
    httpx.post(solo + paths.RING_SETUP, json=setup_body(solo)).raise_for_status()
    # Execute
    response = httpx.get(solo + paths.RING_WEIGHTS)
    schema = httpx.get(solo + "/openapi.json").json()
    # Assert
    documented = schema["paths"][paths.RING_WEIGHTS]["get"]["responses"]["200"]["content"]
    assert response.headers["content-type"] == "application/octet-stream"
    assert list(documented) == ["application/octet-stream"]


def test_a_setup_with_a_boolean_class_label_gets_422_naming_classes(solo):
    # Execute: JSON's true is not a label (it used to be read as the label 1)
    response = httpx.post(solo + paths.RING_SETUP, json=setup_body(solo, classes=[True, 2]))
    # Assert
    assert response.status_code == 422
    assert "classes[0]" in response.json()["detail"]
