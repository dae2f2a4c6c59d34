"""Tests for chimera_nb.seed.settings: the seed's CHIMERA_* variables."""

from __future__ import annotations

import json

import pytest

from chimera_nb._exceptions import ConfigurationError
from chimera_nb.seed.settings import ChimeraSettings, load_settings
from chimera_nb.validation import validate_worker_name

NAMES = "CHIMERA_WORKERS_NODES_NAMES"


def env(**variables: str) -> dict[str, str]:
    """An explicit environment: ``env(WORKERS_PORT="81")`` -> ``{"CHIMERA_WORKERS_PORT": "81"}``."""
    return {f"CHIMERA_{name}": value for name, value in variables.items()}


def problems_of(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    return str(caught.value)


# --- defaults and parsing ------------------------------------------------------------------------


def test_defaults_fill_every_variable_but_the_names() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["w1", "w2", "w3"]')

    # Execute
    settings = load_settings(environ)

    # Assert
    assert settings.NETWORK_NAME == "chimera-network"
    assert settings.NETWORK_PREFIX == "192.168.10"
    assert settings.NETWORK_SUBNET_MASK == 24
    assert settings.WORKERS_NODES_NAMES == ["w1", "w2", "w3"]
    assert settings.WORKERS_CPU_SHARES is None
    assert settings.WORKERS_MAPPED_PORTS is None
    assert settings.WORKERS_HOST == "127.0.0.1"
    assert settings.WORKERS_PORT == 80
    assert settings.WORKERS_ENDPOINTS_MAX_RETRIES == 0
    assert settings.WORKERS_ENDPOINTS_TIMEOUT == 100.0
    assert settings.BACKEND == "process"
    assert settings.MASTER_HOST == "127.0.0.1"


def test_unset_lists_resolve_to_two_shares_each_and_free_ports() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["w1", "w2", "w3"]')

    # Execute
    settings = load_settings(environ)

    # Assert
    assert settings.n_workers == 3
    assert settings.cpu_shares == [2, 2, 2]
    assert settings.mapped_ports is None


def test_json_lists_are_parsed_per_worker() -> None:
    # Prepare
    environ = env(
        WORKERS_NODES_NAMES='["sgd-1", "sgd_2"]',
        WORKERS_CPU_SHARES="[2, 4]",
        WORKERS_MAPPED_PORTS="[5001, 5002]",
        WORKERS_ENDPOINTS_TIMEOUT="2.5",
        WORKERS_ENDPOINTS_MAX_RETRIES="3",
        BACKEND="docker",
        NETWORK_PREFIX="10.0.0",
        NETWORK_SUBNET_MASK="8",
    )

    # Execute
    settings = load_settings(environ)

    # Assert
    assert settings.WORKERS_NODES_NAMES == ["sgd-1", "sgd_2"]
    assert settings.cpu_shares == [2, 4]
    assert settings.mapped_ports == [5001, 5002]
    assert settings.WORKERS_ENDPOINTS_TIMEOUT == 2.5
    assert settings.WORKERS_ENDPOINTS_MAX_RETRIES == 3
    assert settings.BACKEND == "docker"
    assert settings.NETWORK_SUBNET_MASK == 8


def test_load_settings_reads_os_environ_when_given_no_mapping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare
    monkeypatch.setenv(NAMES, '["w1"]')
    monkeypatch.setenv("CHIMERA_WORKERS_PORT", "8080")

    # Execute
    from_function = load_settings()
    from_class = ChimeraSettings()

    # Assert
    assert from_function.WORKERS_PORT == 8080
    assert from_function == from_class


def test_an_explicit_mapping_ignores_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare
    monkeypatch.setenv("CHIMERA_BACKEND", "docker")

    # Execute
    settings = load_settings(env(WORKERS_NODES_NAMES='["w1"]'))

    # Assert
    assert settings.BACKEND == "process"


def test_variable_names_are_case_sensitive() -> None:
    # Prepare
    environ = {"chimera_workers_nodes_names": '["w1"]'}

    # Execute
    message = problems_of(environ)

    # Assert
    assert f"{NAMES}: is required but not set" in message


def test_settings_cannot_be_changed_after_validation() -> None:
    # Prepare
    settings = load_settings(env(WORKERS_NODES_NAMES='["w1"]'))

    # Execute / Assert
    with pytest.raises(Exception, match="frozen"):
        settings.WORKERS_PORT = 0  # type: ignore[misc]


# --- one error listing every problem -----------------------------------------------------------


def test_missing_names_say_the_variable_is_required() -> None:
    # Prepare
    environ: dict[str, str] = {}

    # Execute
    message = problems_of(environ)

    # Assert
    assert f"{NAMES}: is required but not set" in message
    assert """CHIMERA_WORKERS_NODES_NAMES='["worker1", "worker2"]'""" in message


def test_a_misspelled_variable_is_pointed_out() -> None:
    # Prepare
    environ = {"CHIMERA_WORKER_NODES_NAMES": '["w1"]'}

    # Execute
    message = problems_of(environ)

    # Assert
    assert "CHIMERA_WORKER_NODES_NAMES is set, did you mean CHIMERA_WORKERS_NODES_NAMES?" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('["w1", "w2"', "is not valid JSON"),
        ("w1,w2", "is not a JSON list"),
        ("['w1', 'w2']", "uses single quotes"),
        ('"w1"', "must be a JSON list"),
    ],
)
def test_bad_json_is_reported_with_the_variable_and_the_raw_value(raw: str, expected: str) -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES=raw)

    # Execute
    message = problems_of(environ)

    # Assert
    assert f"{NAMES}: {expected}" in message
    assert f"(got {raw!r})" in message
    assert "Lists are JSON strings" in message


def test_bad_json_in_an_optional_list_is_an_error_not_a_default() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["w1"]', WORKERS_MAPPED_PORTS="[5001,")

    # Execute
    message = problems_of(environ)

    # Assert
    assert "CHIMERA_WORKERS_MAPPED_PORTS: is not valid JSON" in message


def test_mismatched_list_lengths_name_both_variables() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["w1", "w2", "w3"]', WORKERS_MAPPED_PORTS="[5001, 5002]")

    # Execute
    message = problems_of(environ)

    # Assert
    expected = (
        "CHIMERA_WORKERS_MAPPED_PORTS: has 2 values but CHIMERA_WORKERS_NODES_NAMES has 3 names"
    )
    assert expected in message
    assert "(got '[5001, 5002]')" in message


def test_the_seeds_one_element_cpu_shares_default_is_not_stretched_to_all_workers() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["w1", "w2"]', WORKERS_CPU_SHARES="[2]")

    # Execute
    message = problems_of(environ)

    # Assert
    assert (
        "CHIMERA_WORKERS_CPU_SHARES: has 1 value but CHIMERA_WORKERS_NODES_NAMES has 2" in message
    )


def test_every_problem_is_listed_in_one_error() -> None:
    # Prepare
    environ = env(
        WORKERS_NODES_NAMES='["w1", "w2"]',
        WORKERS_CPU_SHARES="[2, 1]",
        WORKERS_PORT="eighty",
        BACKEND="kubernetes",
        WORKERS_ENDPOINTS_TIMEOUT="0",
    )

    # Execute
    message = problems_of(environ)

    # Assert
    assert "have 4 problems" in message
    assert "CHIMERA_WORKERS_CPU_SHARES[1]: must be at least 2" in message
    assert "CHIMERA_WORKERS_PORT: " in message
    assert "CHIMERA_BACKEND: must be 'process', 'docker', 'swarm' or 'attach'" in message
    assert "CHIMERA_WORKERS_ENDPOINTS_TIMEOUT: must be greater than 0 (got '0')" in message


def test_cpu_shares_below_two_are_refused() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["w1", "w2"]', WORKERS_CPU_SHARES="[0, 2]")

    # Execute
    message = problems_of(environ)

    # Assert
    assert "CHIMERA_WORKERS_CPU_SHARES[0]: must be at least 2" in message
    assert "(got 0)" in message


def test_duplicate_names_are_refused() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["w1", "w2", "w1"]')

    # Execute
    message = problems_of(environ)

    # Assert
    assert f"{NAMES}: must be unique, but 'w1' appear more than once" in message


def test_names_differing_only_in_case_are_refused() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["worker", "Worker"]')

    # Execute
    message = problems_of(environ)

    # Assert
    assert "differ only in case" in message


def test_duplicate_ports_are_refused() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["w1", "w2"]', WORKERS_MAPPED_PORTS="[5001, 5001]")

    # Execute
    message = problems_of(environ)

    # Assert
    assert "CHIMERA_WORKERS_MAPPED_PORTS: must be unique, but 5001 appear more than once" in message


def test_ports_outside_the_tcp_range_are_refused() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["w1", "w2"]', WORKERS_MAPPED_PORTS="[0, 70000]")

    # Execute
    message = problems_of(environ)

    # Assert
    assert "CHIMERA_WORKERS_MAPPED_PORTS[0]: must be a TCP port" in message
    assert "CHIMERA_WORKERS_MAPPED_PORTS[1]: must be a TCP port" in message


def test_an_empty_name_list_is_refused() -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES="[]")

    # Execute
    message = problems_of(environ)

    # Assert
    assert f"{NAMES}: lists no workers" in message


@pytest.mark.parametrize("name", ["../x", "a;rm -rf", "a b", "w.py", "-rf", "", "w\n", "wörker"])
def test_names_with_shell_or_path_characters_are_refused(name: str) -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES=f'["ok", {json.dumps(name)}]')

    # Execute
    message = problems_of(environ)

    # Assert
    assert f"{NAMES}[1]: " in message
    assert f"(got {name!r})" in message
    assert "Why names are strict" in message


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("NETWORK_PREFIX", "192.168.10.0", "first three octets"),
        ("NETWORK_PREFIX", "192.168.256", "first three octets"),
        ("NETWORK_SUBNET_MASK", "33", "less than or equal to 32"),
        ("NETWORK_SUBNET_MASK", "16", "is not a network address"),
        ("NETWORK_NAME", "my network", "Docker network name"),
        ("WORKERS_HOST", "0.0.0.0; rm", "IP address"),
        ("WORKERS_ENDPOINTS_MAX_RETRIES", "-1", "greater than or equal to 0"),
        ("WORKERS_ENDPOINTS_TIMEOUT", "inf", "finite"),
    ],
)
def test_scalar_variables_are_checked(variable: str, value: str, expected: str) -> None:
    # Prepare
    environ = env(WORKERS_NODES_NAMES='["w1"]', **{variable: value})

    # Execute
    message = problems_of(environ)

    # Assert
    assert f"CHIMERA_{variable}: " in message
    assert expected in message


def test_validation_errors_are_configuration_errors_and_value_errors() -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError, match="CHIMERA_WORKERS_NODES_NAMES"):
        load_settings({})


# --- validate_worker_name ------------------------------------------------------------------------


def test_validate_worker_name_returns_a_good_name() -> None:
    # Prepare
    name = "worker_1-a"

    # Execute
    actual = validate_worker_name(name)

    # Assert
    assert actual == name


@pytest.mark.parametrize("name", ["../x", "a;rm -rf", "a b", "x" * 64, "_hidden"])
def test_validate_worker_name_says_what_is_wrong_and_what_to_do(name: str) -> None:
    # Prepare / Execute
    with pytest.raises(ConfigurationError) as caught:
        validate_worker_name(name)

    # Assert
    message = str(caught.value)
    assert repr(name) in message
    assert "Rename the worker script and its data folder" in message
