"""Learning that a container exited: conmon's exit file, conmon's liveness, and recording it."""

from __future__ import annotations

import os
import time

from . import events
from .state import ContainerState as S

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .container import Container


def read_exit_file(path: str) -> tuple[int, float] | None:
    """(exit code, time the file was written) or None while the container runs."""
    try:
        with open(path) as f:
            text = f.read().strip()
            st = os.fstat(f.fileno())
    except FileNotFoundError:
        return None
    try:
        return int(text), st.st_mtime
    except ValueError:
        return -1, st.st_mtime


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def proc_stat(pid: int | str) -> tuple[str, list[str]] | None:
    """(command name, the fields after it: state, ppid, ..., [19] the start time) of /proc/<pid>/stat;
    None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    head, _, tail = stat.rpartition(")")
    fields = tail.split()
    return (head.partition("(")[2], fields) if fields else None


def process_status(pid: int) -> tuple[str, str] | None:
    """(command name, state letter) of `pid`, None when it is gone; a zombie ("Z") has exited
    already: its parent (or a lazy init) has not reaped it yet."""
    found = proc_stat(pid)
    return (found[0], found[1][0]) if found else None


def handle_exit_file(c: "Container") -> bool:
    """If the container's process exited, record it (Stopped, exit code); True when it changed."""
    st = c.st
    if st.state not in (S.RUNNING, S.PAUSED, S.STOPPING):
        return False
    result = read_exit_file(c.exit_file)
    if result is None:
        if st.conmon_pid and not pid_alive(st.conmon_pid):
            result = read_exit_file(c.exit_file)
            if result is None:
                mark_stopped(c, -1, time.time(), "conmon died without writing exit file, container exit code unknown")
                return True
        return False
    mark_stopped(c, result[0], result[1])
    return True


def mark_stopped(c: "Container", code: int, when: float, error: str = "") -> None:
    st = c.st
    st.state = S.STOPPED
    st.pid = 0
    st.conmon_pid = 0
    st.exit_code = code
    st.exited = True
    st.finished_at = max(when, st.started_at)
    st.oom_killed = os.path.exists(os.path.join(c.run_dir, "persist", "oom")) or os.path.exists(
        os.path.join(c.bundle, "oom"))
    if error:
        st.error = error
    c.rt.db.set_exit_code(c.id, code)
    events.container(c, "died", exit_code=code)
