"""Tests for chimera_nb.wire.server: error bodies that name the field at fault, their OpenAPI
description, and the seed's older paths."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from chimera_nb.wire import paths
from chimera_nb.wire.encoding import BodyError
from chimera_nb.wire.models import PredictRequest
from chimera_nb.wire.server import (
    describe_validation_errors,
    error_responses,
    finish_app,
    install_error_handlers,
    new_app,
)
from tests.wire.serving import ServedApp


def test_a_location_reads_as_the_python_expression_of_the_field() -> None:
    # Prepare
    errors = [{"loc": ("body", "X_pred_rows", 0, 2), "msg": "Input should be a finite number"}]

    # Execute
    actual = describe_validation_errors(errors)

    # Assert
    assert actual == "X_pred_rows[0][2]: Input should be a finite number"


def test_nested_fields_are_joined_with_dots_and_query_and_path_prefixes_dropped() -> None:
    # Prepare
    errors = [
        {"loc": ("query", "options", "batch_size"), "msg": "too small"},
        {"loc": ("path", "name"), "msg": "bad name"},
        {"loc": ("body",), "msg": "not an object"},
    ]

    # Execute
    actual = describe_validation_errors(errors)

    # Assert
    assert actual == "options.batch_size: too small; name: bad name; body: not an object"


def test_only_five_errors_are_spelled_out_then_a_count_of_the_rest() -> None:
    # Prepare
    errors = [{"loc": ("body", "weights", index), "msg": "not finite"} for index in range(8)]

    # Execute
    actual = describe_validation_errors(errors)

    # Assert
    assert actual.startswith("weights[0]: not finite; weights[1]: not finite;")
    assert "weights[4]: not finite (and 3 more)" in actual
    assert "weights[5]" not in actual


def make_app() -> FastAPI:
    """A one-route app with the kit's error handlers, to see the 422 bodies a client gets."""
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/predict")
    def predict(request: PredictRequest) -> dict:
        return {"shape": list(request.matrix(["a", "b"]).shape)}

    return app


def post(app: FastAPI, body: dict) -> httpx.Response:
    """POST ``body`` to the app in-process, through httpx's ASGI transport."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/predict", json=body)

    return asyncio.run(send())


def test_an_invalid_body_gets_422_naming_the_field() -> None:
    # Prepare
    app = make_app()

    # Execute
    response = post(app, {"X_pred_columns": ["a", "b"], "X_pred_rows": [[1, "x"]]})

    # Assert
    assert response.status_code == 422
    assert response.json()["detail"].startswith("X_pred_rows[0][1]: ")
    assert response.json()["errors"][0]["loc"] == ["body", "X_pred_rows", 0, 1]


def test_a_body_error_gets_422_with_its_message() -> None:
    # Prepare
    app = make_app()

    # Execute
    response = post(app, {"X_pred_columns": ["a", "c"], "X_pred_rows": [[1, 2]]})

    # Assert
    assert response.status_code == 422
    assert response.json()["detail"] == str(
        BodyError(
            "X_pred_columns",
            "must name the training columns ['a', 'b']; missing ['b'], unexpected ['c']",
        )
    )


def make_kit_app() -> FastAPI:
    """An app made as every server of the kit is: new_app, its routes, finish_app."""
    app = new_app("kit")

    @app.post(paths.MODEL_PREDICT, responses=error_responses(409, 422))
    def predict(request: PredictRequest) -> dict:
        return {"rows": len(request.X_pred_rows)}

    return finish_app(app)


def test_a_body_that_is_not_utf8_text_gets_422_saying_so() -> None:
    # Execute
    with ServedApp(make_kit_app()) as served:
        answer = httpx.post(
            served.url + paths.MODEL_PREDICT,
            content=b"\xff\xfe{",
            headers={"content-type": "application/json"},
        )

    # Assert
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("body: cannot be read as JSON text")


def test_the_schema_documents_the_error_bodies_the_servers_send() -> None:
    # Execute
    schema = make_kit_app().openapi()

    # Assert
    responses = schema["paths"][paths.MODEL_PREDICT]["post"]["responses"]
    assert set(responses) == {"200", "403", "409", "413", "422"}
    for status in ("403", "409", "413", "422"):
        body = responses[status]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/ErrorResponse"}
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert (
        schema["components"]["schemas"]["PredictRequest"]["properties"]["X_pred_rows"]["minItems"]
        == 1
    )


def test_the_seeds_older_paths_are_served_but_left_out_of_the_schema() -> None:
    # Prepare
    app = make_kit_app()
    body = {"X_pred_columns": ["a"], "X_pred_rows": [[1], [2]]}

    # Execute
    with ServedApp(app) as served:
        answer = httpx.post(served.url + paths.OLDER[paths.MODEL_PREDICT], json=body)

    # Assert
    assert answer.json() == {"rows": 2}
    assert paths.OLDER[paths.MODEL_PREDICT] not in app.openapi()["paths"]
