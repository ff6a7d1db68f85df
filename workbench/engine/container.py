"""Container: the public lifecycle API (libpod's container_api.go), one lock-then-sync per call."""

from __future__ import annotations

import contextlib
import os
import re
import time

from . import events
from . import logger
from . import state as states
from .exits import handle_exit_file
from .errors import (ContainerRemoved, ContainerStateError, InvalidArgument, NoSuchArtifact, NoSuchExecSession,
                     OCIRuntimeError, WorkbenchError)
from .signals import parse_signal
from .state import ContainerConfig, ContainerRuntimeState, ContainerState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, Callable, Iterator, Sequence, TypeVar, Unpack

    from .attach import Session
    from .exec import ExecResult
    from .exit_command import Claim
    from .images.store import Image
    from .progress import ByteProgress
    from .resources import Limits
    from .runtime import Runtime
    from .top import ProcessTable

    T = TypeVar("T")

log = logger.get(__name__)
_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,255}$")


def _steps():
    """The lifecycle steps, imported on first use: `ps` and `inspect` never need them."""
    from . import lifecycle

    return lifecycle


def _fs():
    from . import filesystem

    return filesystem


def _exec_steps():
    from . import exec as exec_steps

    return exec_steps


class _MainProcess:
    """The container's main process behind an attach Session."""

    def __init__(self, c: "Container"):
        self.c = c

    def poll(self) -> int | None:
        with self.c._locked():
            if self.c.st.state in states.ACTIVE_STATES:
                return None
            return self.c.st.exit_code

    def wait(self, timeout: float | None) -> int:
        return self.c.wait(timeout)

    def signal(self, sig: int) -> None:
        self.c.kill(sig)

    def release(self) -> None:
        pass


def _rfc3339(ts: float) -> str:
    if not ts:
        return "0001-01-01T00:00:00Z"
    import datetime

    return datetime.datetime.fromtimestamp(ts).astimezone().isoformat()


class Container:
    """A handle on one container; many handles (and processes) may share it through the store."""

    def __init__(self, rt: "Runtime", config: ContainerConfig, st: ContainerRuntimeState):
        self.rt = rt
        self.config = config
        self.st = st
        self.valid = True
        self._batch_depth = 0
        self._lock = rt.locks.get(config.id)

    # -- identity and paths ------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.config.id

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def state(self) -> ContainerState:
        """The current state, synced with the store and the exit file."""
        with self._locked():
            return self.st.state

    @property
    def static_dir(self) -> str:
        return os.path.join(self.rt.root, "containers", self.id)

    @property
    def bundle(self) -> str:
        return os.path.join(self.static_dir, "userdata")

    @property
    def run_dir(self) -> str:
        return os.path.join(self.rt.runroot, "containers", self.id)

    @property
    def log_path(self) -> str:
        return os.path.join(self.bundle, "ctr.log")

    @property
    def exit_file(self) -> str:
        return os.path.join(self.rt.exit_dir, self.id)

    def __repr__(self) -> str:
        return f"<Container {self.id[:12]} {self.name!r} {self.st.state.value}>"

    # -- locking ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Take the container lock and sync once; inside batch() neither is repeated."""
        if self._batch_depth:
            yield
            return
        with self._lock:
            self.sync()
            yield

    def claim_cleanup(self) -> Claim:
        """Promise to clean up (and remove, for --rm) after the exit, as a waiting `run` does:
        conmon's exit command then waits for this and skips the CLI (see exit_command)."""
        from .exit_command import Claim

        return Claim(self.rt.runroot, self.id)

    @contextlib.contextmanager
    def removing_on_failure(self, remove: bool = True) -> Iterator[None]:
        """When the block fails and `remove` is set, remove the container (forced) before the
        error goes on, as `run --rm` does after a failed start; a failed removal is logged."""
        try:
            yield
        except BaseException:
            if remove:
                try:
                    self.remove(force=True)
                except WorkbenchError as exc:
                    log.warning("removing %s after a failure: %s", self.id, exc)
            raise

    @contextlib.contextmanager
    def unlocked(self) -> Iterator[None]:
        """Release the lock for a long wait (stop, wait) and take it back afterwards."""
        depth = 0
        while self._lock.held:
            self._lock.release()
            depth += 1
        try:
            yield
        finally:
            for _ in range(depth):
                self._lock.acquire()

    def sync(self) -> None:
        """Reload state from the store and reconcile it with the exit file."""
        with self._lock:
            data = self.rt.db.container_state(self.id)
            if data is None:
                self.valid = False
                raise ContainerRemoved(self.id)
            self.st = ContainerRuntimeState.from_json(data)
            if handle_exit_file(self):
                self.save()

    def save(self) -> None:
        if not self.rt.db.save_state(self.id, self.st.to_json()):
            self.valid = False
            raise ContainerRemoved(self.id)

    def _check(self, operation: str) -> None:
        states.check(operation, self.id, self.st.state)

    # -- lifecycle ---------------------------------------------------------------------------
    def init(self) -> None:
        """Create the container in the OCI runtime without starting it."""
        with self._locked():
            self._check("init")
            _steps().init(self)

    def start(self) -> None:
        """Start the container (initialising it first when needed)."""
        with self._locked():
            if self.st.state == ContainerState.RUNNING:
                raise ContainerStateError(f"container {self.id} is already running: container already running")
            self._check("start")
            _steps().start(self)

    def stop(self, timeout: int | None = None) -> None:
        """Send the stop signal, then SIGKILL after `timeout` seconds (default: the container's)."""
        with self._locked():
            if self.st.state in (ContainerState.STOPPED, ContainerState.EXITED):
                return  # idempotent, as the CLI treats ErrCtrStopped
            self._check("stop")
            _steps().stop(self, self.config.stop_timeout if timeout is None else int(timeout))

    def kill(self, signal: str | int = "SIGKILL") -> None:
        """Send a signal to the container's main process."""
        number = parse_signal(signal)
        with self._locked():
            self._check("kill")
            _steps().kill(self, number)

    def pause(self) -> None:
        with self._locked():
            self._check("pause")
            from . import cgroups

            if not cgroups.containers_have_cgroups():  # the freezer is a cgroup's
                where = "without a delegated cgroup" if cgroups.is_v2() else "with cgroup V1"
                raise WorkbenchError(f"can not pause containers on rootless containers {where}: "
                                     "pausing needs the container's own cgroup")
            self.rt.oci.pause(self.id)
            self.st.state = ContainerState.PAUSED
            from . import health

            health.stop_monitor(self)  # as Podman removes the timer: no checks of a frozen container
            self.save()
            events.container(self, "pause")

    def rename(self, name: str) -> None:
        """A new name (`podman rename`); running peers on its networks learn it at once."""
        from .runtime import validate_name

        validate_name(name)
        with self._locked():
            if name == self.config.name:
                return
            config = self.config.to_json()
            config["name"] = name
            self.rt.db.rename_container(self.id, name, config)
            self.config.name = name
            events.container(self, "rename")
            if self.st.state == ContainerState.RUNNING and self.config.network == "bridge":
                from .network import attach

                attach.rewrite_hosts(self)
                attach.refresh_peers(self, list(self.config.networks))

    def update(self, **limits: Unpack[Limits]) -> None:
        """Change the cgroup limits of a created, running or paused container (memory="512m",
        cpus=1.5, pids_limit=200, ...); all checked first, and rolled back if the runtime fails."""
        from . import cgroups, resources

        if not limits:
            raise InvalidArgument("no resource limits given to update")
        if not cgroups.containers_have_cgroups():
            raise WorkbenchError(f"cannot update the limits of a container on {cgroups.cgroupless_systems()}: "
                                 "it has no cgroup of its own")
        with self._locked():
            self._check("update")
            old = self.config.resources or resources.resources({})
            new = resources.resources(limits, current=old)
            try:
                self.rt.oci.update(self.id, resources.update_payload(old, new))
            except OCIRuntimeError:
                try:
                    self.rt.oci.update(self.id, resources.update_payload(new, old))
                except OCIRuntimeError as exc:
                    log.warning("restoring the limits of %s after a failed update: %s", self.id, exc)
                raise
            self.config.resources = new
            self.rt.db.save_config(self.id, self.config.to_json())

    def unpause(self) -> None:
        with self._locked():
            self._check("unpause")
            self.rt.oci.resume(self.id)
            self.st.state = ContainerState.RUNNING
            from . import health

            health.start_monitor(self)
            self.save()
            events.container(self, "unpause")

    def restart(self, timeout: int | None = None) -> None:
        """Stop if running, then start again (also from stopped or exited)."""
        with self._locked():
            self._check("restart")
            if self.st.state in (ContainerState.RUNNING, ContainerState.STOPPING):
                _steps().stop(self, self.config.stop_timeout if timeout is None else int(timeout))
            if self.st.state == ContainerState.STOPPED:
                _steps().cleanup(self)
            events.container(self, "restart")
            _steps().start(self)

    def wait(self, timeout: float | None = None) -> int:
        """Block until the container exits; returns its exit code (also after removal, for a while)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                with self._locked():
                    if self.st.state not in (ContainerState.RUNNING, ContainerState.PAUSED,
                                             ContainerState.STOPPING, ContainerState.CREATED):
                        code = self.st.exit_code
                        if self.st.state == ContainerState.STOPPED:
                            # Do the exit command's work now rather than wait for its process:
                            # callers see `exited` as soon as wait() returns, as with podman
                            # (or the container running again, by its restart policy).
                            self._clean_up_exited()
                        return code
            except ContainerRemoved:
                code = self.rt.db.exit_code(self.id)
                if code is None:
                    raise
                return code
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"container {self.id} did not exit within {timeout} seconds")
            if self.st.state == ContainerState.CREATED:
                time.sleep(0.05 if remaining is None else min(0.05, remaining))
            else:
                _steps().wait_for_exit(self, remaining)

    def wait_for(self, *conditions: str, timeout: float | None = None, interval: float = 0.25) -> int:
        """Block until the container is in one of the states named (`running`, `paused`, ...),
        or `healthy`/`unhealthy` by its healthcheck: -1, or for `stopped`/`exited` its exit code,
        as Podman's `wait --condition`. TimeoutError after `timeout` seconds."""
        from . import health

        wanted: set[str] = set()
        for condition in conditions:
            name = "created" if condition == "configured" else condition
            if name in ("healthy", "unhealthy"):
                if not self.config.healthcheck:
                    raise InvalidArgument(f'cannot use condition "{condition}": container {self.id} has no healthcheck')
            elif name not in {s.value for s in ContainerState}:
                raise InvalidArgument(f'unknown container state: "{condition}": use '
                                      f'{", ".join(s.value for s in ContainerState)}, healthy or unhealthy')
            wanted.add(name)
        if wanted <= {"stopped", "exited"}:
            return self.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.state
            if wanted & {"stopped", "exited"} and state in (ContainerState.STOPPED, ContainerState.EXITED):
                return self.wait(timeout=0)
            if state.value in wanted or (wanted & {"healthy", "unhealthy"}
                                         and health.status(self)["Status"] in wanted):
                return -1
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"container {self.id} did not reach {', '.join(sorted(wanted))} "
                                   f"within {timeout} seconds")
            time.sleep(interval)

    def cleanup(self) -> None:
        """Release what a stopped container holds (runtime state, mounts), or start it again if its
        restart policy says so (as Podman's Cleanup); refused while running."""
        with self._locked():
            self._check("cleanup")
            self._clean_up_exited()

    def _clean_up_exited(self) -> None:
        from . import restart_policy

        if not restart_policy.restart_if_due(self):
            _steps().cleanup(self)

    def batch(self, fn: Callable[["Container"], T]) -> T:
        """Run `fn(self)` holding the lock, synced once; inner calls neither lock nor sync again."""
        with self._locked():
            self._batch_depth += 1
            try:
                return fn(self)
            finally:
                self._batch_depth -= 1

    def remove(self, force: bool = False, timeout: int | None = None, *, volumes: bool = False) -> None:
        """Remove the container (stopped first when `force`); its anonymous volumes go too with
        `volumes` (`rm -v`) or when it was made with `remove` (`--rm`)."""
        with self._locked():
            if not force:
                self._check("remove")
            _steps().remove(self, timeout, volumes=volumes)
        self.rt.locks.free(self.id)

    # -- exec and attach ---------------------------------------------------------------------
    def exec(self, cmd: Sequence[str], *, tty: bool = False, stdin: bytes | str | None = None,
             env: dict[str, str] | Sequence[str] | None = None, user: str | None = None,
             workdir: str | None = None, privileged: bool = False, capture: bool = True,
             timeout: float | None = None) -> "ExecResult":
        """Run a command in the running container and collect its output (stdin: bytes to feed it).

        With capture=False the output goes straight to this process's stdout and stderr instead.
        A command still running after `timeout` seconds (captured, without a tty) is killed, and
        TimeoutError raised.
        """
        from .exec import ExecResult

        data = stdin.encode() if isinstance(stdin, str) else stdin
        if tty:
            with self.exec_session(cmd, tty=True, stdin=data is not None, env=env, user=user, workdir=workdir,
                                   privileged=privileged) as session:
                if data is not None:
                    session.write(data)
                    session.close_stdin()
                stdout, _ = session.output()
                return ExecResult(session.wait(), stdout, b"")
        rec = self._new_exec(cmd, tty=False, stdin=data is not None, env=env, user=user, workdir=workdir,
                             privileged=privileged, detach=False)
        return _exec_steps().run_direct(self, rec, input=data, capture=capture, timeout=timeout)

    def exec_session(self, cmd: Sequence[str], *, tty: bool = True, stdin: bool = True,
                     env: dict[str, str] | Sequence[str] | None = None, user: str | None = None,
                     workdir: str | None = None, privileged: bool = False, size: tuple[int, int] | None = None,
                     on_output: Callable[[str, bytes], None] | None = None) -> "Session":
        """Start an interactive exec session (a terminal by default) and return its stream."""
        rec = self._new_exec(cmd, tty=tty, stdin=stdin, env=env, user=user, workdir=workdir,
                             privileged=privileged, detach=False)
        session = _exec_steps().start(self, rec, size=size, on_output=on_output)
        assert session is not None
        return session

    def exec_detached(self, cmd: Sequence[str], *, tty: bool = False,
                      env: dict[str, str] | Sequence[str] | None = None, user: str | None = None,
                      workdir: str | None = None, privileged: bool = False) -> str:
        """Start a command in the background (`exec -d`); returns the session ID for exec_inspect."""
        rec = self._new_exec(cmd, tty=tty, stdin=False, env=env, user=user, workdir=workdir,
                             privileged=privileged, detach=True)
        _exec_steps().start(self, rec)
        return rec.id

    def _new_exec(self, cmd: Sequence[str], **options: Any):
        with self._locked():
            self._check("exec")
            return _exec_steps().create(self, cmd, **options)

    def exec_ids(self) -> list[str]:
        """IDs of the container's recorded exec sessions (running or detached and finished)."""
        with self._locked():
            return [rec.id for rec in _exec_steps().records(self)]

    def exec_inspect(self, session_id: str) -> dict[str, Any]:
        """Podman-shaped data about one exec session."""
        steps = _exec_steps()
        with self._locked():
            for rec in steps.records(self):
                if rec.id == session_id or (len(session_id) >= 3 and rec.id.startswith(session_id)):
                    return steps.inspect(self, rec)
        raise NoSuchExecSession(f"no exec session with ID {session_id} found: no such exec session")

    def attach_session(self, *, stdin: bool | None = None, start: bool = False, size: tuple[int, int] | None = None,
                       on_output: Callable[[str, bytes], None] | None = None) -> "Session":
        """Attach to the main process (created or running); with `start`, attach first, then start,
        so no output is lost. `stdin` defaults to whether the container keeps stdin open."""
        from .attach import Session, connect, write_resize

        with self._locked():
            if start and self.st.state in (ContainerState.CONFIGURED, ContainerState.STOPPED, ContainerState.EXITED):
                _steps().init(self)
            self._check("attach")
            sock = connect(os.path.join(self.bundle, "attach"))
            try:
                ctl = os.path.join(self.bundle, "ctl")
                if size is not None and self.config.tty:
                    write_resize(ctl, *size)
                if start and self.st.state == ContainerState.CREATED:
                    _steps().start(self)
            except BaseException:
                sock.close()
                raise
            events.container(self, "attach")
            open_stdin = self.config.stdin or self.config.tty
            return Session(sock, _MainProcess(self), session_id=self.id, pid=self.st.pid, tty=self.config.tty,
                           stdin=open_stdin if stdin is None else (stdin and open_stdin), ctl_path=ctl,
                           on_output=on_output)

    # -- file system -------------------------------------------------------------------------
    def mount(self) -> str:
        """Mount the root file system on the host and return the path; mounts are counted."""
        with self._locked():
            return _fs().mount(self)

    def unmount(self, force: bool = False) -> None:
        """Undo one mount (all with `force`); the last one unmounts unless the container runs."""
        with self._locked():
            _fs().unmount(self, force)

    def copy_to(self, host_path: str, container_path: str, *, pause: bool = True) -> None:
        """Copy a host file or directory into the container (`cp` rules; paused meanwhile)."""
        from .copy import copy

        with self._locked():
            copy(self, host_path, container_path, to_container=True, pause=pause)

    def copy_from(self, container_path: str, host_path: str, *, pause: bool = True) -> None:
        """Copy a file or directory out of the container (resolved inside its root)."""
        from .copy import copy

        with self._locked():
            copy(self, container_path, host_path, to_container=False, pause=pause)

    def get_archive(self, container_path: str, out: BinaryIO, *, pause: bool = True) -> None:
        """Write a path of the container (a directory with all below it) to `out` as a tar stream."""
        from .copy import copy_out_tar

        with self._locked():
            copy_out_tar(self, container_path, out, pause=pause)

    def put_archive(self, stream: BinaryIO, container_path: str, *, pause: bool = True) -> None:
        """Unpack a tar stream (plain or compressed) into an existing directory of the container."""
        from .copy import copy_in_tar

        with self._locked():
            copy_in_tar(self, stream, container_path, pause=pause)

    def diff(self) -> list[tuple[str, str]]:
        """What changed against the image: ("A"|"C"|"D", path) pairs."""
        with self._locked():
            return _fs().diff(self)

    def export(self, out: BinaryIO, *, progress: "ByteProgress | None" = None) -> None:
        """Write the whole file system to `out` as a tar stream (`progress`: bytes written so far)."""
        with self._locked():
            _fs().export(self, out, progress)

    def commit(self, reference: str | None = None, *, changes: Sequence[str] = (), message: str = "",
               author: str = "", pause: bool = True, timestamp: int | None = None,
               progress: "ByteProgress | None" = None) -> "Image":
        """Make an image of the container's changes over its image (paused meanwhile by default);
        `timestamp` (or SOURCE_DATE_EPOCH) fixes every date so that the digest is reproducible;
        `progress` gets the bytes of the new layer written so far."""
        if timestamp is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
            timestamp = int(os.environ["SOURCE_DATE_EPOCH"])
        with self._locked():
            if self.st.state == ContainerState.REMOVING:
                self._check("remove")
            return _fs().commit(self, reference, changes=changes, message=message, author=author, pause=pause,
                                timestamp=timestamp, progress=progress)

    # -- logs ------------------------------------------------------------------------------
    def log_chunks(self, *, follow: bool = False, tail: int | None = None, since: Any = None,
                   until: Any = None, timestamps: bool = False,
                   poll_interval: float = 0.1) -> Iterator[tuple[str, bytes]]:
        """(stream, bytes) chunks as `podman logs` writes them; `follow` ends when the container exits."""
        from . import logs

        if self.config.log_driver == "none":
            raise WorkbenchError("this container is using the 'none' log driver, cannot read logs: this container "
                                 "is not logging output")
        since_dt = logs.parse_since(since) if isinstance(since, str) else since
        until_dt = logs.parse_until(until) if isinstance(until, str) else until
        if not os.path.exists(self.log_path) and not follow:
            return iter(())
        if follow:
            records = logs.follow_records(self.log_path, is_running=self._maybe_running, since=since_dt,
                                          tail=tail, poll_interval=poll_interval)
            if until_dt is not None:
                records = (r for r in records if r.time <= until_dt)
        else:
            records = logs.read_records(self.log_path, since=since_dt, until=until_dt, tail=tail)
        return logs.render(records, timestamps=timestamps)

    def _maybe_running(self) -> bool:
        """A lock-free liveness check for followers: no exit file and an active state in the store."""
        if os.path.exists(self.exit_file):
            return False
        data = self.rt.db.container_state(self.id)
        return data is not None and ContainerState[data["state"]] in states.ACTIVE_STATES

    def logs(self, **kwargs: Any) -> str:
        """The container's output (stdout and stderr interleaved) as text."""
        return b"".join(data for _, data in self.log_chunks(**kwargs)).decode(errors="replace")

    # -- artifacts -------------------------------------------------------------------------
    def _artifact_path(self, name: str) -> str:
        if not _ARTIFACT_NAME.match(name) or name in (".", ".."):
            raise InvalidArgument(f"invalid artifact name {name!r}: use letters, digits, '.', '_' and '-'")
        return os.path.join(self.static_dir, "artifacts", name)

    def add_artifact(self, name: str, data: bytes) -> None:
        path = self._artifact_path(name)
        with self._locked():
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.rename(path + ".tmp", path)

    def get_artifact(self, name: str) -> bytes:
        path = self._artifact_path(name)
        with self._locked():
            try:
                with open(path, "rb") as f:
                    return f.read()
            except FileNotFoundError:
                raise NoSuchArtifact(f"container {self.id} has no artifact {name!r}") from None

    def remove_artifact(self, name: str) -> None:
        path = self._artifact_path(name)
        with self._locked():
            try:
                os.unlink(path)
            except FileNotFoundError:
                raise NoSuchArtifact(f"container {self.id} has no artifact {name!r}") from None

    # -- inspect ---------------------------------------------------------------------------
    def _network_settings(self) -> dict[str, Any]:
        """Podman's NetworkSettings: the first network's address at the top, every network below."""
        networks = {}
        for name, status in self.st.network_status.items():
            networks[name] = {
                "EndpointID": "", "Gateway": status["gateway"], "IPAddress": status["ip"],
                "IPPrefixLen": status["prefix"], "IPv6Gateway": "", "GlobalIPv6Address": "",
                "GlobalIPv6PrefixLen": 0, "MacAddress": status["mac"], "NetworkID": name, "DriverOpts": None,
                "IPAMConfig": None, "Links": None, "Aliases": [self.id[:12]],
            }
        first = next(iter(networks.values()), {})
        ports = _port_bindings(self.config.ports) if self.st.netns else {}
        return {
            "EndpointID": "", "Gateway": first.get("Gateway", ""), "IPAddress": first.get("IPAddress", ""),
            "IPPrefixLen": first.get("IPPrefixLen", 0), "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0, "MacAddress": first.get("MacAddress", ""), "Bridge": "", "SandboxID": "",
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": ports,
            "SandboxKey": self.st.netns, "Networks": networks,
        }

    def connect(self, network: str, *, ip: str | None = None) -> None:
        """Join a bridge network: now if the container runs (a new eth<N>), else from its next start."""
        from .network import attach
        from .network.networks import require_root

        require_root("network connect")

        with self._locked():
            net = self.rt.networks.get(network)
            if self.config.network != "bridge":
                raise WorkbenchError(f'container {self.id} is in network mode "{self.config.network}": '
                                     f"only bridge-mode containers join networks")
            if net.name in self.config.networks:
                raise WorkbenchError(f"container {self.id} is already connected to network {net.name}")
            if ip:
                self.rt.networks.lease(net, self.id, ip)  # checks it is free and in the subnet
            if self.st.netns:
                try:
                    attach.plug(self, net.name, attach.free_index(self))
                except BaseException:
                    self.rt.networks.release(self.id, net.name)
                    raise
            self.config.networks.append(net.name)
            self.rt.db.save_config(self.id, self.config.to_json())
            self.save()
            if self.st.netns:
                attach.rewrite_hosts(self)
                attach.refresh_peers(self, [net.name])
            events.connection(self, "connect", net.name)

    def disconnect(self, network: str) -> None:
        """Leave a network: its interface goes at once, its address lease too."""
        from .network import attach

        with self._locked():
            net = self.rt.networks.get(network)
            if net.name not in self.config.networks:
                raise WorkbenchError(f"container {self.id} is not connected to network {net.name}")
            attach.unplug(self, net.name)
            self.config.networks.remove(net.name)
            self.rt.db.save_config(self.id, self.config.to_json())
            self.rt.networks.release(self.id, net.name)
            self.save()
            if self.st.netns:
                attach.rewrite_hosts(self)
            attach.refresh_peers(self, [net.name])
            events.connection(self, "disconnect", net.name)

    def ports(self) -> list[dict[str, Any]]:
        """The published ports (`workbench port`): host_ip, host_port, container_port, protocol."""
        return [dict(p) for p in self.config.ports]

    def top(self, descriptors: Sequence[str] | str | None = None) -> "ProcessTable":
        """The processes of a running or paused container with ps-like columns (psgo descriptors,
        e.g. ["pid", "user", "args"] or "pid,user"; Podman's default set when None), from /proc."""
        from .top import container_top

        with self._locked():
            return container_top(self, descriptors)

    def stats(self, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """One resource-use record (keys: see Runtime.stats); zeros when the container has no
        processes, as Podman. CPU % counts from `previous` (an earlier record) or from the start."""
        from .stats import sample

        with self._locked():
            return sample(self, previous)

    def inspect(self, size: bool = False) -> dict[str, Any]:
        """Podman-shaped inspect data."""
        with self._locked():
            return self._inspect_data(size)

    def _inspect_data(self, size: bool) -> dict[str, Any]:
        from . import health, mounts
        from .units import compact_size
        from .oci.spec import DEFAULT_CAPABILITIES

        cfg, st = self.config, self.st
        caps = list(cfg.capabilities) or list(DEFAULT_CAPABILITIES)
        health_status = health.status(self)
        binds, tmpfs = mounts.host_config(cfg.mounts)
        state = st.state
        data: dict[str, Any] = {
            "Id": cfg.id,
            "Created": _rfc3339(cfg.created),
            "Path": _process_args(cfg)[0] if _process_args(cfg) else "",
            "Args": _process_args(cfg)[1:],
            "State": {
                "OciVersion": "1.0.2-dev",
                "Status": state.value,
                "Running": state == ContainerState.RUNNING,
                "Paused": state == ContainerState.PAUSED,
                "Restarting": False,
                "OOMKilled": st.oom_killed,
                "Dead": False,
                "Pid": st.pid,
                "ConmonPid": st.conmon_pid,
                "ExitCode": st.exit_code,
                "Error": st.error,
                "StartedAt": _rfc3339(st.started_at),
                "FinishedAt": _rfc3339(st.finished_at),
                "Health": health_status,
                "Healthcheck": health_status,
                "CheckpointedAt": "0001-01-01T00:00:00Z",
                "RestoredAt": "0001-01-01T00:00:00Z",
            },
            "Image": cfg.image_id,
            "ImageName": cfg.image_name,
            "Rootfs": "",
            "Pod": "",
            "ResolvConfPath": os.path.join(self.run_dir, "resolv.conf"),
            "HostnamePath": os.path.join(self.run_dir, "hostname"),
            "HostsPath": os.path.join(self.run_dir, "hosts"),
            "StaticDir": self.bundle,
            "OCIConfigPath": os.path.join(self.bundle, "config.json"),
            "OCIRuntime": self.rt.oci_name,
            "ConmonPidFile": os.path.join(self.run_dir, "conmon.pid"),
            "PidFile": os.path.join(self.run_dir, "pidfile"),
            "Name": cfg.name,
            "RestartCount": st.restart_count,
            "Driver": "overlay",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "EffectiveCaps": caps if _is_root(cfg.user) else [],
            "BoundingCaps": caps,
            "ExecIDs": [rec.id for rec in _exec_steps().records(self)] if state in states.ACTIVE_STATES else [],
            "GraphDriver": {"Name": "overlay", "Data": {
                "UpperDir": self.rt.layers.diff(cfg.layer_id),
                "WorkDir": os.path.join(self.rt.layers.dir(cfg.layer_id), "work"),
                **({"MergedDir": st.mountpoint} if st.mounted else {}),
            }},
            "Mounts": mounts.inspect_entries(cfg.mounts),
            "Dependencies": [],
            "NetworkSettings": self._network_settings(),
            "Namespace": "",
            "IsInfra": False,
            "IsService": False,
            "Config": {
                "Hostname": cfg.hostname,
                "Domainname": "",
                "User": cfg.user,
                "AttachStdin": cfg.stdin,
                "AttachStdout": False,
                "AttachStderr": False,
                "Tty": cfg.tty,
                "OpenStdin": cfg.stdin,
                "StdinOnce": cfg.stdin,
                "Env": list(cfg.env),
                "Cmd": list(cfg.command) or None,
                "Image": cfg.image_name,
                "Volumes": None,
                "WorkingDir": cfg.workdir or "/",
                "Entrypoint": " ".join(cfg.entrypoint),
                "OnBuild": None,
                "Healthcheck": dict(cfg.healthcheck) or None,
                "HealthcheckOnFailureAction": cfg.health_on_failure,
                "Labels": dict(cfg.labels) or None,
                "Annotations": dict(cfg.annotations),
                "StopSignal": cfg.stop_signal,
                "StopTimeout": cfg.stop_timeout,
                "CreateCommand": None,
                "Umask": f"{cfg.umask:04o}",
                "Secrets": [{"ID": s["id"], "Name": s["name"]} for s in cfg.secrets] or None,
                "Timezone": cfg.timezone,
                "Timeout": 0,
            },
            "HostConfig": {
                "Binds": binds,
                "Tmpfs": tmpfs,
                "AutoRemove": cfg.auto_remove,
                "NetworkMode": cfg.network,
                "PortBindings": _port_bindings(cfg.ports),
                "RestartPolicy": {"Name": cfg.restart_policy, "MaximumRetryCount": cfg.restart_retries},
                "LogConfig": {"Type": cfg.log_driver, "Config": None,
                              "Path": self.log_path if cfg.log_driver != "none" else "", "Tag": "",
                              "Size": compact_size(cfg.log_size_max)},
                "CapAdd": sorted(set(caps) - set(DEFAULT_CAPABILITIES)),
                "CapDrop": sorted(set(DEFAULT_CAPABILITIES) - set(caps)),
                "Privileged": cfg.privileged,
                "ReadonlyRootfs": cfg.read_only,
                "Init": bool(cfg.init_path),
                "SecurityOpt": [*(["no-new-privileges"] if cfg.no_new_privileges else []),
                                *(["seccomp=unconfined"] if cfg.seccomp == "unconfined" else []),
                                *([f"mask={':'.join(cfg.mask)}"] if cfg.mask else []),
                                *([f"unmask={':'.join(cfg.unmask)}"] if cfg.unmask else [])],
                "Sysctls": dict(cfg.sysctls),
                "GroupAdd": list(cfg.group_add),
                "Devices": [{"PathOnHost": d["host"], "PathInContainer": d["path"], "CgroupPermissions": d["perms"]}
                            for d in cfg.devices],
                "PidMode": _namespace_mode(cfg.namespaces.get("pid")),
                "IpcMode": _namespace_mode(cfg.namespaces.get("ipc")),
                "UTSMode": _namespace_mode(cfg.namespaces.get("uts")),
                "CgroupParent": "",
                "ShmSize": cfg.shm_size or 65536000,
                "Runtime": "oci",
                **_limits_inspect(cfg),
            },
            "LogPath": self.log_path if cfg.log_driver != "none" else "",
            "LogTag": "",
        }
        if size:
            from .files import tree_size

            data["SizeRw"] = tree_size(self.rt.layers.diff(cfg.layer_id))
            data["SizeRootFs"] = data["SizeRw"] + self.rt.image_store.get(cfg.image_id).size
        return data


def _port_bindings(ports: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for p in ports:
        out.setdefault(f"{p['container_port']}/{p['protocol']}", []).append(
            {"HostIp": p["host_ip"], "HostPort": str(p["host_port"])})
    return out


def _namespace_mode(owner: str | None) -> str:
    return "private" if not owner else "host" if owner == "host" else f"container:{owner}"


def _process_args(cfg: ContainerConfig) -> list[str]:
    """The container's process as inspect shows it (Path + Args): the init first with --init."""
    from .oci.spec import INIT_MOUNT

    args = list(cfg.entrypoint) + list(cfg.command)
    return [INIT_MOUNT, "--", *args] if cfg.init_path else args


def _is_root(user: str) -> bool:
    """Whether a `--user` value names uid 0 (an empty user is the image default, root here)."""
    return user.partition(":")[0] in ("", "0", "root")


def _limits_inspect(cfg: ContainerConfig) -> dict[str, Any]:
    """HostConfig's limit fields, Podman's names (0 / -1 when not set, as Podman prints them)."""
    from .resources import resources

    res = cfg.resources or resources({})
    mem, cpu = res.get("memory", {}), res.get("cpu", {})
    quota, period = cpu.get("quota", 0), cpu.get("period", 0)
    return {
        "OomScoreAdj": cfg.oom_score_adj or 0,
        "Memory": mem.get("limit", 0), "MemoryReservation": mem.get("reservation", 0),
        "MemorySwap": mem.get("swap", 0), "MemorySwappiness": mem.get("swappiness", -1),
        "NanoCpus": int(quota * 1_000_000_000 / period) if quota > 0 and period > 0 else 0,
        "CpuShares": cpu.get("shares", 0), "CpuPeriod": period, "CpuQuota": quota,
        "CpusetCpus": cpu.get("cpus", ""), "CpusetMems": cpu.get("mems", ""),
        "PidsLimit": res.get("pids", {}).get("limit", 0), "BlkioWeight": res.get("blockIO", {}).get("weight", 0),
        "Ulimits": [{"Name": u["type"], "Soft": u["soft"], "Hard": u["hard"]} for u in cfg.ulimits],
    }
