"""Launching conmon the way libpod does: sync and start pipes, double fork, exit files, k8s-file log."""

from __future__ import annotations

import json
import logging
import os
import select
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field

from ..errors import OCIRuntimeError, WorkbenchError, classify_runtime_error

log = logging.getLogger(__name__)

#: libpod's define.ContainerCreateTimeout.
CREATE_TIMEOUT = 240.0
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Files conmon leaves in a bundle; removed before a new create and after cleanup.
CONMON_FILES = ("attach", "ctl", "winsz", "oom")


def find_conmon() -> str:
    path = shutil.which("conmon", path=_PATH)
    if not path:
        raise WorkbenchError("conmon not found: install it (apt-get install conmon)")
    return path


@dataclass
class ConmonLaunch:
    """Everything conmon needs to create one container."""

    conmon: str
    runtime: str
    runtime_root: str
    ctr_id: str
    name: str
    bundle: str
    run_dir: str
    exit_dir: str
    log_path: str
    exit_command: list[str] = field(default_factory=list)
    terminal: bool = False
    stdin: bool = False
    log_level: str = "error"

    @property
    def pidfile(self) -> str:
        return os.path.join(self.run_dir, "pidfile")

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
        args = [
            self.conmon, "--api-version", "1", "-c", self.ctr_id, "-u", self.ctr_id, "-r", self.runtime,
            "-b", self.bundle, "-p", self.pidfile, "-n", self.name, "--exit-dir", self.exit_dir,
            "--persist-dir", self.persist_dir, "--full-attach", "-l", f"k8s-file:{self.log_path}",
            "--log-level", self.log_level,
            "--runtime-arg", "--root", "--runtime-arg", self.runtime_root,
            "--runtime-arg", "--log-format=json", "--runtime-arg", "--log", f"--runtime-arg={self.oci_log}",
        ]
        if self.terminal:
            args.append("-t")
        elif self.stdin:
            args.append("-i")
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
    shutil.rmtree(os.path.join(run_dir, "persist"), ignore_errors=True)


def create_container(launch: ConmonLaunch, timeout: float = CREATE_TIMEOUT) -> tuple[int, int]:
    """Start conmon, which runs `<runtime> create`; returns (container pid, conmon pid)."""
    os.makedirs(launch.persist_dir, exist_ok=True)
    sync_parent, sync_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    start_parent, start_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        env = {"PATH": _PATH, "XDG_RUNTIME_DIR": "",
               "_OCI_SYNCPIPE": str(sync_child.fileno()), "_OCI_STARTPIPE": str(start_child.fileno())}
        for key in ("LANG", "LC_ALL", "TZ", "TMPDIR"):
            if key in os.environ:
                env[key] = os.environ[key]
        proc = subprocess.Popen(
            launch.argv(), cwd=launch.bundle, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(sync_child.fileno(), start_child.fileno()), start_new_session=True,
        )
        sync_child.close()
        start_child.close()
        start_parent.send(b"\0")
        early_output = proc.stdout.read() if proc.stdout else b""
        rc = proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if rc != 0:
            raise OCIRuntimeError(f"conmon failed: exit status {rc}: {early_output.decode(errors='replace').strip()}")
        message = _read_sync(sync_parent, timeout)
    finally:
        for sock in (sync_parent, sync_child, start_parent, start_child):
            sock.close()
    pid = message.get("data", -1) if message else -1
    if not isinstance(pid, int) or pid <= 0:
        raise _create_error(launch, message)
    return pid, _read_int(launch.conmon_pidfile)


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
    text = ""
    try:
        with open(launch.oci_log, "rb") as f:
            for line in f.read().decode(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    text = entry.get("msg", text)
    except FileNotFoundError:
        pass
    if not text and message:
        text = str(message.get("message", "")).strip()
    if not text:
        text = "container create failed (no error message from the runtime)"
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
