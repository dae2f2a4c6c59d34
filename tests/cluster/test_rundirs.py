"""Run folders (``chimera_nb.cluster._rundirs``): private to their user, and never written
through a link that someone planted, as another user of a shared ``/tmp`` could."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

from chimera_nb._exceptions import ClusterError
from chimera_nb.cluster import ClusterState, LocalCluster
from chimera_nb.cluster._rundirs import open_private, runs_root, write_private

from ._targets import HealthWorker


@pytest.fixture
def tempdir(monkeypatch, tmp_path):
    """A temporary folder of this test's own, as ``tempfile.gettempdir()``."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def target(tmp_path):
    """A file a planted link points to, and what it holds: it must stay as it is."""
    path = tmp_path / "precious.txt"
    path.write_text("not yours to overwrite\n")
    return path, path.read_bytes(), path.stat().st_mtime_ns


def unchanged(target) -> bool:
    path, content, mtime = target
    return path.read_bytes() == content and path.stat().st_mtime_ns == mtime


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_default_run_folders_and_their_files_are_private_to_their_user(tempdir):
    # Prepare
    cluster = LocalCluster([HealthWorker()], name="private")
    # Execute
    with cluster:
        run_dir = cluster.run_dir
    # Assert
    assert run_dir.parent == tempdir / f"chimera-nb-{os.getuid()}" == runs_root()
    assert mode(run_dir.parent) == mode(run_dir) == 0o700
    assert mode(run_dir / "worker1.log") == mode(run_dir / "workers.json") == 0o600


def test_a_run_folder_root_that_is_a_planted_link_is_refused(tempdir, target):
    # Prepare
    (tempdir / f"chimera-nb-{os.getuid()}").symlink_to(target[0].parent)
    cluster = LocalCluster([HealthWorker()], name="planted")
    # Execute
    with pytest.raises(ClusterError) as raised:
        cluster.start()
    # Assert
    assert "is a symbolic link" in str(raised.value) and "TMPDIR" in str(raised.value)
    assert cluster.state is ClusterState.NEW
    assert unchanged(target) and sorted(os.listdir(target[0].parent)) == ["precious.txt", "tmp"]


def test_a_run_folder_root_others_may_write_in_is_refused(tempdir):
    # Prepare
    root = tempdir / f"chimera-nb-{os.getuid()}"
    root.mkdir()
    root.chmod(0o777)
    # Execute
    with pytest.raises(ClusterError) as raised:
        LocalCluster([HealthWorker()], name="open").start()
    # Assert
    assert "may be written by other users (mode drwxrwxrwx)" in str(raised.value)


def test_a_run_folder_root_of_another_user_is_refused(tempdir):
    # Prepare
    if os.geteuid() != 0:
        pytest.skip("making a folder of another user needs root")
    root = tempdir / f"chimera-nb-{os.getuid()}"
    root.mkdir(mode=0o700)
    os.chown(root, 65534, 65534)
    # Execute
    with pytest.raises(ClusterError) as raised:
        LocalCluster([HealthWorker()], name="theirs").start()
    # Assert
    assert f"belongs to user id 65534, not to you ({os.getuid()})" in str(raised.value)


def test_a_planted_worker_log_link_is_refused_and_its_target_left_alone(tmp_path, target):
    # Prepare: a run folder of the user's choosing, where someone planted a link
    run_dir = tmp_path / "shared-run"
    run_dir.mkdir()
    (run_dir / "worker1.log").symlink_to(target[0])
    cluster = LocalCluster([HealthWorker()], name="planted-log", run_dir=run_dir)
    # Execute
    with pytest.raises(ClusterError) as raised:
        cluster.start()
    # Assert
    assert f"{run_dir / 'worker1.log'} is a symbolic link" in str(raised.value)
    assert cluster.state is ClusterState.NEW
    assert unchanged(target)


def test_a_run_folder_the_user_names_is_made_private_when_missing(tmp_path):
    # Prepare
    run_dir = tmp_path / "runs" / "mine"
    # Execute
    with LocalCluster([HealthWorker()], name="named", run_dir=run_dir):
        made = mode(run_dir)
    # Assert
    assert made == 0o700


@pytest.mark.parametrize("name", ["workers.json.tmp", "worker1.pickle", "worker1.request"])
def test_new_files_refuse_a_planted_link_and_replace_a_file_of_ours(tmp_path, target, name):
    # Prepare
    planted, ours = tmp_path / name, tmp_path / f"old-{name}"
    planted.symlink_to(target[0])
    ours.write_bytes(b"from an earlier run")
    # Execute
    with pytest.raises(ClusterError) as raised:
        write_private(planted, b"secret")
    write_private(ours, b"secret")
    # Assert
    assert "is a link, or not a file of yours" in str(raised.value)
    assert unchanged(target)
    assert ours.read_bytes() == b"secret" and mode(ours) == 0o600


def test_a_log_with_a_second_name_is_refused_before_anything_is_written(tmp_path, target):
    # Prepare: a hard link is no symbolic link, but writes would reach the other name
    log = tmp_path / "worker1.log"
    os.link(target[0], log)
    # Execute
    with pytest.raises(ClusterError) as raised:
        open_private(log)
    # Assert
    assert "is not a file of yours with no other name" in str(raised.value)
    assert unchanged(target)
