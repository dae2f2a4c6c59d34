"""Tests of the Docker backend (``DockerCluster``), against a real Docker engine.

Containers run the offline image here (no registry is reachable): an empty imported image
with this machine's Python mounted read-only. Each start takes a few seconds, so the fault
tests share one cluster and leave it healthy for the next test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from chimera_nb import ParameterServerMaster, SGDWorker
from chimera_nb._exceptions import ClusterError, ConfigurationError
from chimera_nb.cluster import DockerCluster, WorkerState
from chimera_nb.cluster._images import (
    dockerfile,
    image_mode_setting,
    offline_mounts,
    worker_image_tag,
    worker_requirements,
)
from chimera_nb.logs import STATUS_LOG, read_time_log
from chimera_nb.wire import paths

from .conftest import leftovers, run_seed_project

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_docker(monkeypatch):
    """Make any call to Docker fail the test: validation must come first."""
    docker = pytest.importorskip("docker", reason="the Docker SDK is not installed")

    def called(*args, **kwargs):
        raise AssertionError("Docker was called before the values were checked")

    monkeypatch.setattr(docker, "from_env", called)
    monkeypatch.setattr(docker, "DockerClient", called)


def shard(wine_quality, n_rows: int = 600):
    X, y = wine_quality
    return X.iloc[:n_rows], y.iloc[:n_rows]


# --- values are checked before Docker is called --------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": {"w1; rm -rf ~": SGDWorker()}}, "contains ' ' \\(space\\), ';', '~'"),
        ({"workers": {"../etc/passwd": SGDWorker()}}, "contains '.', '/'"),
        ({"workers": {"$(reboot)": SGDWorker()}}, "contains"),
        ({"network": "lab net; ls"}, "Network name 'lab net; ls' is not allowed"),
        ({"network": "../x"}, "Network name '../x' is not allowed"),
        ({"image": "python:3.11 && curl evil"}, "is not a Docker image reference"),
        ({"image": "Upper/Case:1"}, "is not a Docker image reference"),
        ({"subnet": "192.168.10.7/24"}, "is not an IPv4 network address"),
        ({"cpu_shares": [1]}, "must be an integer from 2"),
        ({"host": "0.0.0.0 -p 1:1"}, "host must be an IP address"),
        ({"image": "chimera:1", "image_mode": "offline"}, "not both"),
        ({"image_mode": "cloud"}, "must be 'auto', 'online' or 'offline'"),
        ({"ports": [70000]}, "from 0 \\(any free port\\) to 65535"),
        ({"container_port": 0}, "container_port \\(CHIMERA_WORKERS_PORT\\)"),
    ],
)
def test_values_with_shell_or_path_characters_are_refused_before_docker_is_called(
    no_docker, options, message
):
    # Prepare
    workers = options.pop("workers", {"w1": SGDWorker().with_data([[1.0]], [1.0])})
    # Execute / Assert
    with pytest.raises(ConfigurationError, match=message):
        DockerCluster(workers, **options).start()


def test_a_bad_worker_name_in_a_seed_project_stops_run_before_docker_is_called(
    no_docker, monkeypatch, tmp_path
):
    # Prepare
    import chimera_nb

    monkeypatch.setenv("CHIMERA_BACKEND", "docker")
    monkeypatch.setenv("CHIMERA_WORKERS_NODES_NAMES", '["w1", "w2;reboot"]')
    # Execute
    with pytest.raises(ConfigurationError) as raised:
        chimera_nb.run(ParameterServerMaster("regressor"), 0, directory=tmp_path)
    # Assert
    assert "CHIMERA_WORKERS_NODES_NAMES[1]: contains ';'" in str(raised.value)


def test_an_unpicklable_worker_is_refused_before_docker_is_called(no_docker):
    # Prepare
    worker = SGDWorker().with_data([[1.0]], [1.0])
    worker.callback = lambda: None  # a lambda cannot travel to a container
    # Execute / Assert
    with pytest.raises(ConfigurationError, match="cannot be sent to its process"):
        DockerCluster([worker]).start()


# --- images ---------------------------------------------------------------------------------


def test_the_online_dockerfile_installs_this_machines_versions_on_a_matching_python():
    # Prepare
    import numpy

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    # Execute
    text = dockerfile(f"python:{python}-slim", worker_requirements())
    # Assert
    assert text.startswith("# chimera-nb worker image") and f"FROM python:{python}-slim" in text
    assert f'"numpy=={numpy.__version__}"' in text and "COPY chimera_nb" in text
    assert worker_image_tag().startswith(f"chimera-nb-worker:0.1.0-py{python}-")
    assert worker_image_tag(requirements=["numpy"]) != worker_image_tag()


def test_the_offline_image_mounts_cover_this_python_and_its_packages():
    # Execute
    mounts = offline_mounts()
    # Assert
    for needed in (sys.prefix, sys.base_prefix, os.path.dirname(np.__file__), sys.executable):
        real = os.path.realpath(needed)
        assert any(real == m or real.startswith(m.rstrip("/") + "/") for m in mounts), needed
    assert "/usr" in mounts and str(REPO_ROOT) not in mounts


def test_the_image_mode_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv("CHIMERA_IMAGE_MODE", "Offline")
    assert image_mode_setting(None) == "offline"
    assert image_mode_setting("online") == "online"
    monkeypatch.delenv("CHIMERA_IMAGE_MODE")
    assert image_mode_setting(None) == "auto"


# --- a seed project, as the seed runs it ------------------------------------------------------


@pytest.mark.parametrize("kind", ["parameter-server", "bagging"])
def test_a_seed_project_under_docker_gives_the_process_backends_results_and_leaves_nothing(
    docker_client, process_results, wine_quality, tmp_path, kind
):
    # Prepare
    X, y = shard(wine_quality)
    expected = process_results[kind]
    # Execute
    actual = run_seed_project(tmp_path / f"docker-{kind}", X, y, kind, "docker")
    # Assert
    assert actual["fit"]["answered"] == ["w1", "w2", "w3"] and not actual["fit"]["failed"]
    if kind == "parameter-server":
        np.testing.assert_allclose(actual["fit"]["loss"], expected["fit"]["loss"], rtol=1e-12)
    np.testing.assert_allclose(actual["predict"], expected["predict"], rtol=1e-12)
    assert "DockerCluster" in (tmp_path / f"docker-{kind}" / STATUS_LOG).read_text()
    assert leftovers(docker_client, f"chimera-nb.cluster={actual['project']}") == {}


# --- one cluster for the faults -----------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(docker_client, wine_quality, tmp_path_factory):
    """Three SGD workers in containers; each also gets a data folder, to check mounts."""
    X, y = shard(wine_quality)
    folders = tmp_path_factory.mktemp("data")
    for name in ("worker1", "worker2", "worker3"):
        (folders / name).mkdir()
        (folders / name / "owner.txt").write_text(name)
    cluster = DockerCluster.from_shards(
        SGDWorker("regressor"),
        X,
        y,
        n_workers=3,
        name="faults",
        run_dir=tmp_path_factory.mktemp("run"),
        data_dirs=[folders / name for name in ("worker1", "worker2", "worker3")],
    )
    with cluster:
        yield cluster
    assert leftovers(docker_client, f"chimera-nb.run={cluster.run_id}") == {}


def test_workers_answer_on_loopback_and_require_the_runs_token_except_for_health(cluster):
    # Prepare
    url = cluster.endpoints["worker1"]
    # Execute
    health = httpx.get(url + paths.HEALTH, trust_env=False)
    without = httpx.get(url + paths.SGD_STATISTICS, trust_env=False)
    wrong = httpx.get(
        url + paths.SGD_STATISTICS, headers={"authorization": "Bearer x" * 8}, trust_env=False
    )
    right = httpx.get(
        url + paths.SGD_STATISTICS,
        headers={"authorization": f"Bearer {cluster.token}"},
        trust_env=False,
    )
    # Assert
    assert url.startswith("http://127.0.0.1:")
    assert health.json()["name"] == "worker1"
    assert without.status_code == 401 and "requires a shared token" in without.json()["detail"]
    assert wrong.status_code == 401 and right.status_code == 200
    assert repr(cluster) == "DockerCluster('faults', 3 workers: 3 up)"


def test_each_container_mounts_only_its_own_worker_read_only(cluster, docker_client):
    # Execute
    containers = {
        c.labels["chimera-nb.worker"]: c
        for c in docker_client.containers.list(
            filters={"label": f"chimera-nb.run={cluster.run_id}"}
        )
    }
    # Assert
    assert sorted(containers) == ["worker1", "worker2", "worker3"]
    for name, container in containers.items():
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        data = mounts["/chimera/chimera_train_data/" + name]
        assert data["Source"].endswith(name) and not data["RW"]
        assert Path(mounts["/chimera/worker.pickle"]["Source"]).name == f"{name}.pickle"
        assert not any(m["RW"] for m in mounts.values())
        others = {"worker1", "worker2", "worker3"} - {name}
        assert not any(Path(m["Source"]).name in others for m in mounts.values())
        bindings = container.attrs["HostConfig"]["PortBindings"]["80/tcp"]
        assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]
        assert container.attrs["HostConfig"]["ReadonlyRootfs"]
        assert container.attrs["HostConfig"]["CpuShares"] == 2


def test_pausing_a_worker_makes_it_a_straggler_in_the_time_log(cluster):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=5, tol=0.0, timeout=20)

    def pause_in_round_3(event):
        if (event.step, event.round_number) == ("K", 2):  # after round 2, before round 3
            cluster.pause("worker2")
            threading.Timer(1.5, cluster.unpause, ["worker2"]).start()

    master.events.subscribe(pause_in_round_3)
    started = pd.Timestamp.now().floor("s")
    # Execute
    master.fit(cluster)
    # Assert
    log = read_time_log(cluster.run_dir)
    steps = log[(log.endpoint == paths.SGD_FIT_STEP) & (log.time >= started)]
    round_3 = steps[steps["round"] == 3].groupby("worker").latency_ms.max()
    assert round_3["worker2"] > 1000, round_3
    assert round_3["worker1"] < 500 and round_3["worker3"] < 500
    assert master.history_[2].answered == ["worker1", "worker2", "worker3"]
    assert cluster.status()["worker2"] is WorkerState.UP


def test_a_paused_worker_times_out_and_is_reported(cluster):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=4, tol=0.0, timeout=1.0)
    master.events.subscribe(
        lambda event: (
            cluster.pause("worker3") if (event.step, event.round_number) == ("K", 2) else None
        )
    )
    # Execute
    try:
        master.fit(cluster)
        states = cluster.status()
    finally:
        cluster.unpause("worker3")
    # Assert
    assert master.history_[2].answered == ["worker1", "worker2"]
    assert master.history_[2].failed == {"worker3": "timed out after 1 s"}
    assert states["worker3"] is WorkerState.SLOW
    log = read_time_log(cluster.run_dir)
    timed_out = log[(log.worker == "worker3") & (log.status == "timeout")]
    assert len(timed_out) >= 2 and (timed_out.latency_ms >= 990).all()


def test_killing_a_worker_mid_fit_is_reported_and_restart_brings_it_back(cluster):
    # Prepare
    master = ParameterServerMaster("regressor", max_iter=12, tol=0.0, timeout=10)
    master.events.subscribe(
        lambda event: (
            cluster.kill("worker2") if (event.step, event.round_number) == ("D", 6) else None
        )
    )
    # Execute
    master.fit(cluster)
    killed = cluster.status()
    cluster.restart("worker2")
    refit = ParameterServerMaster("regressor", max_iter=3).fit(cluster)
    # Assert
    assert master.history_[4].answered == ["worker1", "worker2", "worker3"]
    assert "worker2" in master.history_[5].failed
    assert master.history_[-1].answered == ["worker1", "worker3"]
    assert killed["worker2"] is WorkerState.FAILED
    assert "worker2" in (cluster.run_dir / STATUS_LOG).read_text()
    assert refit.history_[-1].answered == ["worker1", "worker2", "worker3"]
    assert cluster.status()["worker2"] is WorkerState.UP


def test_a_disconnected_worker_is_refused_until_it_is_reconnected(cluster):
    # Prepare
    url = cluster.endpoints["worker1"]
    # Execute
    cluster.disconnect("worker1")
    try:
        master = ParameterServerMaster("regressor", max_iter=2, timeout=5).fit(cluster)
        state = cluster.status()["worker1"]
    finally:
        cluster.reconnect("worker1")
    # Assert
    assert "worker1" in master.history_[0].failed
    assert state is WorkerState.FAILED
    assert cluster.endpoints["worker1"] == url
    assert httpx.get(url + paths.HEALTH, trust_env=False).status_code == 200


def test_slow_makes_a_worker_answer_late_over_http(cluster):
    # Execute
    cluster.slow("worker3", 0.5)
    try:
        slowed = cluster.status()["worker3"]
        master = ParameterServerMaster("regressor", max_iter=1, tol=0.0).fit(cluster)
    finally:
        cluster.slow("worker3", 0)
    # Assert
    assert slowed is WorkerState.SLOW
    assert master.history_[0].latency_ms["worker3"] >= 500


# --- what other runs hold ------------------------------------------------------------------------


CRASHING_RUN = """\
import os, sys, psutil
sys.path.insert(0, {root!r})
from chimera_nb import SGDWorker
from chimera_nb.cluster import DockerCluster
cluster = DockerCluster([SGDWorker().with_data([[1.0], [2.0]], [1.0, 2.0])], name="crashed")
cluster.start()
print(cluster.run_id, flush=True)
for child in psutil.Process().children():  # the run's reaper goes too, as when a machine
    if "chimera_nb.cluster._reaper" in child.cmdline():  # is switched off
        child.kill()
os._exit(0)  # as if killed: no close(), no atexit
"""


def test_a_crashed_runs_leftovers_are_removed_at_the_next_start(docker_client, tmp_path):
    """The backstop of the reaper (tests/cluster/test_reaper.py): a run whose owner and
    reaper both died, as when the machine was switched off, goes at the next start."""
    # Prepare
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN.format(root=str(REPO_ROOT))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    run_id = crashed.stdout.strip().splitlines()[-1]
    left = leftovers(docker_client, f"chimera-nb.run={run_id}")
    # Execute
    with DockerCluster([SGDWorker().with_data([[1.0], [2.0]], [1.0, 2.0])], name="next"):
        after = leftovers(docker_client, f"chimera-nb.run={run_id}")
    # Assert
    assert sorted(left) == ["containers", "images", "networks"], crashed.stderr
    assert after == {}


def test_a_taken_port_is_reported_with_the_container_that_holds_it(cluster, docker_client):
    # Prepare
    taken = int(cluster.endpoints["worker1"].rsplit(":", 1)[1])
    blocked = DockerCluster([SGDWorker().with_data([[1.0]], [1.0])], name="blocked", ports=[taken])
    # Execute
    with pytest.raises(ClusterError) as raised:
        blocked.start()
    # Assert
    message = str(raised.value)
    assert (
        f"Port {taken} for worker 'worker1' is already in use by the container faults-" in message
    )
    assert (
        f"run {cluster.run_id} of cluster 'faults'" in message and "Nothing was started" in message
    )
    assert leftovers(docker_client, "chimera-nb.cluster=blocked") == {}


def test_an_overlapping_subnet_names_the_network_that_holds_it(docker_client):
    # Prepare
    import docker

    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.213.7.0/24")])
    other = docker_client.networks.create("not-chimera-net", ipam=ipam)
    cluster = DockerCluster(
        [SGDWorker().with_data([[1.0]], [1.0])], name="overlap", subnet="10.213.7.0/25"
    )
    # Execute
    try:
        with pytest.raises(ClusterError) as raised:
            cluster.start()
    finally:
        other.remove()
    # Assert
    assert "overlaps the network not-chimera-net (10.213.7.0/24, not chimera-nb's)" in str(
        raised.value
    )
    assert leftovers(docker_client, "chimera-nb.cluster=overlap") == {}


def test_a_worker_that_crashes_at_start_is_reported_with_its_log(docker_client, tmp_path):
    # Prepare
    script = tmp_path / "broken.py"
    script.write_text(textwrap.dedent("raise RuntimeError('this worker is broken on purpose')\n"))
    cluster = DockerCluster({"broken": script}, name="broken", cwd=tmp_path)
    # Execute
    with pytest.raises(ClusterError) as raised:
        cluster.start()
    # Assert
    assert "Worker 'broken' exited (code 1)" in str(raised.value)
    assert "this worker is broken on purpose" in str(raised.value)
    assert leftovers(docker_client, "chimera-nb.cluster=broken") == {}


def test_a_lab_runs_its_workers_in_containers_with_the_dashboard(docker_client):
    # Prepare
    import numpy as np

    from chimera_nb import Lab, ParameterServerMaster, SGDWorker

    X = np.random.default_rng(2).normal(size=(40, 3))
    master = ParameterServerMaster("regressor", max_iter=20, tol=0.0)
    with Lab.from_shards(
        SGDWorker("regressor"),
        X,
        X @ [1.0, 2.0, 3.0],
        master=master,
        n_workers=2,
        name="lab-docker",
        backend="docker",
    ) as lab:
        dashboard = lab.dashboard()
        # Execute
        lab.fit()
        dashboard.refresh()
        shown = {w["name"]: w["state"] for w in dashboard.live.workers}
        dashboard.close()
    # Assert
    assert type(lab.cluster).__name__ == "DockerCluster"
    assert master.history_[-1].answered == ["worker1", "worker2"]
    assert shown == {"worker1": "up", "worker2": "up"}


def test_a_lab_refuses_an_unknown_backend():
    from chimera_nb import ConfigurationError, Lab, ParameterServerMaster

    with pytest.raises(ConfigurationError, match="backend must be one of"):
        Lab([], ParameterServerMaster(), backend="kubernetes")
