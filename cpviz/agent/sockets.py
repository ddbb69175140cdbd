"""Where an embedded agent listens, and who may reach it: a Unix socket in a private directory.

The channel carries the application's stacks, task names and source lines, so nobody but its
own user may connect: the directory is the user's own with mode 0700 (``$XDG_RUNTIME_DIR/cpviz``,
else ``/tmp/cpviz-<uid>``), and a directory that others could read, write or swap is refused
rather than repaired behind the user's back. Each socket is named after its process's pid, so
``cpviz connect PID`` finds it. Both ends use this module; standard library only.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from cpviz.engine.errors import CpvizError

#: Environment variable naming the directory in place of the default (tests, unusual setups).
DIR_ENV = "CPVIZ_SOCKET_DIR"
SUFFIX = ".sock"


class UnsafeDirectory(CpvizError):
    """The socket directory is not private to this user; the message says how to fix it."""


def default_dir() -> Path:
    """The private directory this user's agents listen in."""
    chosen = os.environ.get(DIR_ENV)
    if chosen:
        return Path(chosen)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        try:
            if os.stat(runtime).st_uid == os.getuid():
                return Path(runtime) / "cpviz"
        except OSError:
            pass
    return Path("/tmp") / f"cpviz-{os.getuid()}"


def check_private(directory: Path) -> None:
    """UnsafeDirectory unless ``directory`` is a real directory, this user's, mode 0700."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        raise UnsafeDirectory(f"{directory} does not exist") from None
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectory(f"{directory} is not a directory (a symlink or a file stands "
                              "there); remove it and cpviz will make a private one")
    if info.st_uid != os.getuid():
        raise UnsafeDirectory(f"{directory} belongs to another user (uid {info.st_uid}); "
                              f"cpviz's sockets need a directory of your own (set {DIR_ENV})")
    if info.st_mode & 0o077:
        raise UnsafeDirectory(
            f"{directory} is open to other users (mode {stat.S_IMODE(info.st_mode):04o}); "
            f"make it private with 'chmod 700 {directory}'"
        )


def private_dir(directory: Path | None = None, *, create: bool = True) -> Path:
    """The socket directory, made if missing (mode 0700) and checked either way."""
    path = Path(directory) if directory is not None else default_dir()
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise UnsafeDirectory(f"cannot make {path}: {exc.strerror or exc}") from None
    check_private(path)
    return path


def socket_path(pid: int, directory: Path | None = None) -> Path:
    """Where process ``pid`` listens (the directory is not checked here)."""
    return (Path(directory) if directory is not None else default_dir()) / f"{pid}{SUFFIX}"


def pid_of(path: Path) -> int | None:
    """The pid a socket is named after, or None when it follows no agent's naming."""
    stem = path.name.removesuffix(SUFFIX)
    return int(stem) if path.name.endswith(SUFFIX) and stem.isdigit() else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def listening(directory: Path) -> list[Path]:
    """The sockets in ``directory`` whose process is still alive, oldest pid first."""
    try:
        names = sorted(directory.iterdir())
    except OSError:
        return []
    found = [p for p in names if (pid := pid_of(p)) is not None and alive(pid)]
    return sorted(found, key=lambda p: pid_of(p) or 0)


def sweep_stale(directory: Path) -> None:
    """Remove the sockets of applications that died without closing (SIGKILL, a default
    SIGTERM), so the directory lists only what can be connected to."""
    try:
        names = list(directory.iterdir())
    except OSError:
        return
    for path in names:
        pid = pid_of(path)
        if pid is not None and not alive(pid):
            with contextlib.suppress(OSError):
                path.unlink()
