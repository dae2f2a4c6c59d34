"""Tests for chimera_nb.wire.guard on real uvicorn servers: requests of web pages of other
origins and to hosts a loopback server does not answer get 403, bodies past their limit 413
before they are read, and an unhandled error a JSON 500 on a connection that stays open."""

from __future__ import annotations

import http.client
import json
import socket

import httpx
import pytest
from fastapi import FastAPI, Request

from chimera_nb import ConfigurationError
from chimera_nb.wire import paths
from chimera_nb.wire.server import finish_app, new_app
from tests.wire.serving import ServedApp

EVIL = "http://evil.example"


def make_app(**options) -> FastAPI:
    """An app of the kit with a control endpoint, a data endpoint and one that fails."""
    app = new_app("guarded")

    @app.post("/control")
    async def control(request: Request) -> dict:
        return {"received": len(await request.body())}

    @app.post(paths.SGD_FIT_STEP)
    async def data(request: Request) -> dict:
        return {"received": len(await request.body())}

    @app.get("/fails")
    async def fails() -> dict:
        raise RuntimeError("the estimator blew up")

    return finish_app(app, **options)


@pytest.fixture
def served():
    with ServedApp(make_app()) as served:
        yield served


def lan_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


# -- Origin -------------------------------------------------------------------------------------


def test_a_simple_post_from_another_origin_gets_403_saying_how_to_allow_it(served):
    # Execute: what a form on another site sends (text/plain, no preflight)
    answer = httpx.post(
        served.url + "/control",
        content="a=1",
        headers={"origin": EVIL, "content-type": "text/plain"},
    )

    # Assert
    assert answer.status_code == 403
    assert f"came from a page of {EVIL}" in answer.json()["detail"]
    assert f"CHIMERA_ALLOWED_ORIGINS={EVIL}" in answer.json()["detail"]


def test_a_request_without_origin_is_answered_as_before(served):
    # Execute: what the seed's clients send to fit: no body, no content type
    answer = httpx.post(served.url + "/control")

    # Assert
    assert answer.status_code == 200
    assert answer.json() == {"received": 0}


def test_a_page_of_the_servers_own_origin_is_answered(served):
    # Execute: the /docs page of this server trying an endpoint out
    answer = httpx.post(served.url + "/control", headers={"origin": served.url})

    # Assert
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("argument", "variable"),
    [
        (["http://lab.example"], ""),
        (None, "http://other.example, http://LAB.example/"),
        (None, '["http://lab.example"]'),
        (None, "*"),
    ],
    ids=["argument", "comma-separated variable", "JSON variable", "any"],
)
def test_origins_allowed_by_argument_or_variable_are_answered(monkeypatch, argument, variable):
    # Prepare
    monkeypatch.setenv("CHIMERA_ALLOWED_ORIGINS", variable)
    app = make_app(allowed_origins=argument)

    # Execute
    with ServedApp(app) as served:
        allowed = httpx.post(served.url + "/control", headers={"origin": "http://lab.example"})

    # Assert
    assert allowed.status_code == 200


def test_a_malformed_origins_variable_is_refused_with_its_format(monkeypatch):
    # Prepare
    monkeypatch.setenv("CHIMERA_ALLOWED_ORIGINS", "[http://lab.example")

    # Execute / Assert
    with pytest.raises(ConfigurationError, match="separated by commas, or as a JSON list"):
        make_app()


# -- Host ---------------------------------------------------------------------------------------


def test_a_loopback_server_refuses_a_host_that_names_another_site(served):
    # Execute: what a DNS-rebinding page sends (its own name, resolved to 127.0.0.1)
    answer = httpx.get(served.url + paths.METRICS, headers={"host": "evil.example:8080"})

    # Assert
    assert answer.status_code == 403
    assert "addressed to 'evil.example:8080'" in answer.json()["detail"]
    assert "CHIMERA_ALLOWED_HOSTS=evil.example" in answer.json()["detail"]


@pytest.mark.parametrize("host", ["localhost:1", "127.0.0.1", "[::1]:80", socket.gethostname()])
def test_a_loopback_server_answers_loopback_names_and_this_machines_name(served, host):
    # Execute
    answer = httpx.get(served.url + paths.METRICS, headers={"host": host})

    # Assert
    assert answer.status_code == 200


def test_a_host_allowed_by_the_variable_is_answered_on_loopback(monkeypatch):
    # Prepare
    monkeypatch.setenv("CHIMERA_ALLOWED_HOSTS", "lab-pc.example")

    # Execute
    with ServedApp(make_app()) as served:
        answer = httpx.get(served.url + paths.METRICS, headers={"host": "Lab-PC.example:81"})

    # Assert
    assert answer.status_code == 200


def test_beyond_loopback_any_host_is_answered_unless_hosts_are_configured():
    # Prepare: a server reached by a lab network address, as a worker on a lab PC
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no address beyond loopback")

    # Execute
    with ServedApp(make_app(), host=address) as served:
        open_server = httpx.get(served.url + paths.METRICS, headers={"host": "lab-pc.example"})
    with ServedApp(make_app(allowed_hosts=["lab-pc.example"]), host=address) as served:
        named = httpx.get(served.url + paths.METRICS, headers={"host": "lab-pc.example"})
        other = httpx.get(served.url + paths.METRICS, headers={"host": "other.example"})

    # Assert
    assert open_server.status_code == 200
    assert named.status_code == 200
    assert other.status_code == 403


# -- bodies -------------------------------------------------------------------------------------


def test_a_body_announced_larger_than_the_limit_gets_413_before_it_is_sent(served):
    # Prepare: announce 300 MB, send none of it
    head = (
        f"POST {paths.SGD_FIT_STEP} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 300000000\r\n\r\n"
    )

    # Execute
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as connection:
        connection.sendall(head.encode())
        reply = connection.recv(65536).decode()

    # Assert
    assert reply.startswith("HTTP/1.1 413")
    assert "limit of 256 MB" in reply and "CHIMERA_MAX_BODY_MB" in reply


def test_a_data_endpoint_takes_bodies_up_to_chimera_max_body_mb(monkeypatch):
    # Prepare
    monkeypatch.setenv("CHIMERA_MAX_BODY_MB", "0.01")  # 10,000 bytes

    # Execute
    with ServedApp(make_app()) as served:
        under = httpx.post(served.url + paths.SGD_FIT_STEP, content=b"0" * 9_000)
        over = httpx.post(served.url + paths.SGD_FIT_STEP, content=b"0" * 11_000)
        control = httpx.post(served.url + "/control", content=b"0" * 11_000)

    # Assert
    assert under.json() == {"received": 9_000}
    assert over.status_code == 413
    assert control.json() == {"received": 11_000}  # control endpoints: 1 MB


def test_a_chunked_body_is_refused_once_it_grows_past_the_limit(served):
    # Prepare: no Content-Length, 1.8 MB in chunks, to a control endpoint (1 MB)
    def chunks():
        for _ in range(3):
            yield b"0" * 600_000

    # Execute
    answer = httpx.post(served.url + "/control", content=chunks())

    # Assert
    assert answer.status_code == 413
    assert "limit of 1 MB" in answer.json()["detail"]


# -- errors -------------------------------------------------------------------------------------


def test_an_unhandled_error_gets_a_json_500_and_the_connection_stays_usable(served):
    # Prepare
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)

    # Execute
    connection.request("GET", "/fails")
    failed = connection.getresponse()
    body = json.loads(failed.read())
    first_socket = connection.sock
    connection.request("POST", "/control")  # raises if the server dropped the connection
    after = connection.getresponse()
    after.read()
    second_socket = connection.sock
    connection.close()

    # Assert
    assert failed.status == 500
    assert "RuntimeError: the estimator blew up" in body["detail"]
    assert after.status == 200
    assert second_socket is first_socket
