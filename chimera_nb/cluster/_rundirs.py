"""Run folders: where a cluster keeps its workers' logs, its manifest and its pickled
workers, made and written so that no other user of the machine can read them, or make the
kit write somewhere else.

The temporary folder (``/tmp``) is shared by every user of a machine. Had the kit trusted
what it found there, another user could plant ``worker1.log -> /home/you/.bashrc`` (or a
link to a file of root's, for a kit run by root) and have the next cluster overwrite its
target. So:

* default run folders live in one folder per user, ``<tempdir>/chimera-nb-<uid>/``, made
  with mode 0700 and refused if it is a symbolic link, is not this user's, or others may
  write in it (:func:`private_root`); each run folder in it is made 0700 too;
* a folder you name (``run_dir=``) is your choice and used as it is; made 0700 if missing;
* every file the kit writes in a run folder is opened with ``O_NOFOLLOW`` and must be a
  regular file of this user with no other name (:func:`open_private`), or is made anew with
  ``O_EXCL`` (:func:`write_private`): a planted link is refused, never followed.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from .._exceptions import ClusterError

__all__ = ["make_run_dir", "open_private", "private_root", "runs_root", "write_private"]

_UID = os.getuid() if hasattr(os, "getuid") else None  # None: Windows, no owners to check
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def runs_root() -> Path:
    """``<tempdir>/chimera-nb-<uid>``: the folder of every default run folder and of the
    zygote's log (made and checked by :func:`private_root`)."""
    user = _UID if _UID is not None else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"chimera-nb-{user}"


def private_root() -> Path:
    """:func:`runs_root`, made with mode 0700 if missing, and checked to be private.

    Raises
    ------
    ClusterError
        It is a symbolic link, not a folder, another user's, or writable by others.
    """
    root = runs_root()
    try:
        root.mkdir(mode=0o700)
    except FileExistsError:
        pass
    _check_private(root, "The folder of chimera-nb's run folders")
    return root


def make_run_dir(path: Path, *, default: bool) -> None:
    """Make a run folder: a ``default`` one in :func:`private_root`, private as its root;
    one the user named, with mode 0700 if it does not exist yet (parents included)."""
    if not default:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return
    private_root()
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    _check_private(path, "The run folder")


def open_private(path: Path, *, append: bool = False) -> int:
    """A file descriptor for writing ``path``: made with mode 0600 if missing, emptied
    unless ``append``; never through a symbolic link, and only a regular file of this
    user with no other name (a hard link planted by someone else is refused too)."""
    flags = os.O_WRONLY | os.O_CREAT | _NO_FOLLOW | (os.O_APPEND if append else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as error:
        raise _refusal(path, error) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or not _ours(info):
            raise ClusterError(_refused(path, "is not a file of yours with no other name"))
        if not append:
            os.ftruncate(fd, 0)  # only now: truncating before the checks would harm a target
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file ``path`` (mode 0600) made with ``O_EXCL``: a file of
    this user already there is replaced; a link or someone else's file is refused."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(info.st_mode) or not _ours(info):
            raise ClusterError(_refused(path, "is a link, or not a file of yours"))
        path.unlink()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o600)
    except OSError as error:
        raise _refusal(path, error) from None
    with open(fd, "wb") as file:
        file.write(data)


def _check_private(folder: Path, what: str) -> None:
    info = os.lstat(folder)
    problem = None
    if stat.S_ISLNK(info.st_mode):
        problem = "is a symbolic link"
    elif not stat.S_ISDIR(info.st_mode):
        problem = "is not a folder"
    elif not _ours(info):
        problem = f"belongs to user id {info.st_uid}, not to you ({_UID})"
    elif info.st_mode & 0o022:
        problem = f"may be written by other users (mode {stat.filemode(info.st_mode)})"
    if problem is not None:
        raise ClusterError(
            f"{what}, {folder}, {problem}, so another user could make chimera-nb write where "
            f"they choose; it is not used. If it is yours, remove it ('rm -r {folder}') and "
            "start again; or set TMPDIR to a folder of your own, or pass run_dir=."
        )


def _ours(info: os.stat_result) -> bool:
    return _UID is None or info.st_uid == _UID


def _refusal(path: Path, error: OSError) -> Exception:
    """The error for a file that could not be opened: a link (``ELOOP``, ``EEXIST``) is a
    :class:`ClusterError`; anything else (no space, no permission) is raised as it is."""
    if error.errno in (errno.ELOOP, errno.EEXIST, errno.EMLINK):
        return ClusterError(_refused(path, "is a symbolic link (or appeared while it was made)"))
    return error


def _refused(path: Path, problem: str) -> str:
    return (
        f"{path} {problem}; chimera-nb does not write through links in run folders, so "
        "nothing was written to it. Remove it (or pick another run_dir=) and start again."
    )
