"""Checkpoints of a parameter server's fit: a master process killed mid-fit (SIGKILL) resumes
from its last checkpoint to the weights of an uninterrupted fit; checkpoints are written
whole, privately, and a wrong one is refused with a message naming what differs."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_regression

from chimera_nb import ConfigurationError, LocalCluster, ParameterServerMaster, SGDWorker
from chimera_nb.auth import MASTER_TOKEN_VARIABLE
from chimera_nb.logs import STATUS_LOG
from chimera_nb.masters import read_checkpoint, write_checkpoint
from tests.conftest import REPO_ROOT

ROLE = ParameterServerMaster.role
#: The fit the tests interrupt: 60 updates of full-batch (or mini-batch) gradient descent.
PARAMETERS = {"model_type": "regressor", "max_iter": 60, "tol": 0.0, "random_state": 11}

#: The master process the acceptance test kills: a fit on workers given by URL, slowed to
#: 20 ms a round so that the test can kill it between two checkpoints.
MASTER_SCRIPT = """
import json, sys
from chimera_nb import ParameterServerMaster
endpoints, parameters = json.loads(sys.argv[1]), json.loads(sys.argv[2])
master = ParameterServerMaster(**parameters)
master.pacer.slow_motion(0.02)
master.fit(endpoints)
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three SGD workers on unequal shards of a small regression problem; their run folder
    holds the status log."""
    X, y = make_regression(n_samples=600, n_features=6, noise=5.0, random_state=0)
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(6)])
    with LocalCluster.from_shards(
        SGDWorker("regressor"),
        X,
        y,
        n_workers=3,
        proportions=[0.5, 0.3, 0.2],
        name="checkpoints",
        run_dir=tmp_path_factory.mktemp("run"),
    ) as cluster:
        yield cluster


def wait_for_checkpoint(folder, process, round_number: int) -> int:
    """Wait (at most 30 s) until the master process has checkpointed ``round_number`` or a
    later round; return the round of that checkpoint."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the master exited: {process.stderr.read().decode()}"
        if (folder / f"{ROLE}.npz").exists():
            done = read_checkpoint(folder, ROLE).round_number
            if done >= round_number:
                return done
        time.sleep(0.005)
    raise AssertionError(f"no checkpoint of round {round_number} in 30 s")


@pytest.mark.parametrize("batch_size", [None, 32], ids=["full-batch", "mini-batch"])
def test_a_master_killed_mid_fit_resumes_to_the_uninterrupted_weights(
    cluster, tmp_path, batch_size
):
    # Prepare: the uninterrupted fit, and a master process that checkpoints every 5 rounds
    parameters = {**PARAMETERS, "batch_size": batch_size}
    expected = ParameterServerMaster(**parameters).fit(cluster)
    folder = tmp_path / "checkpoints"
    arguments = [json.dumps(dict(cluster.endpoints))]
    arguments.append(
        json.dumps({**parameters, "checkpoint_every": 5, "checkpoint_dir": str(folder)})
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if cluster.token:
        environment[MASTER_TOKEN_VARIABLE] = cluster.token
    process = subprocess.Popen(
        [sys.executable, "-c", MASTER_SCRIPT, *arguments],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        killed_after = wait_for_checkpoint(folder, process, 10)
        process.send_signal(signal.SIGKILL)  # the master crashes: no cleanup, no last words
    finally:
        process.kill()
        process.wait(timeout=10)
        process.stderr.close()
    # Execute
    master = ParameterServerMaster.from_checkpoint(folder)
    resumed_at = len(master.history_)
    master.fit(cluster)
    # Assert
    assert 10 <= resumed_at == killed_after < 60
    np.testing.assert_allclose(master.coef_, expected.coef_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(master.intercept_, expected.intercept_, rtol=1e-12, atol=1e-12)
    assert [record.round_number for record in master.history_] == list(range(1, 62))
    np.testing.assert_allclose(master.loss_curve_, expected.loss_curve_, rtol=1e-12)
    assert master.worker_seeds_ == expected.worker_seeds_
    status_log = (cluster.run_dir / STATUS_LOG).read_text()
    assert f"resumed from checkpoint {folder / f'{ROLE}.npz'} at round {resumed_at}" in status_log


@pytest.fixture(scope="module")
def checkpoint(cluster, tmp_path_factory):
    """A real checkpoint: of round 10 of a fit of 10 updates."""
    folder = tmp_path_factory.mktemp("saved")
    master = ParameterServerMaster(max_iter=10, tol=0.0, checkpoint_every=5, checkpoint_dir=folder)
    master.fit(cluster)
    return read_checkpoint(folder, ROLE)


@pytest.mark.parametrize(("argument", "value"), [("checkpoint_every", 0), ("checkpoint_dir", 5)])
def test_bad_checkpoint_arguments_are_refused_before_any_worker_is_called(argument, value):
    # Prepare
    master = ParameterServerMaster(**{argument: value})
    # Execute / Assert
    with pytest.raises(ConfigurationError, match=f"{argument} must be"):
        master.fit({"nobody": "http://127.0.0.1:9"})


def test_checkpoints_are_private_and_replaced_whole_while_read(checkpoint, tmp_path):
    # Prepare: a reader loading the checkpoint again and again while it is rewritten
    folder = tmp_path / "private"
    write_checkpoint(checkpoint, folder)
    failures, done = [], threading.Event()

    def read_while_written() -> None:
        while not done.is_set():
            try:
                assert read_checkpoint(folder, ROLE).round_number in (10, 11)
            except Exception as error:  # a half-written file would land here
                failures.append(error)

    reader = threading.Thread(target=read_while_written)
    reader.start()
    # Execute
    try:
        for _ in range(100):
            write_checkpoint(dataclasses.replace(checkpoint, round_number=11), folder)
    finally:
        done.set()
        reader.join(timeout=10)
    # Assert
    assert failures == []
    assert os.listdir(folder) == [f"{ROLE}.npz"]  # no temporary file left behind
    assert os.stat(folder).st_mode & 0o777 == 0o700
    assert os.stat(folder / f"{ROLE}.npz").st_mode & 0o777 == 0o600


def test_a_failed_write_leaves_the_previous_checkpoint_whole(checkpoint, tmp_path):
    # Prepare
    write_checkpoint(checkpoint, tmp_path)
    broken_model = dataclasses.replace(checkpoint.model, weights=np.array([["not a number"]]))
    # Execute
    with pytest.raises(ValueError):
        write_checkpoint(dataclasses.replace(checkpoint, model=broken_model), tmp_path)
    # Assert
    assert os.listdir(tmp_path) == [f"{ROLE}.npz"]
    np.testing.assert_array_equal(
        read_checkpoint(tmp_path, ROLE).model.weights, checkpoint.model.weights
    )


def test_a_symlinked_checkpoint_folder_is_refused(checkpoint, tmp_path):
    # Prepare
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    # Execute
    with pytest.raises(ConfigurationError, match="is a symbolic link") as error:
        write_checkpoint(checkpoint, tmp_path / "link")
    # Assert
    assert "checkpoint_dir=" in str(error.value)
    assert os.listdir(target) == []


def test_a_cut_short_checkpoint_is_refused_clearly(checkpoint, tmp_path):
    # Prepare
    path = write_checkpoint(checkpoint, tmp_path)
    path.write_bytes(path.read_bytes()[:200])
    # Execute / Assert
    with pytest.raises(ConfigurationError, match="is not a readable checkpoint"):
        ParameterServerMaster.from_checkpoint(path)


def test_a_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(ConfigurationError, match="checkpoint_every=k"):
        ParameterServerMaster.from_checkpoint(tmp_path)


def test_a_checkpoint_of_another_master_or_format_is_refused(checkpoint, tmp_path):
    # Prepare
    other_role = write_checkpoint(
        dataclasses.replace(checkpoint, role="AggregationMaster"), tmp_path
    )
    # Execute / Assert
    with pytest.raises(ConfigurationError, match="written by a AggregationMaster"):
        ParameterServerMaster.from_checkpoint(other_role)


def test_resuming_with_another_model_type_names_it(checkpoint, tmp_path):
    # Prepare
    write_checkpoint(checkpoint, tmp_path)
    # Execute / Assert
    with pytest.raises(ConfigurationError, match="holds a regressor's weights.*classifier"):
        ParameterServerMaster.from_checkpoint(tmp_path, model_type="classifier")


def test_resuming_on_workers_with_other_columns_names_the_columns(cluster, checkpoint, tmp_path):
    # Prepare: a checkpoint of a model fitted on other columns
    renamed = dataclasses.replace(checkpoint.model, columns=["a", "x1", "x2", "x3", "x4", "x5"])
    write_checkpoint(dataclasses.replace(checkpoint, model=renamed), tmp_path)
    master = ParameterServerMaster.from_checkpoint(tmp_path, checkpoint_every=None)
    # Execute
    with pytest.raises(ConfigurationError) as error:
        master.fit(cluster)
    # Assert
    assert "missing ['a'], extra ['x0']" in str(error.value)
    assert master.coef_.shape == (6,)  # the checkpoint's model is kept, as a failed fit does


def test_a_resumed_fit_keeps_checkpointing_and_the_next_fit_starts_afresh(
    cluster, checkpoint, tmp_path
):
    # Prepare
    write_checkpoint(checkpoint, tmp_path)
    master = ParameterServerMaster.from_checkpoint(tmp_path, max_iter=20, checkpoint_dir=tmp_path)
    # Execute
    master.fit(cluster)
    resumed = [record.round_number for record in master.history_]
    resumed_seeds = master.worker_seeds_
    master.fit(cluster)
    # Assert
    assert resumed == list(range(1, 22))
    assert resumed_seeds == checkpoint.worker_seeds  # random_state=None: the saved ones
    assert read_checkpoint(tmp_path, ROLE).round_number == 20
    assert [record.round_number for record in master.history_] == list(range(1, 22))
    assert master.history_[0].latency_ms != checkpoint.history[0].latency_ms  # a new fit


def test_an_ssp_fit_resumes_from_its_last_closed_clock(cluster, tmp_path):
    # Prepare: SSP(0) checkpoints at clock closes; its last checkpoint holds round 10 of 12
    options = dict(max_iter=12, tol=0.0, consistency="ssp", staleness=0)
    ParameterServerMaster(checkpoint_every=5, checkpoint_dir=tmp_path, **options).fit(cluster)
    uninterrupted = ParameterServerMaster(**options).fit(cluster)

    # Execute
    resumed = ParameterServerMaster.from_checkpoint(tmp_path)
    resumed.fit(cluster)

    # Assert: the resumed fit computed clocks 11 and 12 only, and ends where BSP would
    assert [update.clock for update in resumed.updates_][:1] == [11]
    assert len(resumed.updates_) == 2 * len(cluster.names)
    assert [record.round_number for record in resumed.history_] == list(range(1, 14))
    np.testing.assert_allclose(resumed.coef_, uninterrupted.coef_, rtol=1e-12, atol=0)
