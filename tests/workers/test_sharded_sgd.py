"""ShardedSGDWorker's endpoints on real processes (a worker and a parameter shard): a plan
that does not fit is refused at once with a 422 naming the field, and the plan in use stays;
a round whose shards fail answers a status the OpenAPI schema documents, never a 500."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from chimera_nb import LocalCluster, ParameterShard, ShardedSGDWorker
from chimera_nb.wire import paths
from chimera_nb.workers.parameter_shard import blocks_frame

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
Y = X @ [1.0, -2.0, 0.5] + 3.0
BLOCKS = {"w0": np.array([0.1, 0.2]), "w1": np.array([0.3]), "bias": np.array([0.5])}


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        {"worker": ShardedSGDWorker("regressor").with_data(X, Y), "shard": ParameterShard()},
        name="sharded-sgd",
    ) as cluster:
        yield cluster.endpoints


def hold(shard_url: str, blocks: dict[str, np.ndarray]) -> None:
    body, headers = blocks_frame(blocks, reset=True)
    httpx.post(shard_url + paths.SHARD_BLOCKS, content=body, headers=headers).raise_for_status()


def plan(shard_url: str, **changes) -> dict:
    """Every block on the one shard; identity standardization."""
    body = {
        "version": 0,
        "shards": {"shard": shard_url},
        "placement": dict.fromkeys(BLOCKS, "shard"),
        "n_outputs": 1,
        "n_features": 3,
        "n_blocks": 2,
        "feature_mean": [0.0, 0.0, 0.0],
        "feature_scale": [1.0, 1.0, 1.0],
    }
    return {**body, **changes}


def step(url: str, version: int) -> httpx.Response:
    return httpx.post(
        url + paths.SGD_SHARDED_STEP, json={"round_number": 1, "plan_version": version}
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"placement": {"w0": "shard", "bias": "shard"}}, "['w1'] have no shard"),
        ({"placement": {**dict.fromkeys(BLOCKS, "shard"), "w7": "shard"}}, "['w7'] are no"),
        ({"placement": dict.fromkeys(BLOCKS, "elsewhere")}, "shards ['elsewhere']"),
        ({"n_blocks": 4}, "n_blocks is 4"),
        ({"feature_scale": [1.0, 1.0]}, "feature_scale has 2 values"),
        ({"feature_scale": [1.0, 0.0, 1.0]}, "feature_scale[1]"),
        ({"classes": [False, True]}, "classes[0]"),
        (
            {"n_features": 2, "n_blocks": 1, "feature_mean": [0.0] * 2, "feature_scale": [1.0] * 2}
            | {"placement": {"w0": "shard", "bias": "shard"}},
            "n_features: is 2 but this shard has 3 features",
        ),
        ({"n_outputs": 2}, "n_outputs: is 2"),
    ],
)
def test_a_plan_that_does_not_fit_gets_422_naming_the_field_and_the_plan_in_use_stays(
    cluster, changes, field
):
    # Prepare: a plan in use (version 0), whose round works
    url, shard = cluster["worker"], cluster["shard"]
    hold(shard, BLOCKS)
    httpx.post(url + paths.SGD_SHARDED_PLAN, json=plan(shard)).raise_for_status()
    # Execute
    refused = httpx.post(url + paths.SGD_SHARDED_PLAN, json=plan(shard, version=1, **changes))
    # Assert
    assert refused.status_code == 422
    assert field in refused.json()["detail"]
    assert step(url, 1).status_code == 409
    assert step(url, 0).status_code == 200


def test_a_shard_holding_another_layout_is_a_409_not_a_500(cluster):
    # Prepare: the shard holds a w0 of one number where the plan says two
    url, shard = cluster["worker"], cluster["shard"]
    hold(shard, {**BLOCKS, "w0": np.array([0.1])})
    httpx.post(url + paths.SGD_SHARDED_PLAN, json=plan(shard, version=5)).raise_for_status()
    # Execute
    answer = step(url, 5)
    # Assert
    assert answer.status_code == 409
    assert "do not fit plan version 5" in answer.json()["detail"]


def test_a_shard_out_of_reach_is_a_502_the_schema_documents(cluster):
    # Prepare: the plan's shard URL has nothing behind it
    url = cluster["worker"]
    gone = plan("http://127.0.0.1:9", version=6)
    httpx.post(url + paths.SGD_SHARDED_PLAN, json=gone).raise_for_status()
    # Execute
    answer = step(url, 6)
    schema = httpx.get(url + "/openapi.json").json()
    # Assert
    assert answer.status_code == 502
    assert "shard" in answer.json()["detail"]
    documented = schema["paths"][paths.SGD_SHARDED_STEP]["post"]["responses"]
    assert {"409", "422", "502"} <= set(documented)
