"""Tests for chimera_nb.validation: each rule, and the settings and the backends refusing
the same bad value with the same rule."""

from __future__ import annotations

import pytest

from chimera_nb._exceptions import ConfigurationError
from chimera_nb.cluster import AttachedCluster, DockerCluster, LocalCluster, SwarmCluster
from chimera_nb.seed.settings import load_settings
from chimera_nb.validation import (
    cpu_share_problem,
    host_problem,
    network_name_problem,
    network_prefix_problem,
    port_problem,
    published_host_problem,
    repeated,
    subnet_problem,
    validate_cluster_name,
    validate_constraint,
    validate_container_port,
    validate_cpu_share,
    validate_host,
    validate_image_reference,
    validate_network_name,
    validate_published_host,
    validate_startup_timeout,
    validate_subnet,
    validate_worker_name,
    validate_worker_ports,
    validate_worker_url,
    worker_name_problem,
    worker_names_problem,
)

from .cluster._targets import HealthWorker


def settings_problems(**variables: str) -> str:
    """The settings' error for these ``CHIMERA_*`` variables (one worker, ``w1``)."""
    environ = {"CHIMERA_WORKERS_NODES_NAMES": '["w1"]'}
    environ |= {f"CHIMERA_{name}": value for name, value in variables.items()}
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    return str(caught.value)


def refused(build) -> str:
    with pytest.raises(ConfigurationError) as caught:
        build()
    return str(caught.value)


# --- each rule: what passes, and what is said about what does not ---------------------------


@pytest.mark.parametrize("name", ["worker1", "w", "a-b_c", "9lives", "x" * 63])
def test_a_safe_worker_name_has_no_problem(name):
    assert worker_name_problem(name) is None
    assert validate_worker_name(name) == name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "is empty"),
        ("x" * 64, "has 64 characters, but at most 63"),
        ("a b", "contains ' ' (space)"),
        ("../x", "contains '.', '/'"),
        ("_hidden", "must start with a letter or a digit"),
        (7, "must be a string, not int"),
    ],
)
def test_an_unsafe_worker_name_is_described(name, expected):
    assert expected in worker_name_problem(name)


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([], "lists no workers"),
        (["w1", "w2", "w1"], "must be unique, but 'w1' appear more than once"),
        (["worker", "Worker"], "differ only in case"),
    ],
)
def test_a_list_of_worker_names_must_be_non_empty_unique_and_distinct_in_case(names, expected):
    assert worker_names_problem(["w1", "w2"]) is None
    assert expected in worker_names_problem(names)


def test_repeated_lists_values_seen_more_than_once_in_order():
    assert repeated([3, 1, 3, 2, 1]) == [3, 1]
    assert repeated(["a", "b"]) == []


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::1", "localhost", "lab-pc-3.lan"])
def test_a_host_may_be_an_ip_address_or_a_host_name(host):
    assert host_problem(host) is None
    assert validate_host(host) == host


@pytest.mark.parametrize("host", ["0.0.0.0; rm", "a b", "", "-x", None])
def test_a_host_with_other_characters_is_refused(host):
    assert "must be an IP address such as 127.0.0.1" in host_problem(host)
    with pytest.raises(ConfigurationError, match="host must be an IP address"):
        validate_host(host)


def test_docker_publishes_ports_on_ip_addresses_only():
    assert published_host_problem("127.0.0.1") is None
    assert validate_published_host("::1") == "::1"
    assert "to publish the workers' ports on" in published_host_problem("localhost")
    with pytest.raises(ConfigurationError, match="got 'localhost'"):
        validate_published_host("localhost")


def test_a_port_is_1_to_65535_or_0_where_any_free_port_will_do():
    assert port_problem(80) is None and port_problem(65535) is None
    assert "between 1 and 65535" in port_problem(0)
    assert port_problem(0, zero_means_any=True) is None
    assert "from 0 (any free port)" in port_problem(70000, zero_means_any=True)
    assert port_problem(True) is not None and port_problem("80") is not None


def test_worker_ports_must_be_in_range_and_not_shared():
    assert validate_worker_ports({"w1": 5001, "w2": 0, "w3": 0}) == {"w1": 5001, "w2": 0, "w3": 0}
    with pytest.raises(ConfigurationError, match="The port for worker 'w2' must be an integer"):
        validate_worker_ports({"w1": 5001, "w2": -1})
    with pytest.raises(ConfigurationError, match=r"Two workers cannot share a port.*\[5001\]"):
        validate_worker_ports({"w1": 5001, "w2": 5001})


def test_a_container_port_is_a_tcp_port():
    assert validate_container_port(80) == 80
    with pytest.raises(ConfigurationError, match="container_port \\(CHIMERA_WORKERS_PORT\\)"):
        validate_container_port(0)


@pytest.mark.parametrize(
    ("share", "expected"),
    [
        (1, "must be at least 2, Docker's smallest CPU share"),
        (262_145, "must be at most 262144, Docker's largest CPU share"),
        (2.5, "must be an integer from 2 to 262144"),
        (True, "must be an integer from 2 to 262144"),
    ],
)
def test_a_cpu_share_is_an_integer_in_dockers_range(share, expected):
    assert cpu_share_problem(2) is None and cpu_share_problem(262_144) is None
    assert cpu_share_problem(share) == expected
    with pytest.raises(ConfigurationError, match="The CPU share of worker 'w1' must be"):
        validate_cpu_share("w1", share)


def test_a_network_name_has_1_to_50_characters_as_the_run_id_is_appended():
    assert network_name_problem("n" * 50) is None
    assert validate_network_name("chimera-network") == "chimera-network"
    assert "1 to 50 letters" in network_name_problem("n" * 51)
    for bad in ("n" * 51, "", "lab net", "-x", "../x"):
        with pytest.raises(ConfigurationError, match="is not allowed"):
            validate_network_name(bad)


def test_a_network_prefix_is_three_octets():
    assert network_prefix_problem("192.168.10") is None
    for bad in ("192.168.10.0", "192.168.256", "192.168.01", "a.b.c"):
        assert "first three octets" in network_prefix_problem(bad)


@pytest.mark.parametrize(
    ("subnet", "expected"),
    [
        (
            "192.168.10.7/24",
            "its host bits are not zero (the network address would be 192.168.10.0/24)",
        ),
        ("10.0.0.0/30", "a mask of 30 bits leaves no room"),
        ("fd00::/64", "it is IPv6"),
        ("not a subnet", "does not appear to be"),
    ],
)
def test_a_subnet_is_an_ipv4_network_address_with_room_for_workers(subnet, expected):
    assert subnet_problem("192.168.10.0/24") is None and subnet_problem("10.0.0.0/29") is None
    assert expected in subnet_problem(subnet)
    with pytest.raises(ConfigurationError, match="is not an IPv4 network address Docker can use"):
        validate_subnet(subnet)
    assert validate_subnet(None) is None


def test_an_image_reference_follows_dockers_grammar():
    assert validate_image_reference("registry.lab:5000/chimera-worker:1") == (
        "registry.lab:5000/chimera-worker:1"
    )
    for bad in ("Upper/Case:1", "python:3.11 && curl evil", ""):
        with pytest.raises(ConfigurationError, match="is not a Docker image reference"):
            validate_image_reference(bad)


def test_a_swarm_constraint_compares_a_node_attribute():
    assert validate_constraint(" node.hostname==lab-pc-3 ") == "node.hostname==lab-pc-3"
    assert validate_constraint("node.labels.gpu!=yes") == "node.labels.gpu!=yes"
    for bad in ("anything", "node.hostname==pc1; rm -rf /"):
        with pytest.raises(ConfigurationError, match="is not one Swarm understands"):
            validate_constraint(bad)


def test_a_worker_url_is_a_scheme_host_and_port_without_a_path():
    assert validate_worker_url("w1", "http://10.0.0.11:5001/") == "http://10.0.0.11:5001"
    for bad in ("file:///etc/passwd", "http://10.0.0.1:5001/v1", "http://u@h:1", 5001):
        with pytest.raises(ConfigurationError, match="The URL of worker 'w1' must look like"):
            validate_worker_url("w1", bad)
    with pytest.raises(ConfigurationError, match="has a bad port"):
        validate_worker_url("w1", "http://10.0.0.11:99999")


def test_a_cluster_needs_a_name_and_a_positive_startup_timeout():
    assert validate_cluster_name("lab") == "lab"
    assert validate_startup_timeout(2) == 2.0
    with pytest.raises(ConfigurationError, match="non-empty string"):
        validate_cluster_name("")
    with pytest.raises(ConfigurationError, match="must be > 0 seconds"):
        validate_startup_timeout(0)


# --- one rule, two places: the settings and the backends refuse the same values ------------


def test_a_network_name_of_51_characters_is_refused_by_the_settings_and_by_docker():
    # Prepare
    name = "n" * 51
    # Execute
    from_settings = settings_problems(NETWORK_NAME=name)
    from_backend = refused(lambda: DockerCluster([HealthWorker()], network=name))
    # Assert
    assert f"CHIMERA_NETWORK_NAME: {network_name_problem(name)}" in from_settings
    assert f"Network name {name!r} is not allowed: use 1 to 50" in from_backend
    assert load_settings(
        {"CHIMERA_WORKERS_NODES_NAMES": '["w1"]', "CHIMERA_NETWORK_NAME": "n" * 50}
    )


def test_a_cpu_share_above_dockers_largest_is_refused_by_the_settings_and_by_docker():
    # Execute
    from_settings = settings_problems(WORKERS_CPU_SHARES="[262145]")
    from_backend = refused(lambda: DockerCluster([HealthWorker()], cpu_shares=[262_145]))
    # Assert
    assert f"CHIMERA_WORKERS_CPU_SHARES[0]: {cpu_share_problem(262_145)}" in from_settings
    assert "The CPU share of worker 'worker1' must be an integer from 2" in from_backend


def test_a_subnet_without_room_for_workers_is_refused_by_the_settings_and_by_docker():
    # Execute
    from_settings = settings_problems(NETWORK_PREFIX="10.1.2", NETWORK_SUBNET_MASK="30")
    from_backend = refused(lambda: DockerCluster([HealthWorker()], subnet="10.1.2.0/30"))
    # Assert
    problem = subnet_problem("10.1.2.0/30")
    assert "CHIMERA_NETWORK_SUBNET_MASK: 10.1.2.0/30 is not a network address" in from_settings
    assert problem in from_settings and problem in from_backend


def test_a_host_name_for_published_ports_is_refused_by_the_settings_and_by_docker():
    # Execute
    from_settings = settings_problems(BACKEND="swarm", WORKERS_HOST="localhost")
    from_backend = refused(lambda: SwarmCluster([HealthWorker()], host="localhost"))
    accepted = load_settings(
        {"CHIMERA_WORKERS_NODES_NAMES": '["w1"]', "CHIMERA_WORKERS_HOST": "localhost"}
    )
    # Assert
    problem = published_host_problem("localhost")
    assert "CHIMERA_BACKEND: 'swarm' publishes the workers' ports" in from_settings
    assert problem in from_settings and problem in from_backend
    assert accepted.WORKERS_HOST == "localhost"  # the process backend binds host names
    assert LocalCluster([HealthWorker()], host="localhost").host == "localhost"


@pytest.mark.parametrize("name", ["w;reboot", "x" * 64, "_w"])
def test_a_bad_worker_name_is_refused_by_the_settings_and_by_every_backend(name):
    # Execute
    from_settings = settings_problems(WORKERS_NODES_NAMES=f'["{name}"]')
    from_backends = [
        refused(lambda: LocalCluster({name: HealthWorker()})),
        refused(lambda: DockerCluster({name: HealthWorker()})),
        refused(lambda: AttachedCluster({name: "http://127.0.0.1:5001"})),
    ]
    # Assert
    problem = worker_name_problem(name)
    assert f"CHIMERA_WORKERS_NODES_NAMES[0]: {problem}" in from_settings
    assert all(f"Worker name {name!r} {problem}" in message for message in from_backends)


def test_a_port_out_of_range_is_refused_by_the_settings_and_by_every_backend():
    # Execute
    from_settings = settings_problems(WORKERS_MAPPED_PORTS="[70000]")
    from_local = refused(lambda: LocalCluster([HealthWorker()], ports=[70000]))
    from_docker = refused(lambda: DockerCluster([HealthWorker()], ports=[70000]))
    # Assert
    assert f"CHIMERA_WORKERS_MAPPED_PORTS[0]: {port_problem(70000)}" in from_settings
    expected = f"The port for worker 'worker1' {port_problem(70000, zero_means_any=True)}"
    assert expected in from_local and expected in from_docker
