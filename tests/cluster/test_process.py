"""Tests of the process backend (``LocalCluster``), with real worker processes only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from chimera_nb._exceptions import ClusterError, ConfigurationError
from chimera_nb.cluster import (
    LocalCluster,
    WorkerState,
    shutdown_launcher,
    start_launcher,
    sweep_stale_workers,
)
from chimera_nb.cluster._zygote import ZYGOTE

from ._targets import BrokenWorker, HealthWorker, NoHealthWorker

REPO_ROOT = Path(__file__).resolve().parents[2]


def is_gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (a zombie waiting to be reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until_gone(pids, timeout: float = 5.0) -> list[int]:
    """Wait up to ``timeout`` s; return the pids that still run."""
    deadline = time.monotonic() + timeout
    alive = [pid for pid in pids if not is_gone(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if not is_gone(pid)]
    return alive


def info(cluster: LocalCluster, name: str) -> dict:
    return httpx.get(cluster.endpoints[name] + "/info", trust_env=False).json()


@pytest.fixture(scope="module", autouse=True)
def no_worker_left_behind():
    """After this module, no worker runs and the zygote stopped, leaving no descendant."""
    yield
    zygote_pid = ZYGOTE.pid
    workers = psutil.Process(zygote_pid).children() if zygote_pid else []
    shutdown_launcher()
    assert not [w.pid for w in workers if not is_gone(w.pid)], "workers still ran at the end"
    left = [p for p in psutil.Process().children(recursive=True) if not is_gone(p.pid)]
    assert not left, f"processes left behind: {[(p.pid, p.cmdline()) for p in left]}"


@pytest.fixture
def run_dir(tmp_path):
    return tmp_path / "run"


# --- starting and stopping -----------------------------------------------------------------


def test_four_workers_start_and_answer_health_on_loopback(run_dir):
    # Prepare
    cluster = LocalCluster([HealthWorker()] * 4, name="four", run_dir=run_dir)

    # Execute
    with cluster:
        endpoints = cluster.endpoints
        answers = {
            name: httpx.get(url + "/health", trust_env=False).status_code
            for name, url in endpoints.items()
        }
        states = cluster.status()

    # Assert
    assert list(endpoints) == ["worker1", "worker2", "worker3", "worker4"]
    assert all(url.startswith("http://127.0.0.1:") for url in endpoints.values())
    assert len(set(endpoints.values())) == 4
    assert answers == dict.fromkeys(endpoints, 200)
    assert states == dict.fromkeys(endpoints, WorkerState.UP)


def test_close_leaves_no_worker_process_behind(run_dir):
    # Prepare
    cluster = LocalCluster([HealthWorker()] * 3, name="closing", run_dir=run_dir).start()
    pids = list(cluster.pids.values())

    # Execute
    cluster.close()
    cluster.close()  # a second close does nothing

    # Assert
    assert wait_until_gone(pids, timeout=0.5) == []
    assert set(cluster.status().values()) == {WorkerState.STOPPED}
    assert repr(cluster) == "LocalCluster('closing', 3 workers: closed)"


def test_workers_know_their_name_data_dir_and_working_directory(tmp_path, run_dir):
    # Prepare
    cluster = LocalCluster(
        {"alice": HealthWorker(), "bob": HealthWorker()},
        name="context",
        run_dir=run_dir,
        cwd=tmp_path,
        data_dirs={"alice": tmp_path / "alice-data"},
    )

    # Execute
    with cluster:
        alice, bob = info(cluster, "alice"), info(cluster, "bob")
        manifest = json.loads((run_dir / "workers.json").read_text())

    # Assert
    assert (alice["name"], bob["name"]) == ("alice", "bob")
    assert alice["data_dir"] == str(tmp_path / "alice-data")
    assert bob["data_dir"] == str(tmp_path / "chimera_train_data" / "bob")
    assert alice["cwd"] == str(tmp_path)
    assert alice["blas_threads"] == "1"
    assert [w["name"] for w in manifest["workers"]] == ["alice", "bob"]
    assert {w["pid"] for w in manifest["workers"]} == {alice["pid"], bob["pid"]}


def test_fixed_ports_are_used_as_given(run_dir):
    # Prepare
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    # Execute
    cluster = LocalCluster([HealthWorker()], name="fixed", run_dir=run_dir, ports=[free_port])
    with cluster:
        endpoint = cluster.endpoints["worker1"]

    # Assert
    assert endpoint == f"http://127.0.0.1:{free_port}"


def test_a_cluster_with_the_same_name_replaces_the_running_one(run_dir, tmp_path):
    # Prepare: a notebook cell that is run twice
    first = LocalCluster([HealthWorker()], name="rerun", run_dir=run_dir).start()
    first_pids = list(first.pids.values())

    # Execute
    second = LocalCluster([HealthWorker()], name="rerun", run_dir=tmp_path / "again").start()

    # Assert
    try:
        assert wait_until_gone(first_pids) == []
        assert repr(first) == "LocalCluster('rerun', 1 worker: closed)"
        assert second.status() == {"worker1": WorkerState.UP}
    finally:
        second.close()


def test_from_shards_gives_each_worker_its_own_rows(run_dir):
    # Prepare
    X = np.arange(20.0).reshape(10, 2)
    y = np.arange(10.0)

    # Execute
    with LocalCluster.from_shards(
        HealthWorker(), X, y, n_workers=3, name="shards", run_dir=run_dir
    ) as cluster:
        answers = [info(cluster, name) for name in cluster.names]

    # Assert
    assert [a["n_rows"] for a in answers] == [4, 3, 3]
    assert [a["first_y"] for a in answers] == [0.0, 4.0, 7.0]


def test_a_seed_style_script_runs_as_main_with_its_launch_context(tmp_path, run_dir):
    # Prepare: chimera_workers/<name>.py, as in a seed project
    script = tmp_path / "chimera_workers" / "sgd1.py"
    script.parent.mkdir()
    script.write_text(
        textwrap.dedent("""
        from tests.cluster._targets import HealthWorker

        worker = HealthWorker()

        if __name__ == "__main__":
            worker.serve()
    """)
    )

    # Execute
    with LocalCluster({"sgd1": script}, name="seed", run_dir=run_dir, cwd=tmp_path) as cluster:
        answer = info(cluster, "sgd1")

    # Assert
    assert answer["name"] == "sgd1"
    assert answer["data_dir"] == str(tmp_path / "chimera_train_data" / "sgd1")


def test_the_exec_launcher_starts_workers_without_the_zygote(monkeypatch, run_dir):
    # Prepare
    monkeypatch.setenv("CHIMERA_LAUNCHER", "exec")
    cluster = LocalCluster([HealthWorker()] * 2, name="exec", run_dir=run_dir)

    # Execute
    with cluster:
        states = cluster.status()
        pids = list(cluster.pids.values())
        parents = {psutil.Process(pid).ppid() for pid in pids}

    # Assert
    assert states == dict.fromkeys(["worker1", "worker2"], WorkerState.UP)
    assert parents == {psutil.Process().pid}
    assert wait_until_gone(pids, timeout=0.5) == []
    assert not list(run_dir.glob("*.request"))


def test_start_launcher_returns_at_once_and_the_next_cluster_uses_its_zygote(run_dir):
    # Prepare
    shutdown_launcher()

    # Execute
    started = time.monotonic()
    start_launcher()
    returned_after = time.monotonic() - started
    zygote_pid = ZYGOTE.pid
    with LocalCluster([HealthWorker()], name="warm", run_dir=run_dir) as cluster:
        parent = psutil.Process(cluster.pids["worker1"]).ppid()

    # Assert
    assert returned_after < 0.5
    assert parent == zygote_pid


# --- failures ------------------------------------------------------------------------------


def test_a_killed_worker_shows_failed_and_restart_brings_it_back_on_the_same_port(run_dir):
    # Prepare
    with LocalCluster([HealthWorker()] * 2, name="faults", run_dir=run_dir) as cluster:
        endpoint = cluster.endpoints["worker2"]
        old_pid = cluster.pids["worker2"]

        # Execute
        cluster.kill("worker2")
        after_kill = cluster.status()
        shown = repr(cluster)
        cluster.restart("worker2")
        after_restart = cluster.status()

        # Assert
        assert after_kill == {"worker1": WorkerState.UP, "worker2": WorkerState.FAILED}
        assert shown == "LocalCluster('faults', 2 workers: 1 up, 1 failed)"
        assert after_restart == {"worker1": WorkerState.UP, "worker2": WorkerState.UP}
        assert cluster.endpoints["worker2"] == endpoint
        assert cluster.pids["worker2"] != old_pid
        assert is_gone(old_pid)


def test_a_killed_worker_refuses_connections_instead_of_hanging(run_dir):
    # Prepare
    with LocalCluster([HealthWorker()], name="refuse", run_dir=run_dir) as cluster:
        url = cluster.endpoints["worker1"] + "/health"

        # Execute
        cluster.kill("worker1")
        started = time.monotonic()
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, trust_env=False, timeout=5.0)

        # Assert
        assert time.monotonic() - started < 1.0


def test_a_frozen_worker_shows_failed_until_it_is_thawed(run_dir):
    # Prepare
    with LocalCluster([HealthWorker()], name="frozen", run_dir=run_dir) as cluster:
        # Execute
        cluster.kill("worker1", signal.SIGSTOP)
        frozen = cluster.status()
        cluster.kill("worker1", signal.SIGCONT)
        thawed = cluster.status()

    # Assert
    assert frozen == {"worker1": WorkerState.FAILED}
    assert thawed == {"worker1": WorkerState.UP}


def test_a_fixed_port_in_use_is_refused_before_any_worker_starts(run_dir):
    # Prepare
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    cluster = LocalCluster(
        [HealthWorker()] * 3, name="taken", run_dir=run_dir, ports={"worker3": taken}
    )
    workers_before = psutil.Process(ZYGOTE.pid).children() if ZYGOTE.pid else []

    # Execute
    try:
        with pytest.raises(ClusterError) as error:
            cluster.start()
    finally:
        holder.close()

    # Assert
    assert f"Port {taken} for worker 'worker3' is already in use" in str(error.value)
    assert "No worker was started" in str(error.value)
    workers_after = psutil.Process(ZYGOTE.pid).children() if ZYGOTE.pid else []
    assert workers_after == workers_before
    assert not list(run_dir.glob("*.log"))


def test_a_worker_whose_serve_raises_is_reported_with_its_log(run_dir):
    # Prepare
    workers = {"good": HealthWorker(), "bad": BrokenWorker()}
    cluster = LocalCluster(workers, name="broken", run_dir=run_dir)

    # Execute
    with pytest.raises(ClusterError) as error:
        cluster.start()

    # Assert
    message = str(error.value)
    assert "Worker 'bad' exited while starting" in message
    assert "RuntimeError: this worker is broken on purpose" in message
    assert "Nothing is left running" in message
    assert set(cluster.status().values()) == {WorkerState.STOPPED}
    assert repr(cluster) == "LocalCluster('broken', 2 workers: not started)"


def test_a_worker_without_a_health_route_fails_fast(run_dir):
    # Prepare
    cluster = LocalCluster([NoHealthWorker()], name="nohealth", run_dir=run_dir)
    started = time.monotonic()

    # Execute
    with pytest.raises(ClusterError) as error:
        cluster.start()

    # Assert
    assert "has no GET /health route" in str(error.value)
    assert time.monotonic() - started < 10


def test_a_worker_that_never_answers_times_out(tmp_path, run_dir):
    # Prepare: a script that holds its socket but never serves
    script = tmp_path / "sleepy.py"
    script.write_text("import time\nif __name__ == '__main__':\n    time.sleep(60)\n")
    cluster = LocalCluster({"sleepy": script}, name="sleepy", run_dir=run_dir, startup_timeout=1.0)

    # Execute
    with pytest.raises(ClusterError) as error:
        cluster.start()

    # Assert
    assert "did not answer GET /health within 1 s" in str(error.value)


OWNER = """
import json, signal, sys, time
from chimera_nb.cluster import LocalCluster
from chimera_nb.cluster._zygote import ZYGOTE
from tests.cluster._targets import HealthWorker

signal.signal(signal.SIGINT, signal.SIG_IGN)  # this owner survives Ctrl-C; do its workers?
cluster = LocalCluster([HealthWorker()] * 2, name="owned", run_dir=sys.argv[1]).start()
print(json.dumps({"workers": list(cluster.pids.values()), "zygote": ZYGOTE.pid,
                  "endpoints": cluster.endpoints}), flush=True)
time.sleep(120)
"""


def start_owner(run_dir: Path, launcher: str) -> tuple[subprocess.Popen, dict]:
    """A separate Python process that owns a two-worker cluster, as a notebook kernel does,
    in a process group of its own; returns it and what it printed about its cluster."""
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(run_dir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "CHIMERA_LAUNCHER": launcher},
        start_new_session=True,
    )
    line = owner.stdout.readline()
    if not line:
        owner.kill()
        owner.communicate()
        pytest.fail("the owner process failed to start its cluster")
    return owner, json.loads(line)


def stop_owner(owner: subprocess.Popen) -> None:
    owner.kill()
    owner.communicate()


@pytest.mark.parametrize("launcher", ["auto", "exec"])
def test_workers_die_when_the_owner_process_is_killed(tmp_path, launcher):
    # Prepare
    owner, started = start_owner(tmp_path / "run", launcher)
    launcher_pids = [started["zygote"]] if started["zygote"] else []

    # Execute: no chance to clean up
    owner.send_signal(signal.SIGKILL)
    stop_owner(owner)

    # Assert
    assert wait_until_gone([*launcher_pids, *started["workers"]], timeout=5.0) == []


def test_ctrl_c_in_the_owners_terminal_or_notebook_does_not_reach_the_workers(tmp_path):
    # Prepare
    owner, started = start_owner(tmp_path / "run", "auto")
    try:
        # Execute: Jupyter interrupts a kernel, and a terminal its foreground job, by
        # sending SIGINT to the whole process group
        os.killpg(owner.pid, signal.SIGINT)
        time.sleep(0.5)
        answers = [
            httpx.get(url + "/health", trust_env=False).status_code
            for url in started["endpoints"].values()
        ]
    finally:
        stop_owner(owner)

    # Assert
    assert answers == [200, 200]
    assert wait_until_gone(started["workers"]) == []


def test_a_closed_cluster_refuses_to_be_used_again(run_dir):
    # Prepare
    cluster = LocalCluster([HealthWorker()], name="used", run_dir=run_dir).start()
    cluster.close()

    # Execute / Assert
    for use in (cluster.start, lambda: cluster.endpoints, lambda: cluster.restart("worker1")):
        with pytest.raises(ClusterError, match="this cluster was closed; create a new one"):
            use()


def test_a_cluster_that_was_not_started_says_so():
    # Prepare
    cluster = LocalCluster([HealthWorker()], name="idle")

    # Execute / Assert
    with pytest.raises(ClusterError, match="has not started; call start()"):
        cluster.endpoints  # noqa: B018
    assert repr(cluster) == "LocalCluster('idle', 1 worker: not started)"


# --- options refused before anything starts -------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "options", "expected"),
    [
        ({"bad name!": HealthWorker()}, {}, "Worker name .bad name!. contains"),
        ([], {}, "workers is empty"),
        (HealthWorker(), {}, "for one worker, write \\[worker\\]"),
        ([object()], {}, "has no serve\\(\\) method"),
        ([Path("/nonexistent/worker.py")], {}, "there is no worker script"),
        ([HealthWorker()] * 2, {"ports": [5000]}, "ports has 1 entries for 2 workers"),
        ([HealthWorker()] * 2, {"ports": [5000, 5000]}, "Two workers cannot share a port"),
        ([HealthWorker()], {"ports": {"worker9": 5000}}, "not workers of this cluster"),
        ([HealthWorker()], {"ports": [70000]}, "from 0 \\(any free port\\) to 65535"),
        ([HealthWorker()], {"name": ""}, "The cluster name must be a non-empty string"),
        ([HealthWorker()], {"startup_timeout": 0}, "startup_timeout must be > 0"),
    ],
)
def test_conflicting_or_invalid_options_are_refused_at_construction(workers, options, expected):
    with pytest.raises(ConfigurationError, match=expected):
        LocalCluster(workers, **options)


@pytest.mark.parametrize("in_namespace", [True, False])
def test_a_worker_defined_in_main_is_refused_with_a_way_out(monkeypatch, run_dir, in_namespace):
    # Prepare: a class as a notebook cell defines it
    NotebookWorker = type("NotebookWorker", (HealthWorker,), {"__module__": "__main__"})
    if in_namespace:
        monkeypatch.setattr(
            sys.modules["__main__"], "NotebookWorker", NotebookWorker, raising=False
        )
    cluster = LocalCluster([NotebookWorker()], name="notebook", run_dir=run_dir)

    # Execute
    with pytest.raises(ConfigurationError) as error:
        cluster.start()

    # Assert
    assert "Move that class or function to a .py file" in str(error.value)


def test_sweep_kills_workers_of_dead_owners_and_removes_their_run_dirs(tmp_path):
    # Prepare: a run directory whose owner died, and a "worker" still marked as launched
    # for that owner (same command-line marker as the real launchers)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
            "chimera_nb.cluster._zygote",
            "--owner",
            str(dead.pid),
        ]
    )
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (tmp_path / f"lab-{dead.pid}-1").mkdir()  # a failed start leaves no workers.json
    (tmp_path / f"lab-{os.getpid()}-1").mkdir()  # a live owner's
    (tmp_path / "old-run").mkdir()
    (tmp_path / "old-run" / "workers.json").write_text(
        json.dumps(
            {
                "owner_pid": dead.pid,
                "zygote_pid": None,
                "workers": [{"name": "w1", "pid": stale.pid}, {"name": "w2", "pid": unrelated.pid}],
            }
        )
    )

    # Execute
    try:
        killed = sweep_stale_workers(tmp_path)
        stale.wait(timeout=5)
        unrelated_alive = unrelated.poll() is None
    finally:
        for process in (stale, unrelated):
            process.kill()
            process.wait()

    # Assert
    assert killed == [stale.pid]
    assert unrelated_alive
    assert not (tmp_path / "old-run").exists()
    assert not (tmp_path / f"lab-{dead.pid}-1").exists()
    assert (tmp_path / f"lab-{os.getpid()}-1").exists()


def test_a_slowed_worker_shows_slow_and_its_latency_in_the_time_log(tmp_path):
    # Prepare
    import numpy as np

    from chimera_nb import ParameterServerMaster, SGDWorker
    from chimera_nb.logs import read_time_log

    X = np.random.default_rng(0).normal(size=(30, 2))
    master = ParameterServerMaster("regressor", max_iter=3, tol=0.0)
    with LocalCluster.from_shards(
        SGDWorker("regressor"), X, X[:, 0], n_workers=2, run_dir=tmp_path
    ) as cluster:
        # Execute
        cluster.slow("worker2", 0.2)
        states = cluster.status()
        master.fit(cluster)
        cluster.restart("worker2")
        after_restart = cluster.status()
    # Assert
    calls = read_time_log(tmp_path)
    fit_steps = calls[calls["endpoint"].str.endswith("fit-step")]
    slow = fit_steps.groupby("worker")["latency_ms"].min()
    assert states == {"worker1": WorkerState.UP, "worker2": WorkerState.SLOW}
    assert slow["worker2"] >= 200 > slow["worker1"]
    assert after_restart["worker2"] is WorkerState.UP


def test_workers_listening_beyond_loopback_require_the_clusters_token():
    # Prepare
    import httpx
    import numpy as np

    from chimera_nb import ParameterServerMaster, SGDWorker

    X = np.random.default_rng(1).normal(size=(20, 2))
    with LocalCluster.from_shards(
        SGDWorker("regressor"), X, X[:, 1], n_workers=2, host="0.0.0.0"
    ) as cluster:
        url = cluster.endpoints["worker1"]
        # Execute
        anonymous = httpx.get(url + "/v1/chimera/sgd/statistics")
        master = ParameterServerMaster("regressor", max_iter=2).fit(cluster)
        cluster.slow("worker2", 0.0)
    # Assert
    assert cluster.token and len(cluster.token) >= 32
    assert anonymous.status_code == 401
    assert master.history_[-1].answered == ["worker1", "worker2"]


def test_loopback_workers_need_no_token():
    assert LocalCluster([HealthWorker()]).token is None
