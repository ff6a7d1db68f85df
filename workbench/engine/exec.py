"""Exec sessions (libpod's container_exec): a process spec derived from the container's, run
through conmon (attachable, detachable) or, when nothing needs attaching, by `runc exec` directly.

Every session is recorded in the store while it lives, so `inspect` shows its ID and a later
process can find it. Its files live in `<run dir>/exec/<session id>/` (conmon's bundle for it:
process spec, pid files, exit dir, attach socket, ctl fifo) and are removed when it ends.
"""

from __future__ import annotations

import json
import os
import signal as signals
import subprocess
import time

from . import cgroups
from . import events
from .errors import InvalidArgument, OCIRuntimeError, OCIRuntimeNotFound, classify_runtime_error
from .exits import pid_alive, read_exit_file
from .files import remove_tree
from .oci.spec import CAPABILITY_BITS
from .records import NamedTuple
from .state import REQUIRED, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Callable, Sequence

    from .attach import Session
    from .container import Container

#: How long the exit file may lag behind the end of a session's output (libpod waits 5 s).
EXIT_FILE_TIMEOUT = 5.0



class ExecResult(NamedTuple):
    """The outcome of `Container.exec`."""

    exit_code: int
    stdout: bytes
    stderr: bytes


class ExecRecord(Record):
    """One exec session as the store keeps it."""

    _DEFAULTS = {
        "id": REQUIRED, "container_id": REQUIRED, "command": REQUIRED, "tty": False, "stdin": False,
        "env": [], "user": "", "workdir": "", "privileged": False, "detach": False, "state": "created",
        "pid": 0, "conmon_pid": 0, "exit_code": -1, "started_at": 0.0, "finished_at": 0.0,
    }
    __slots__ = tuple(_DEFAULTS)
    id: str
    container_id: str
    command: list[str]
    tty: bool
    stdin: bool
    env: list[str]
    user: str
    workdir: str
    privileged: bool
    detach: bool
    state: str
    pid: int
    conmon_pid: int
    exit_code: int
    started_at: float
    finished_at: float


# -- creating a session -------------------------------------------------------------------
def session_dir(c: "Container", session_id: str) -> str:
    return os.path.join(c.run_dir, "exec", session_id)


def _exit_file(c: "Container", session_id: str) -> str:
    return os.path.join(session_dir(c, session_id), "exit", c.id)


def _env_list(env: dict[str, str] | Sequence[str] | None) -> list[str]:
    if env is None:
        return []
    items = [f"{k}={v}" for k, v in env.items()] if isinstance(env, dict) else list(env)
    for item in items:
        if not isinstance(item, str) or not item.partition("=")[0]:
            raise InvalidArgument(f"invalid environment variable {item!r}: use NAME=value")
    return items


def create(c: "Container", command: Sequence[str], *, tty: bool, stdin: bool, env, user: str | None,
           workdir: str | None, privileged: bool, detach: bool) -> ExecRecord:
    """Record a session and write its process spec (container lock held, state checked)."""
    if isinstance(command, str) or not command or not all(isinstance(a, str) for a in command):
        raise InvalidArgument("exec needs a command: a non-empty list of strings")
    if workdir and not workdir.startswith("/"):
        raise InvalidArgument(f'workdir "{workdir}" must be an absolute path')
    rec = ExecRecord(id=os.urandom(32).hex(), container_id=c.id, command=list(command), tty=tty, stdin=stdin,
                     env=_env_list(env), user=user or "", workdir=workdir or "", privileged=privileged,
                     detach=detach)
    spec = _process_spec(c, rec)
    path = session_dir(c, rec.id)
    os.makedirs(os.path.join(path, "exit"), mode=0o700)
    try:
        with open(os.path.join(path, "process.json"), "w") as f:
            f.write(json.dumps(spec))  # dumps uses the C encoder; dump(f) encodes chunk by chunk
        rec.state, rec.started_at = "running", time.time()
        c.rt.db.add_exec_session(rec.id, c.id, rec.to_json())
    except BaseException:
        remove_tree(path)
        raise
    return rec


def _process_spec(c: "Container", rec: ExecRecord) -> dict:
    """A deep copy of the container's process with the session's command, user, env, cwd and caps."""
    with open(os.path.join(c.bundle, "config.json")) as f:
        process = json.load(f)["process"]
    same_user = not rec.user or rec.user == c.config.user
    if same_user:
        # Resolved at init from the container's own account files; HOME is already in its env.
        user = process["user"]
        uid, gid, extra_gids = user["uid"], user["gid"], list(user.get("additionalGids") or [])
        env = _merge_env(process.get("env") or [], rec.env)
    else:
        from .users import resolve_user

        found = resolve_user(c.st.mountpoint, rec.user)
        uid, gid, extra_gids = found.uid, found.gid, list(found.additional_gids)
        env = _merge_env(c.config.env, rec.env)
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={found.home}")
    cwd = rec.workdir or process.get("cwd") or "/"
    if rec.workdir:
        _check_workdir(c, cwd)
    caps = dict(process.get("capabilities") or {})
    if rec.privileged:
        caps["bounding"] = _all_capabilities()
    caps["inheritable"] = []
    if uid == 0:
        caps["effective"] = caps["permitted"] = list(caps.get("bounding", []))
    elif same_user:
        effective = list(caps.get("effective", []))
        caps.update(effective=effective, permitted=effective, inheritable=effective, ambient=effective)
    else:
        caps["effective"] = caps["permitted"] = []
    process.update(args=list(rec.command), terminal=rec.tty, env=env, cwd=cwd, capabilities=caps)
    process["user"] = {"uid": uid, "gid": gid, "umask": process.get("user", {}).get("umask", 0o022),
                       "additionalGids": [gid, *(g for g in extra_gids if g != gid)]}
    if not rec.tty:
        process.pop("consoleSize", None)
    return process


def _check_workdir(c: "Container", cwd: str) -> None:
    """The workdir must be a directory inside the container (resolved there, never on the host)."""
    from .storage.rootpath import UnsafePath, open_in_root

    root_fd = os.open(c.st.mountpoint, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.close(open_in_root(root_fd, cwd, os.O_PATH | os.O_DIRECTORY, follow=True))
    except FileNotFoundError:
        # Podman exits 127 here (runc cannot chdir), 126 when the path is not a directory.
        raise OCIRuntimeNotFound(f'workdir "{cwd}" does not exist in container {c.id[:12]}') from None
    except (OSError, UnsafePath) as exc:
        raise OCIRuntimeError(f'workdir "{cwd}" in container {c.id[:12]} is not a usable directory: '
                              f'{getattr(exc, "strerror", None) or exc}') from None
    finally:
        os.close(root_fd)


def _merge_env(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    merged = {e.partition("=")[0]: e for e in base}
    merged.update((e.partition("=")[0], e) for e in extra)
    return list(merged.values())


def _all_capabilities() -> list[str]:
    """Every capability in our own bounding set, as Podman gives privileged processes."""
    try:
        with open("/proc/self/status") as f:
            mask = int(next(line.split()[1] for line in f if line.startswith("CapBnd:")), 16)
    except (OSError, StopIteration, ValueError):
        mask = (1 << len(CAPABILITY_BITS)) - 1
    return [f"CAP_{name}" for bit, name in enumerate(CAPABILITY_BITS) if mask >> bit & 1]


# -- running it through conmon ----------------------------------------------------------------
class _ExecProcess:
    """The process behind a Session: exit file, signals, and the store record."""

    def __init__(self, c: "Container", rec: ExecRecord, sync: "socket.socket | None"):
        self.c, self.rec, self.sync = c, rec, sync

    def poll(self) -> int | None:
        result = read_exit_file(_exit_file(self.c, self.rec.id))
        if result is not None:
            return result[0]
        if not pid_alive(self.rec.conmon_pid):
            result = read_exit_file(_exit_file(self.c, self.rec.id))
            return -1 if result is None else result[0]
        return None

    def wait(self, timeout: float | None) -> int:
        limit = EXIT_FILE_TIMEOUT if timeout is None else max(timeout, EXIT_FILE_TIMEOUT)
        deadline = time.monotonic() + limit
        while (code := self.poll()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"exec session {self.rec.id[:12]} did not report its exit code")
            if self.sync is not None:
                import select

                ready, _, _ = select.select([self.sync], [], [], min(remaining, 0.5))
                if ready and not self.sync.recv(4096):
                    self.sync.close()
                    self.sync = None  # conmon is gone; the exit file or its death tells the rest
            else:
                time.sleep(min(remaining, 0.01))
        return code

    def signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.rec.pid, sig)
            except ProcessLookupError:
                pass

    def release(self) -> None:
        if self.sync is not None:
            self.sync.close()
            self.sync = None
        code = self.poll()
        finish(self.c, self.rec, -1 if code is None else code, keep_record=self.rec.detach)


def _launch(c: "Container", rec: ExecRecord):
    from .oci.conmon import ConmonLaunch

    path = session_dir(c, rec.id)
    return ConmonLaunch(
        conmon=c.rt.conmon_path, runtime=c.rt.oci.path, runtime_root=c.rt.oci.root, ctr_id=c.id,
        name=c.config.name, bundle=path, run_dir=path, exit_dir=os.path.join(path, "exit"), log_path=None,
        terminal=rec.tty, stdin=rec.stdin and not rec.detach, session_id=rec.id,
        exec_spec=os.path.join(path, "process.json"), place=cgroups.place_conmon,
    )


def start(c: "Container", rec: ExecRecord, *, size: tuple[int, int] | None = None,
          on_output: Callable[[str, bytes], None] | None = None) -> "Session | None":
    """Start a recorded session through conmon: attached (a Session) or detached (None)."""
    from .attach import Session, connect, write_resize
    from .oci import conmon

    path = session_dir(c, rec.id)
    attached: list["socket.socket"] = []

    def before_start() -> None:
        if not rec.detach:
            attached.append(connect(os.path.join(path, "attach")))
        if size is not None and rec.tty:
            write_resize(os.path.join(path, "ctl"), *size)

    try:
        pid, conmon_pid, sync = conmon.start_exec(_launch(c, rec), before_start)
    except BaseException:
        for sock in attached:
            sock.close()
        finish(c, rec, -1, keep_record=False)
        raise
    rec.pid, rec.conmon_pid = pid, conmon_pid
    c.rt.db.save_exec_session(rec.id, rec.to_json())
    events.container(c, "exec", execID=rec.id)
    if rec.detach:
        sync.close()
        return None
    return Session(attached[0], _ExecProcess(c, rec, sync), session_id=rec.id, pid=pid, tty=rec.tty,
                   stdin=rec.stdin, ctl_path=os.path.join(path, "ctl"), on_output=on_output)


# -- running it with `runc exec` directly ------------------------------------------------------
def run_direct(c: "Container", rec: ExecRecord, *, input: bytes | None = None,
               capture: bool = True, timeout: float | None = None) -> ExecResult:
    """`runc exec` in the foreground: no conmon, no attach socket, the fastest path for a command
    whose output is captured (or, with capture=False, written straight to this process's stdio).
    A captured command still running after `timeout` seconds is killed: TimeoutError."""
    from .oci.runc import logged_error

    path = session_dir(c, rec.id)
    oci = c.rt.oci
    log_path = os.path.join(path, "oci-log")
    pidfile = os.path.join(path, "exec_pid")
    argv = [oci.path, "--root", oci.root, "--log", log_path, "--log-format", "json", "exec",
            "--pid-file", pidfile, "--process", os.path.join(path, "process.json"), c.id]
    code = -1
    try:
        proc = subprocess.Popen(
            argv, env=_RUNTIME_ENV, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE)
        events.container(c, "exec", execID=rec.id)
        try:
            if capture:
                stdout, stderr = proc.communicate(input, timeout=timeout)
            else:
                stdout, stderr = b"", _relay_stderr(proc, log_path)
        except BaseException as exc:
            _kill_from_pidfile(pidfile)
            proc.kill()
            proc.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise TimeoutError(f"the command ran longer than {timeout:g} s and was killed") from None
            raise
        code = proc.returncode
        error = logged_error(log_path) if code == 255 else None
        if error:
            raise classify_runtime_error(f"{oci.name}: {error}")
        return ExecResult(code, stdout, stderr)
    finally:
        finish(c, rec, code, keep_record=False)


_RUNTIME_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "XDG_RUNTIME_DIR": ""}


def _relay_stderr(proc: subprocess.Popen, log_path: str) -> bytes:
    """Copy the process's stderr to ours as it comes, minus runc's own failure message."""
    import sys

    from .oci.runc import logged_error

    assert proc.stderr is not None
    out = sys.stderr.buffer
    while chunk := os.read(proc.stderr.fileno(), 65536):
        if chunk.startswith(b"exec failed: ") and logged_error(log_path):
            continue
        out.write(chunk)
        out.flush()
    proc.stderr.close()
    proc.wait()
    return b""


def _kill_from_pidfile(pidfile: str) -> None:
    """SIGKILL the session's process and what it started (a shell's children would live on)."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    for victim in [pid, *_descendants(pid)]:
        try:
            os.kill(victim, signals.SIGKILL)
        except OSError:
            pass


def _descendants(pid: int) -> list[int]:
    """The processes below `pid`, from each process's parent in /proc."""
    from .exits import proc_stat

    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        found = proc_stat(entry)
        if found:
            children.setdefault(int(found[1][1]), []).append(int(entry))  # by parent pid
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


# -- ending sessions -----------------------------------------------------------------------------
def finish(c: "Container", rec: ExecRecord, code: int, *, keep_record: bool) -> None:
    """Record the exit code, remove the session's files, and drop the record unless kept."""
    if rec.state == "running":
        events.container(c, "exec_died", exit_code=code, execID=rec.id)
    remove_tree(session_dir(c, rec.id))
    if keep_record:
        rec.state, rec.exit_code, rec.finished_at = "stopped", code, time.time()
        rec.pid = rec.conmon_pid = 0
        c.rt.db.save_exec_session(rec.id, rec.to_json())
    else:
        c.rt.db.remove_exec_session(rec.id)


def records(c: "Container") -> list[ExecRecord]:
    """The container's sessions, those whose process has ended marked stopped (and their files removed)."""
    out = []
    for data in c.rt.db.exec_sessions(c.id):
        rec = ExecRecord.from_json(data)
        if rec.state == "running":
            code = _ExecProcess(c, rec, None).poll() if rec.conmon_pid else (
                None if os.path.isdir(session_dir(c, rec.id)) else -1)
            if code is not None:
                finish(c, rec, code, keep_record=True)
        out.append(rec)
    return out


def remove_all(c: "Container") -> None:
    """At container cleanup: kill what still runs, drop every session's files and record."""
    for data in c.rt.db.exec_sessions(c.id):
        rec = ExecRecord.from_json(data)
        if rec.state == "running" and rec.pid and pid_alive(rec.conmon_pid):
            try:
                os.kill(rec.pid, signals.SIGKILL)
            except ProcessLookupError:
                pass
        finish(c, rec, rec.exit_code, keep_record=False)
    remove_tree(os.path.join(c.run_dir, "exec"))



def inspect(c: "Container", rec: ExecRecord) -> dict:
    """Podman's exec inspect shape."""
    return {
        "ID": rec.id,
        "Running": rec.state == "running",
        "ExitCode": rec.exit_code if rec.state == "stopped" else 0,
        "ProcessConfig": {"arguments": rec.command[1:], "entrypoint": rec.command[0], "privileged": rec.privileged,
                          "tty": rec.tty, "user": rec.user},
        "OpenStdin": rec.stdin,
        "OpenStderr": not rec.detach,
        "OpenStdout": not rec.detach,
        "CanRemove": rec.state != "running",
        "ContainerID": c.id,
        "DetachKeys": "",
        "Pid": rec.pid,
    }
