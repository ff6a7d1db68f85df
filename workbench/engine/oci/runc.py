"""The OCI runtime command line (runc or crun), called directly with one explicit `--root`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable

from .. import logger
from .. import cgroups
from ..errors import OCIRuntimeError, WorkbenchError

log = logger.get(__name__)

_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "XDG_RUNTIME_DIR": ""}


def which(name: str, path: str = _ENV["PATH"]) -> str | None:
    """shutil.which for a plain name (importing shutil costs the CLI its compression modules)."""
    if "/" in name:
        return name if os.access(name, os.X_OK) and not os.path.isdir(name) else None
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def detect_runtime(preferred: str | None = None) -> str:
    """Path of the OCI runtime to use: `preferred` if given, else crun where it works, else runc.

    crun 1.8 refuses the hybrid cgroup layout ("cgroups in hybrid mode not supported"), so there
    only runc is used.
    """
    if preferred:
        path = which(preferred, os.environ.get("PATH", _ENV["PATH"])) or which(preferred)
        if not path:
            raise WorkbenchError(f"OCI runtime {preferred!r} not found: install it (apt-get install {os.path.basename(preferred)})")
        return path
    order = ["crun", "runc"] if cgroups.layout() != "hybrid" else ["runc"]
    for name in order:
        path = which(name)
        if path:
            return path
    raise WorkbenchError("no OCI runtime found: install runc (apt-get install runc)")


class OCIRuntime:
    """One OCI runtime binary plus the state directory every call passes as `--root`."""

    def __init__(self, path: str, root: str):
        self.path = path
        self.root = root

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [self.path, "--root", self.root, *args]
        proc = subprocess.run(argv, env=_ENV, stdin=subprocess.DEVNULL, capture_output=True)
        if check and proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
            raise OCIRuntimeError(f"{self.name} {args[0]}: {_last_msg(message)}")
        return proc

    def start(self, ctr_id: str) -> None:
        self._run("start", ctr_id)

    def kill(self, ctr_id: str, signal: int, all_processes: bool = False) -> None:
        args = ["kill", *(["--all"] if all_processes else []), ctr_id, str(signal)]
        self._run(*args)

    def pause(self, ctr_id: str) -> None:
        self._run("pause", ctr_id)

    def resume(self, ctr_id: str) -> None:
        self._run("resume", ctr_id)

    def delete(self, ctr_id: str, meanwhile: Callable[[], None] | None = None) -> None:
        """`delete --force`; a container the runtime does not know is fine.

        `meanwhile` runs while the runtime works: host-side clean-up that does not depend on it
        overlaps the runtime's start-up instead of following it.
        """
        proc = subprocess.Popen([self.path, "--root", self.root, "delete", "--force", ctr_id], env=_ENV,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if meanwhile is not None:
                meanwhile()
        finally:
            _, stderr = proc.communicate()
        if proc.returncode != 0:
            message = stderr.decode(errors="replace")
            if "does not exist" not in message and "not found" not in message:
                raise OCIRuntimeError(f"{self.name} delete: {_last_msg(message)}")

    def update(self, ctr_id: str, resources: dict) -> None:
        """`update --resources -`: change a live container's cgroup limits."""
        argv = [self.path, "--root", self.root, "update", "--resources", "-", ctr_id]
        proc = subprocess.run(argv, env=_ENV, input=json.dumps(resources).encode(), capture_output=True)
        if proc.returncode != 0:
            message = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
            raise OCIRuntimeError(f"{self.name} update: {_last_msg(message)}")

    def state(self, ctr_id: str) -> dict | None:
        """`state` as a dict, or None when the runtime does not know the container."""
        proc = self._run("state", ctr_id, check=False)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)

    def version(self) -> str:
        proc = subprocess.run([self.path, "--version"], capture_output=True, env=_ENV)
        return proc.stdout.decode(errors="replace").splitlines()[0] if proc.stdout else self.name


def logged_error(log_path: str) -> str:
    """The last error the runtime wrote to its `--log` file (JSON lines), or ''."""
    message = ""
    try:
        with open(log_path, "rb") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return ""
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            message = str(entry.get("msg", message))
    return message


def _last_msg(stderr: str) -> str:
    """The useful part of runtime stderr: JSON log lines' `msg`, else the last line."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if not lines:
        return stderr.strip()
    last = lines[-1]
    logfmt = re.search(r'msg="((?:[^"\\]|\\.)*)"', last)
    if logfmt:
        return logfmt.group(1).replace('\\"', '"')
    if last.startswith("{"):
        try:
            return json.loads(last).get("msg", last)
        except ValueError:
            pass
    return last
