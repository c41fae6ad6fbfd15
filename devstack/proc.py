"""Running service processes as the right user, and waiting on real conditions."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from devstack.errors import DevstackError
from devstack.layout import Layout


def ensure_service_user(layout: Layout) -> None:
    """Create the unprivileged system user the services run as when we are root."""
    if layout.run_as is None:
        return
    try:
        pwd.getpwnam(layout.run_as)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", layout.run_as],
            check=True,
        )


def own(layout: Layout, *paths: Path) -> None:
    """Hand directories (recursively) to the service user."""
    if layout.run_as is None:
        return
    user = pwd.getpwnam(layout.run_as)
    for path in paths:
        for root, dirs, files in os.walk(path):
            os.chown(root, user.pw_uid, user.pw_gid)
            for name in dirs + files:
                os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def as_service(layout: Layout, argv: Sequence[str]) -> list[str]:
    if layout.run_as is None:
        return list(argv)
    return ["runuser", "-u", layout.run_as, "--", *argv]


def run(layout: Layout, argv: Sequence[str], *, env: dict[str, str] | None = None, what: str) -> str:
    """Run a short command as the service user; on failure, say what failed with its output."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(as_service(layout, argv), env=full_env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-15:]
        raise DevstackError(f"{what} failed (exit {result.returncode}): " + " | ".join(tail))
    return result.stdout


def spawn(
    layout: Layout, argv: Sequence[str], *, log_file: Path, pid_file: Path, env: dict[str, str] | None = None
) -> int:
    """Start a long-running service detached from this process, logging to a file."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            as_service(layout, argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    return proc.pid


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def stop_pid(pid_file: Path, *, name: str, timeout: float = 60.0) -> bool:
    """SIGTERM the process group and wait for it to exit; SIGKILL after the timeout."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and pid_alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if not pid_alive(pid):
            break
    if pid_alive(pid):
        raise DevstackError(f"{name} (pid {pid}) did not stop")
    pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_until(
    check: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    alive: Callable[[], bool] | None = None,
    log_file: Path | None = None,
) -> None:
    """Poll a real readiness check until it passes; fail fast if the process died."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        if check():
            return
        hint = f"; see {log_file}" if log_file else ""
        if alive is not None and not alive():
            raise DevstackError(f"{what}: the process exited during start-up{hint}")
        if time.monotonic() > deadline:
            raise DevstackError(f"{what}: not ready after {timeout:.0f} s{hint}")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise DevstackError(f"{name} not found; {hint}")
    return path
