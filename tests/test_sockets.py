"""Tests for chimera_nb._sockets: the one place that binds listening sockets."""

from __future__ import annotations

import pytest

from chimera_nb._sockets import (
    free_port,
    is_busy,
    listen,
    port_is_free,
    url_of,
    worker_port_error,
)


def test_listen_on_port_0_gets_a_free_port_that_is_then_taken():
    # Execute
    with listen("127.0.0.1") as sock:
        port = sock.getsockname()[1]
        taken = port_is_free("127.0.0.1", port)
        # Assert
        assert port > 0 and not taken
        with pytest.raises(OSError) as raised:
            listen("127.0.0.1", port)
        assert is_busy(raised.value)
    assert port_is_free("127.0.0.1", port)


def test_free_port_gives_a_port_that_can_be_bound():
    port = free_port()
    with listen("127.0.0.1", port) as sock:
        assert sock.getsockname()[1] == port


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:80"),
        ("0.0.0.0", "http://127.0.0.1:80"),
        ("::", "http://[::1]:80"),
        ("::1", "http://[::1]:80"),
        ("localhost", "http://localhost:80"),
    ],
)
def test_url_of_names_the_address_this_machine_reaches_the_server_on(host, expected):
    assert url_of(host, 80) == expected


def test_a_workers_port_error_names_the_worker_the_holder_and_what_to_do():
    # Prepare
    with listen("127.0.0.1") as sock:
        port = sock.getsockname()[1]
        with pytest.raises(OSError) as raised:
            listen("127.0.0.1", port)
    # Execute
    busy = worker_port_error("w1", "127.0.0.1", port, raised.value, "No worker was started.")
    elsewhere = worker_port_error("w1", "10.9.9.9", port, OSError(99, "Cannot assign"), "X.")
    # Assert
    assert str(busy) == (
        f"Port {port} for worker 'w1' is already in use by another process. No worker was "
        "started. Pick another port, leave it out to get a free one, or stop what holds it."
    )
    assert f"Cannot listen on 10.9.9.9:{port} for worker 'w1'" in str(elsewhere)
    assert "Check the host address." in str(elsewhere)
