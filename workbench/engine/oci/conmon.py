"""Launching conmon the way libpod does: sync and start pipes, double fork, exit files, k8s-file log."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import time

from .. import logger
from ..errors import OCIRuntimeError, WorkbenchError, classify_runtime_error
from ..files import remove_tree
from .runc import logged_error, which

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

log = logger.get(__name__)

#: libpod's define.ContainerCreateTimeout.
CREATE_TIMEOUT = 240.0
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Files conmon leaves in a bundle; removed before a new create and after cleanup.
CONMON_FILES = ("attach", "ctl", "winsz", "oom")


def find_conmon() -> str:
    path = which("conmon")
    if not path:
        raise WorkbenchError("conmon not found: install it (apt-get install conmon)")
    return path


class ConmonLaunch:
    """Everything conmon needs to create one container, or to run one exec session in it.

    For a container, `run_dir` holds the pid files, the runtime's log and the persist dir; for an
    exec session (`exec_spec` set) it is the session's own directory, which is also its bundle.
    `log_path` None means no log ("-l none"), as for exec sessions; above `log_size_max` bytes
    (0: no limit) conmon empties the log and goes on writing.
    """

    def __init__(self, *, conmon: str, runtime: str, runtime_root: str, ctr_id: str, name: str, bundle: str,
                 run_dir: str, exit_dir: str, log_path: str | None, exit_command: list[str] | None = None,
                 terminal: bool = False, stdin: bool = False, log_level: str = "error", session_id: str = "",
                 exec_spec: str = "", place: Callable[[int], None] | None = None, log_size_max: int = 0):
        self.conmon, self.runtime, self.runtime_root = conmon, runtime, runtime_root
        self.ctr_id, self.name, self.bundle, self.run_dir, self.exit_dir = ctr_id, name, bundle, run_dir, exit_dir
        self.log_path, self.log_size_max, self.exit_command = log_path, log_size_max, list(exit_command or [])
        self.terminal, self.stdin, self.log_level = terminal, stdin, log_level
        self.session_id, self.exec_spec = session_id, exec_spec
        self.place = place  # called with conmon's pid before it may start: put it into its cgroup

    @property
    def pidfile(self) -> str:
        return os.path.join(self.run_dir, "exec_pid" if self.exec_spec else "pidfile")

    @property
    def conmon_pidfile(self) -> str:
        return os.path.join(self.run_dir, "conmon.pid")

    @property
    def oci_log(self) -> str:
        return os.path.join(self.run_dir, "oci-log")

    @property
    def persist_dir(self) -> str:
        return os.path.join(self.run_dir, "persist")

    def argv(self) -> list[str]:
        log_spec = f"k8s-file:{self.log_path}" if self.log_path else "none"
        args = [
            self.conmon, "--api-version", "1", "-c", self.ctr_id, "-u", self.session_id or self.ctr_id,
            "-r", self.runtime, "-b", self.bundle, "-p", self.pidfile, "-n", self.name,
            "--exit-dir", self.exit_dir, "--persist-dir", self.persist_dir, "--full-attach", "-l", log_spec,
            "--log-level", self.log_level,
            "--runtime-arg", "--root", "--runtime-arg", self.runtime_root,
            "--runtime-arg", "--log-format=json", "--runtime-arg", "--log", f"--runtime-arg={self.oci_log}",
        ]
        if self.exec_spec:
            # Exec may take both: -i lets a half-closed attach client close the process's stdin.
            args += ["-t"] * self.terminal + ["-i"] * self.stdin
            args += ["-e", "--exec-attach", "--exec-process-spec", self.exec_spec]
        elif self.terminal:
            args.append("-t")  # never with -i: a detaching client would close the pty (libpod-notes 4)
        elif self.stdin:
            args.append("-i")
        if self.log_path and self.log_size_max > 0:
            args += ["--log-size-max", str(self.log_size_max)]
        args += ["--conmon-pidfile", self.conmon_pidfile]
        if self.exit_command:
            args += ["--exit-command", self.exit_command[0]]
            for arg in self.exit_command[1:]:
                args += ["--exit-command-arg", arg]
        return args


def remove_conmon_files(bundle: str, run_dir: str, exit_file: str) -> None:
    """libpod's removeConmonFiles: stale sockets, fifos, pid and exit files."""
    for path in [*(os.path.join(bundle, n) for n in CONMON_FILES),
                 *(os.path.join(run_dir, n) for n in ("pidfile", "conmon.pid", "oci-log")),
                 exit_file]:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    remove_tree(os.path.join(run_dir, "persist"))


class _Pipes:
    """The socketpairs conmon reads its fd numbers from: sync, start and (exec) attach."""

    def __init__(self, attach: bool):
        names = ("_OCI_SYNCPIPE", "_OCI_STARTPIPE") + (("_OCI_ATTACHPIPE",) if attach else ())
        self.pairs = {name: socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for name in names}

    def parent(self, name: str) -> socket.socket:
        return self.pairs[name][0]

    def child_fds(self) -> dict[str, int]:
        return {name: pair[1].fileno() for name, pair in self.pairs.items()}

    def close_children(self) -> None:
        for _, child in self.pairs.values():
            child.close()

    def close(self, keep: socket.socket | None = None) -> None:
        for pair in self.pairs.values():
            for sock in pair:
                if sock is not keep:
                    sock.close()


def _spawn(launch: ConmonLaunch, pipes: _Pipes) -> int:
    """Start conmon and let it double-fork; returns conmon's pid once the intermediate process has
    exited, with conmon moved into its cgroup (`launch.place`).

    The move happens while conmon already runs the runtime, to overlap the cgroup writes (slow on
    v1) with `runc create`: a child conmon forked before the move stays where it was started,
    which is harmless: the runtime puts the container's processes into their own cgroup, and
    conmon's later children (the exit command) follow conmon.
    """
    os.makedirs(launch.persist_dir, exist_ok=True)
    env = {"PATH": _PATH, "XDG_RUNTIME_DIR": ""}
    env.update((name, str(fd)) for name, fd in pipes.child_fds().items())
    for key in ("LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH"):  # PYTHONPATH: the exit command imports us
        if key in os.environ:
            env[key] = os.environ[key]
    proc = subprocess.Popen(
        launch.argv(), cwd=launch.run_dir if launch.exec_spec else launch.bundle, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        pass_fds=tuple(pipes.child_fds().values()), start_new_session=True,
    )
    pipes.close_children()
    pipes.parent("_OCI_STARTPIPE").send(b"\0")
    early_output = proc.stdout.read() if proc.stdout else b""
    rc = proc.wait()
    if proc.stdout:
        proc.stdout.close()
    if rc != 0:
        raise OCIRuntimeError(f"conmon failed: exit status {rc}: {early_output.decode(errors='replace').strip()}")
    conmon_pid = _read_int(launch.conmon_pidfile)  # the intermediate wrote it before exiting
    if launch.place is not None and conmon_pid > 0:
        try:
            launch.place(conmon_pid)
        except OSError as exc:
            log.warning("could not move conmon %d into its cgroup: %s", conmon_pid, exc)
    return conmon_pid


def create_container(launch: ConmonLaunch, timeout: float = CREATE_TIMEOUT) -> tuple[int, int]:
    """Start conmon, which runs `<runtime> create`; returns (container pid, conmon pid)."""
    pipes = _Pipes(attach=False)
    try:
        conmon_pid = _spawn(launch, pipes)
        message = _read_sync(pipes.parent("_OCI_SYNCPIPE"), timeout)
    finally:
        pipes.close()
    pid = message.get("data", -1) if message else -1
    if not isinstance(pid, int) or pid <= 0:
        raise _create_error(launch, message)
    return pid, conmon_pid


def start_exec(launch: ConmonLaunch, before_start: Callable[[], None],
               timeout: float = CREATE_TIMEOUT) -> tuple[int, int, socket.socket]:
    """Run an exec session through conmon (libpod's startExec).

    conmon says on the attach pipe when its attach socket is ready; `before_start` then connects
    (and sizes the terminal) before the second start byte lets `runc exec` run, so no output is
    lost. Returns (exec pid, conmon pid, sync socket); the sync socket later carries the exit code.
    """
    pipes = _Pipes(attach=True)
    sync = pipes.parent("_OCI_SYNCPIPE")
    try:
        conmon_pid = _spawn(launch, pipes)
        ready = _read_sync(pipes.parent("_OCI_ATTACHPIPE"), timeout)
        if not ready or ready.get("data") != 0:
            raise _create_error(launch, ready)
        before_start()
        pipes.parent("_OCI_STARTPIPE").send(b"\0")
        message = _read_sync(sync, timeout)
        pid = message.get("data", -1) if message else -1
        if not isinstance(pid, int) or pid <= 0:
            raise _create_error(launch, message)
    except BaseException:
        pipes.close()
        raise
    pipes.close(keep=sync)
    return pid, conmon_pid, sync


def _read_sync(sock: socket.socket, timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OCIRuntimeError(f"timed out after {timeout:.0f}s waiting for conmon to create the container")
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    line = buf.split(b"\n", 1)[0]
    if not line:
        return None
    try:
        return json.loads(line)
    except ValueError as exc:
        raise OCIRuntimeError(f"conmon sent an invalid sync message: {line[:200]!r}") from exc


def _create_error(launch: ConmonLaunch, message: dict | None) -> OCIRuntimeError:
    """Prefer the runtime's JSON log (its last error), else conmon's message; classify 126/127."""
    text = logged_error(launch.oci_log)
    if not text and message:
        text = str(message.get("message", "")).strip()
    if not text:
        what = "exec" if launch.exec_spec else "container create"
        text = f"{what} failed (no error message from the runtime)"
    return classify_runtime_error(f"{os.path.basename(launch.runtime)}: {text}")


def _read_int(path: str) -> int:
    for _ in range(100):
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            time.sleep(0.001)
    log.warning("conmon pidfile %s missing; wait will fall back to the exit file", path)
    return 0
