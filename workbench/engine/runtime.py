"""Runtime: opens the store, wires the parts, looks containers up, creates and removes them."""

from __future__ import annotations

import os
import re
import sys
import time

from . import events
from . import logger
from .container import Container
from .db import Database
from .errors import (AmbiguousName, ContainerExists, ContainerRemoved, InvalidArgument, NoSuchContainer,
                     WorkbenchError)
from .locks import FileLock, LockManager
from .records import NamedTuple
from .signals import parse_signal
from .state import ContainerConfig, ContainerRuntimeState, ContainerState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, Sequence, Unpack

    from .progress import ByteProgress
    from .resources import Limits
    from .images.store import Image, ImageStore
    from .storage.content import ContentStore
    from .storage.layers import LayerStore
    from .network.networks import NetworkStore
    from .secrets import SecretStore
    from .volumes import VolumeStore


log = logger.get(__name__)

DEFAULT_ROOT = "/var/lib/workbench"
DEFAULT_RUNROOT = "/run/workbench"
DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "container=podman"]
DEFAULT_STOP_TIMEOUT = 10

_ADJECTIVES = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
               "nifty", "proud", "quirky", "relaxed", "serene", "tender", "upbeat", "vivid", "witty", "zealous")
_NAMES = ("curie", "darwin", "euler", "fermi", "gauss", "hopper", "hypatia", "kepler", "lovelace", "meitner",
          "newton", "noether", "pascal", "ramanujan", "shannon", "tesla", "turing", "volta", "wu", "yalow")


class RunResult(NamedTuple):
    """The outcome of a foreground `run`."""

    exit_code: int
    stdout: bytes
    stderr: bytes


def store_paths(root: str | None = None, runroot: str | None = None) -> tuple[str, str]:
    """The graph root and run root: as given, else $WORKBENCH_ROOT and $WORKBENCH_RUNROOT, else
    the mode's defaults (root's, or the user's own in rootless mode)."""
    from . import rootless

    user = rootless.is_rootless()  # (the rootless defaults are looked up only when needed: one makes a dir)
    root = root or os.environ.get("WORKBENCH_ROOT") or (rootless.default_root() if user else DEFAULT_ROOT)
    runroot = runroot or os.environ.get("WORKBENCH_RUNROOT") or (rootless.default_runroot() if user else DEFAULT_RUNROOT)
    return os.path.abspath(root), os.path.abspath(runroot)


class Runtime:
    """The engine's entry point; every process (kernel, CLI, cleanup) opens its own on the same store."""

    def __init__(self, root: str | None = None, runroot: str | None = None, *, oci_runtime: str | None = None):
        from . import rootless

        self.rootless = rootless.is_rootless()
        self.root, self.runroot = store_paths(root, runroot)
        if self.rootless:
            rootless.check_own_store(self.root, self.runroot)
            rootless.join(self.runroot)
        self._oci_preference = oci_runtime or os.environ.get("WORKBENCH_RUNTIME") or None
        for path in (self.root, self.runroot, os.path.join(self.root, "containers"),
                     os.path.join(self.runroot, "containers")):
            os.makedirs(path, mode=0o700, exist_ok=True)
        self.exit_dir = os.path.join(self.runroot, "exits")
        os.makedirs(self.exit_dir, mode=0o700, exist_ok=True)
        self.db = Database(os.path.join(self.root, "state.db"))
        self.locks = LockManager(os.path.join(self.runroot, "locks"))
        self._content: ContentStore | None = None
        self._layers: LayerStore | None = None
        self._image_store: ImageStore | None = None
        self._oci = None
        self._conmon: str | None = None
        self._exit_watcher = None
        self._refresh_after_reboot()

    def close(self) -> None:
        if self._exit_watcher is not None:
            self._exit_watcher.close()
        self.db.close()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- parts that are only needed when containers run ------------------------------------
    @property
    def oci(self):
        if self._oci is None:
            from .oci.runc import OCIRuntime, detect_runtime

            path = detect_runtime(self._oci_preference)
            self._oci = OCIRuntime(path, os.path.join(self.runroot, os.path.basename(path)))
        return self._oci

    @property
    def content(self) -> "ContentStore":
        if self._content is None:
            from .storage.content import ContentStore

            self._content = ContentStore(self.root)
        return self._content

    @property
    def layers(self) -> "LayerStore":
        """Overlay layers; loaded on first use (it brings ctypes and mount(2)), `ps` never needs it."""
        if self._layers is None:
            from .storage.layers import LayerStore

            self._layers = LayerStore(self.root)
        return self._layers

    @property
    def image_store(self) -> "ImageStore":
        if self._image_store is None:
            from .images.store import ImageStore

            self._image_store = ImageStore(self.db, self.content, self.layers)
        return self._image_store

    @property
    def secrets(self) -> "SecretStore":
        """Secrets (`secret` commands, `--secret NAME`)."""
        from .secrets import SecretStore

        return SecretStore(self.db, self.root)

    @property
    def volumes(self) -> "VolumeStore":
        """Named and anonymous volumes (`volume` commands, `-v NAME:/path`)."""
        from .volumes import VolumeStore

        return VolumeStore(self.db, self.root)

    @property
    def networks(self) -> "NetworkStore":
        """Bridge networks and address leases (the network commands, and containers in bridge mode)."""
        from .network.networks import NetworkStore

        return NetworkStore(self.db, self.runroot)

    @property
    def exit_watcher(self):
        """The shared inotify watch on the exits directory."""
        if self._exit_watcher is None:
            from .waiting import DirWatcher

            self._exit_watcher = DirWatcher(self.exit_dir)
        return self._exit_watcher

    @property
    def oci_name(self) -> str:
        return self.oci.name

    @property
    def conmon_path(self) -> str:
        if self._conmon is None:
            from .oci.conmon import find_conmon

            self._conmon = find_conmon()
        return self._conmon

    def exit_command(self, ctr_id: str) -> list[str]:
        """What conmon runs when the container exits: `workbench container cleanup ID`, behind a
        shell that first waits for a claimant and skips it when the container is gone."""
        from .exit_command import argv

        return argv(self._program(), self.root, self.runroot, self._oci_preference, ctr_id)

    def cli(self) -> list[str]:
        """The `workbench` command line on this store, for processes that outlive this one."""
        from .exit_command import cli

        return cli(self._program(), self.root, self.runroot, self._oci_preference)

    @staticmethod
    def _program() -> list[str]:
        script = os.path.join(os.path.dirname(sys.executable), "workbench")
        return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "workbench"]

    # -- reboot ---------------------------------------------------------------------------
    def _refresh_after_reboot(self) -> None:
        """When the run root's alive marker is missing (a reboot wiped it), reset every container."""
        alive = os.path.join(self.runroot, "alive")
        if os.path.exists(alive):
            return
        with FileLock(os.path.join(self.runroot, "alive.lck")):
            if os.path.exists(alive):
                return
            for config_json, state_json in self.db.all_containers():
                config = ContainerConfig.from_json(config_json)
                st = ContainerRuntimeState.from_json(state_json)
                self.layers.unmount(config.layer_id)  # a no-op when nothing is mounted
                if st.state in (ContainerState.STOPPED, ContainerState.EXITED, ContainerState.STOPPING,
                                ContainerState.RUNNING, ContainerState.PAUSED):
                    st.state = ContainerState.EXITED
                elif st.state != ContainerState.REMOVING:
                    st.state = ContainerState.CONFIGURED
                st.pid = st.conmon_pid = 0
                st.mounted, st.mountpoint = False, ""
                self.db.save_state(config.id, st.to_json())
                if st.state == ContainerState.REMOVING or (config.auto_remove and st.state == ContainerState.EXITED):
                    try:
                        self._handle(config, st).remove(force=True)
                    except WorkbenchError as exc:
                        log.warning("removing %s after reboot: %s", config.id, exc)
            with open(alive, "w"):
                pass
            events.emit(self.runroot, events.SYSTEM, "refresh")

    # -- images ---------------------------------------------------------------------------
    def import_image(self, path: str | os.PathLike, reference: str | None = None, *,
                     changes: Sequence[str] | None = None, message: str = "",
                     progress: ByteProgress | None = None) -> Image:
        """Import a rootfs tarball as a one-layer image (`podman import`); `progress` gets the
        bytes read so far."""
        image = self.image_store.import_rootfs(os.fspath(path), reference, changes=list(changes or []),
                                               message=message, progress=progress)
        events.image(self.runroot, "import", image.id, image.names[0] if image.names else os.fspath(path))
        return image

    def build(self, context: str | os.PathLike, *, containerfile: str | None = None, tags: Sequence[str] = (),
              build_args: dict[str, str] | None = None, network: str = "bridge",
              output: Any = None) -> Image:
        """Build an image from a Containerfile in `context` (see build.py); `output(stream, bytes)`
        gets the step lines and what RUN steps print."""
        from . import build

        return build.build(self, os.fspath(context), containerfile=containerfile, tags=tags,
                           build_args=build_args, network=network, output=output)

    def images(self) -> list[Image]:
        return self.image_store.list()

    def image(self, name_or_id: str) -> Image:
        return self.image_store.get(name_or_id)

    def tag_image(self, name_or_id: str, *targets: str) -> list[str]:
        """`tag`: give the image more names; returns them fully qualified."""
        names = self.image_store.tag(name_or_id, *targets)
        self._image_events("tag", self.image_store.resolve_id(names[0]) if names else "", names)
        return names

    def untag_image(self, name_or_id: str, *targets: str) -> list[str]:
        """`untag`: remove names (every name when none is given); returns the removed ones."""
        image_id = self.image_store.resolve_id(name_or_id)
        names = self.image_store.untag(name_or_id, *targets)
        self._image_events("untag", image_id, names)
        return names

    def remove_image(self, name_or_id: str, force: bool = False) -> tuple[list[str], list[str]]:
        """`rmi`: refused while a container uses the image unless forced (which removes them)."""
        def users(image_id: str) -> list[str]:
            return [cfg["id"] for cfg, _ in self.db.all_containers() if cfg["image_id"] == image_id]

        def remove_containers(ids: list[str]) -> None:
            for ctr_id in ids:
                self.remove_container(self.container(ctr_id), force=True)

        image_id = self.image_store.resolve_id(name_or_id)
        untagged, deleted = self.image_store.remove(name_or_id, force=force, users=users,
                                                    remove_containers=remove_containers)
        self._image_events("untag", image_id, untagged)
        self._image_events("remove", image_id, [name_or_id] if deleted else [])
        return untagged, deleted

    def _image_events(self, status: str, image_id: str, names: list[str]) -> None:
        for name in names:
            events.image(self.runroot, status, image_id, name)

    # -- events -----------------------------------------------------------------------------
    def events(self, since: Any = None, until: Any = None, follow: bool = False,
               filters: Sequence[str] | dict[str, Any] | None = None) -> Iterable[dict[str, Any]]:
        """Recorded events, oldest first, as Podman's JSON documents (`Time` a datetime, plus exact
        `TimeNano`); `follow` keeps yielding new ones (see engine.events.read for since/until)."""
        found = events.read(self.runroot, since=since, until=until, follow=follow, filters=filters)
        return (event.to_record() for event in found)

    # -- stats ------------------------------------------------------------------------------
    def stats(self, containers: Sequence[str | Container] | None = None, stream: bool = False,
              interval: float = 5.0, *, all: bool = False) -> Iterable[dict[str, Any]]:
        """Resource-use records, one per container (names, IDs or Containers; default: every
        running one, `all`: every one), again every `interval` seconds with `stream`.

        Keys (Podman's ContainerStats names; numbers as ints, percentages as floats):
        ContainerID, Name; SystemNano (sample time, ns since the epoch); CPUNano, CPUSystemNano
        (CPU time used, of which in the kernel, ns); CPU (% since the previous sample, or since
        start), AvgCPU (% since start); MemUsage, MemLimit (bytes), MemPerc; NetInput, NetOutput
        (bytes received, sent); BlockInput, BlockOutput (bytes read, written); PIDs;
        ElapsedNano (wall time since start, ns). A container without processes gives zeros.
        """
        from .stats import rounds

        return (record for batch in rounds(self, containers, all=all, stream=stream, interval=interval)
                for record in batch)

    # -- containers -----------------------------------------------------------------------
    def _handle(self, config: ContainerConfig, st: ContainerRuntimeState) -> Container:
        return Container(self, config, st)

    def container(self, name_or_id: str) -> Container:
        """Look a container up by name, full ID or unique ID prefix."""
        ids = self.db.lookup_container(name_or_id)
        if not ids:
            raise NoSuchContainer(name_or_id)
        if len(ids) > 1:
            raise AmbiguousName(f'more than one result for container "{name_or_id}": '
                                f"{len(ids)} containers match")
        row = self.db.container_row(ids[0])
        if row is None:
            raise NoSuchContainer(name_or_id)
        return self._handle(ContainerConfig.from_json(row[0]), ContainerRuntimeState.from_json(row[1]))

    def latest(self) -> Container:
        """The container created last (`--latest`)."""
        everything = self.containers(sync=False)
        if not everything:
            raise WorkbenchError("no containers to get latest: no such container")
        return self.container(max(everything, key=lambda c: c.config.created).id)

    def containers(self, all: bool = True, sync: bool = True, ids: Sequence[str] | None = None) -> list[Container]:
        """Every container (or only running ones; only those of these full `ids`), oldest first,
        each synced with its exit file."""
        out = []
        for config_json, state_json in self.db.all_containers(ids):
            c = self._handle(ContainerConfig.from_json(config_json), ContainerRuntimeState.from_json(state_json))
            if sync and c.st.state in (ContainerState.RUNNING, ContainerState.PAUSED, ContainerState.STOPPING):
                try:
                    c.sync()
                except ContainerRemoved:
                    continue
            if all or c.st.state == ContainerState.RUNNING:
                out.append(c)
        return out

    def _namespace_owner(self, kind: str, value: str) -> str:
        """"host", or the ID of the container whose `kind` namespace a `--pid/--ipc/--uts` value joins."""
        if value == "host":
            return "host"
        if not value.startswith("container:"):
            raise InvalidArgument(f'invalid --{kind} "{value}": use private, host or container:NAME')
        return self.container(value.partition(":")[2]).id

    def _unique_name(self) -> str:
        taken = {name for _, name in self.db.container_ids()}
        for _ in range(100):
            name = f"{_pick(_ADJECTIVES)}_{_pick(_NAMES)}"
            if name not in taken:
                return name
        return f"{_pick(_ADJECTIVES)}_{_pick(_NAMES)}_{os.urandom(3).hex()}"

    def create_container(self, image: str | Image, command: Sequence[str] | None = None, *,
                         name: str | None = None, env: dict[str, str] | Iterable[str] | None = None,
                         workdir: str | None = None, user: str | None = None,
                         entrypoint: str | Sequence[str] | None = None, stop_signal: str | int | None = None,
                         stop_timeout: int | None = None, remove: bool = False,
                         labels: dict[str, str] | None = None, network: str | Sequence[str] = "none",
                         tty: bool = False, stdin: bool = False, hostname: str | None = None,
                         publish: Sequence[str] = (), publish_all: bool = False, dns: Sequence[str] = (),
                         dns_search: Sequence[str] = (), dns_options: Sequence[str] = (),
                         add_hosts: Sequence[str] = (), ip: str = "", mac_address: str = "",
                         pid: str = "", ipc: str = "", uts: str = "", aliases: Sequence[str] = (),
                         oom_score_adj: int | None = None, ulimits: Sequence[str] = (),
                         shm_size: int | str | None = None, volumes: Sequence[str] = (),
                         mounts: Sequence[str] = (), tmpfs: Sequence[str] = (), read_only: bool = False,
                         cap_add: Sequence[str] = (), cap_drop: Sequence[str] = (), init: bool = False,
                         init_path: str | None = None, privileged: bool = False, userns: str = "",
                         restart: str | None = None, volumes_from: Sequence[str] = (),
                         log_driver: str | None = None, log_opts: Sequence[str] = (),
                         health_cmd: str | None = None, health_interval: str | float | None = None,
                         health_timeout: str | float | None = None, health_start_period: str | float | None = None,
                         health_retries: int | None = None, health_on_failure: str | None = None,
                         no_healthcheck: bool = False, annotations: dict[str, str] | None = None,
                         env_host: bool = False, unsetenv: Sequence[str] = (), unsetenv_all: bool = False,
                         expose: Sequence[str] = (), remove_image: bool = False,
                         security_opt: Sequence[str] = (), sysctl: Sequence[str] = (), umask: str | None = None,
                         group_add: Sequence[str] = (), tz: str | None = None, secrets: Sequence[str] = (),
                         devices: Sequence[str] = (), **limits: Unpack[Limits]) -> Container:
        """Record a new container (state `created`); no process runs until init/start.

        `network`: "none", "host", "bridge" (the default network), "container:NAME" (share that
        container's namespace), or network names (a list, or one comma-separated string).
        `publish`: Podman's `-p` values; `pid`/`ipc`/`uts`: "container:NAME" to share those.
        `limits`: cgroup limits (memory="256m", cpus=0.5, pids_limit=100, ...: see resources.Limits);
        `ulimits`: "nofile=1024:2048" values; `shm_size`: the size of /dev/shm.
        `volumes`, `mounts`, `tmpfs`: Podman's -v, --mount and --tmpfs values (bind mounts of host
        paths, tmpfs); `read_only`: a read-only root file system; `cap_add`/`cap_drop`:
        capabilities ("NET_ADMIN", "CAP_CHOWN", "ALL") added to or dropped from Podman's defaults.
        `init`: catatonit (or `init_path`) runs as PID 1, forwarding signals and reaping zombies.
        `privileged`: every capability, the host's devices, no seccomp filter, nothing masked (as
        Podman; the container is then as strong as root on the host). `restart`: the restart
        policy, "no", "on-failure[:N]", "always" or "unless-stopped" (see restart_policy.py).
        `volumes_from`: "NAME[:ro|rw]" values: the bind mounts and volumes of those containers, at
        the same destinations (the container's own mounts first). `log_driver`: "k8s-file" (the
        default) or "none" (no log: `logs` has nothing to show); `log_opts`: "max-size=10m".
        `health_cmd` ("pg_isready", or '["CMD", ...]') with `health_interval` ("30s", "disable"),
        `health_timeout`, `health_start_period`, `health_retries` and `health_on_failure` (none,
        kill, restart, stop): a healthcheck over the image's (see health.py); `no_healthcheck`: none.
        `env_host`: this process's environment under `env`; `unsetenv`: variables of the defaults
        or the image dropped (`unsetenv_all`: all of them); `expose`: ports ("8080", "53/udp",
        "9000-9002") that `publish_all` publishes as the image's EXPOSE would. `remove_image`
        (with `remove`): the image goes too once the container is removed after its exit (--rmi).
        `security_opt` ("no-new-privileges", "seccomp=unconfined", "seccomp=PROFILE.json",
        "mask=/p", "unmask=ALL"), `sysctl` ("net.ipv4.ip_forward=1"), `umask` ("0077"),
        `group_add` (gids or group names) and `tz` ("Europe/Berlin", "local"): see process_options.
        `secrets`: "NAME[,type=mount|env][,target=...][,uid=,gid=,mode=]" (see secrets.py).
        `devices`: "HOST[:CONTAINER][:rwm]": host device nodes (or directories of them)."""
        from . import cgroups, resources
        from . import mounts as mount_options
        from . import restart_policy as restart_policies
        from .oci.spec import DEFAULT_CAPABILITIES, capabilities

        restart_policy, restart_retries = restart_policies.parse(restart)
        if remove and restart_policy not in ("", "no"):
            raise InvalidArgument('the --rm option conflicts with --restart, when the restartPolicy is not "" and "no"')
        log_driver, log_size_max = _log_options(log_driver, log_opts)
        limit_set = resources.resources(limits)
        if limits and not cgroups.containers_have_cgroups():
            log.warning("Resource limits are not supported and ignored on %s", cgroups.cgroupless_systems())
            limit_set = {}
        rlimits = [resources.parse_ulimit(u) for u in ulimits]
        oom_adj = resources.oom_score_adj(oom_score_adj) if oom_score_adj is not None else None
        shm = resources.shm_size(shm_size) if shm_size is not None else 0
        own_mounts = mount_options.parse(volumes, mounts, tmpfs, read_only)
        own_mounts += self._mounts_from(volumes_from, {m["destination"] for m in own_mounts})
        caps = capabilities(cap_add, cap_drop)
        if privileged:
            from .oci.spec import privileged_capabilities

            caps = sorted(set(capabilities(["ALL"], cap_drop)) & set(privileged_capabilities()))  # less --cap-drop
        init_binary = _init_binary(init_path) if init or init_path else ""
        userns = _userns_mode(userns)
        if userns == "keep-id" and user is None:  # as Podman: the user's own uid and gid inside
            from .rootless import host_gid, host_uid

            user = f"{host_uid()}:{host_gid()}"
        img = self.image_store.get(image) if isinstance(image, str) else image
        image_cfg = img.container_config
        from . import health

        healthcheck, on_failure = health.config(
            image_cfg.get("Healthcheck"), cmd=health_cmd, interval=health_interval, timeout=health_timeout,
            start_period=health_start_period, retries=health_retries, on_failure=health_on_failure,
            disabled=no_healthcheck)
        if name is not None:
            validate_name(name)
            row = self.db.query("SELECT id FROM containers WHERE name = ?", (name,))
            if row:
                raise ContainerExists(name, row[0][0])
        from .network import attach

        if expose:
            from .network.ports import expose_ports

            image_cfg = {**image_cfg, "ExposedPorts": {**(image_cfg.get("ExposedPorts") or {}), **expose_ports(expose)}}
        net = attach.options(self, network, publish, publish_all, image_cfg, ip, mac_address, add_hosts)
        namespaces = {kind: self._namespace_owner(kind, value) for kind, value in
                      (("pid", pid), ("ipc", ipc), ("uts", uts)) if value and value != "private"}
        from . import process_options as process

        confinement = process.security_opts(security_opt)
        process_fields = dict(
            sysctls=process.sysctls(sysctl, own_network=net["network"] not in ("host",)
                                    and not net["network"].startswith("container:"),
                                    own_ipc="ipc" not in namespaces, own_uts="uts" not in namespaces),
            umask=process.umask(umask), group_add=list(group_add), devices=process.devices(devices), **confinement)
        process.timezone(tz)  # checked now; its file is found again at each init
        process_fields["timezone"] = tz or ""
        if secrets:
            from .secrets import parse_use

            process_fields["secrets"] = [parse_use(self.secrets, spec) for spec in secrets]
        for host_name in ([hostname] if hostname is not None else []) + list(aliases):
            _validate_hostname(host_name)
        if aliases and net["network"] != "bridge":
            raise InvalidArgument(f'--network-alias needs a bridge network, not network mode "{net["network"]}"')
        if isinstance(entrypoint, str):
            entrypoint_list = [entrypoint] if entrypoint else []
        elif entrypoint is not None:
            entrypoint_list = list(entrypoint)
        else:
            entrypoint_list = list(image_cfg.get("Entrypoint") or [])
        if command is not None and len(command) > 0:
            cmd = list(command)
        elif entrypoint is not None:
            cmd = []
        else:
            cmd = list(image_cfg.get("Cmd") or [])
        if not cmd and not entrypoint_list:
            raise InvalidArgument("no command or entrypoint provided, and no CMD or ENTRYPOINT from image")
        ctr_id = os.urandom(32).hex()
        dropped = set(unsetenv)
        base_env = [] if unsetenv_all else [e for e in _merge_env(DEFAULT_ENV, image_cfg.get("Env") or [])
                                             if e.split("=", 1)[0] not in dropped]
        env_list = _merge_env(base_env, dict(os.environ) if env_host else None, env)
        env_list.append(f"HOSTNAME={hostname or ctr_id[:12]}")
        signal = parse_signal(stop_signal) if stop_signal is not None else (
            parse_signal(image_cfg["StopSignal"]) if image_cfg.get("StopSignal") else 15)
        config = ContainerConfig(
            id=ctr_id, name=name or self._unique_name(), image_id=img.id,
            image_name=img.names[0] if img.names else img.id,
            command=cmd, entrypoint=entrypoint_list, env=env_list,
            workdir=workdir or image_cfg.get("WorkingDir") or "/", user=user if user is not None else image_cfg.get("User", ""),
            stop_signal=signal, stop_timeout=DEFAULT_STOP_TIMEOUT if stop_timeout is None else int(stop_timeout),
            auto_remove=remove, labels={**(image_cfg.get("Labels") or {}), **(labels or {})},
            hostname=hostname or ctr_id[:12], layer_id=ctr_id, created=time.time(),
            tty=bool(tty), stdin=bool(stdin), dns=list(dns), dns_search=list(dns_search),
            dns_options=list(dns_options), add_hosts=list(add_hosts), ip=ip, mac_address=mac_address,
            namespaces=namespaces, aliases=list(aliases), resources=limit_set, ulimits=rlimits,
            oom_score_adj=oom_adj, shm_size=shm, mounts=own_mounts, read_only=bool(read_only),
            capabilities=[] if caps == sorted(DEFAULT_CAPABILITIES) else caps,  # []: the defaults (a smaller row)
            init_path=init_binary, privileged=bool(privileged), userns=userns, create_workdir=not workdir,
            restart_policy=restart_policy, restart_retries=restart_retries, log_driver=log_driver,
            log_size_max=log_size_max, healthcheck=healthcheck, health_on_failure=on_failure,
            annotations=dict(annotations or {}), remove_image=bool(remove_image), **process_fields, **net,
        )
        if workdir and not workdir.startswith("/"):
            raise InvalidArgument(f'workdir "{workdir}" must be an absolute path')
        made_volumes = self._volumes_for(config.mounts)
        try:
            self.layers.create(config.layer_id, writable=True)
            os.makedirs(os.path.join(self.root, "containers", ctr_id, "userdata"), mode=0o700)
            with self.db.transaction() as cur:
                self.db.add_layer(cur, config.layer_id, img.layers[-1], None, 0, "container")
                self.db.add_container(cur, ctr_id, config.name, config.to_json(),
                                      ContainerRuntimeState().to_json(), config.created)
        except BaseException:
            import shutil

            self.layers.remove(config.layer_id)
            shutil.rmtree(os.path.join(self.root, "containers", ctr_id), ignore_errors=True)
            for volume in made_volumes:
                self.volumes.remove(volume)
            raise
        c = self._handle(config, ContainerRuntimeState())
        events.container(c, "create")
        return c

    def _mounts_from(self, specs: Sequence[str], taken: set[str]) -> list[dict[str, Any]]:
        """The mounts `--volumes-from` shares, at destinations not `taken` yet (the first wins)."""
        from . import mounts as mount_options

        out = []
        for spec in specs:
            name, _, options = spec.partition(":")
            for m in mount_options.shared(spec, options, self.container(name).config.mounts):
                if m["destination"] not in taken:
                    taken.add(m["destination"])
                    out.append(m)
        return out

    def _volumes_for(self, mounts: list[dict[str, Any]]) -> list[str]:
        """Fill in the sources of volume mounts, making the volumes that do not exist yet (an
        anonymous one gets a random name); returns the names of those made."""
        made = []
        store = self.volumes
        for m in mounts:
            if "volume" not in m:
                continue
            if m["volume"] and store.exists(m["volume"]):
                volume = store.get(m["volume"])
            else:
                volume = store.create(m["volume"] or None, anonymous=not m["volume"])
                made.append(volume.name)
            m["volume"], m["source"] = volume.name, volume.mountpoint
        return made

    def remove_container(self, c: Container | str, force: bool = False, timeout: int | None = None, *,
                         volumes: bool = False) -> None:
        """Remove a container; `volumes` also removes its anonymous volumes (`rm -v`)."""
        handle = self.container(c) if isinstance(c, str) else c
        handle.remove(force=force, timeout=timeout, volumes=volumes)

    def run(self, image: str | Image, command: Sequence[str] | None = None, *, detach: bool = False,
            remove: bool = False, **options: Any) -> RunResult | Container:
        """Create and start; detached returns the Container, else waits and returns its output."""
        c = self.create_container(image, command, remove=remove, **options)
        if detach:
            with c.removing_on_failure(remove):
                c.start()
            return c
        with c.claim_cleanup():
            with c.removing_on_failure(remove):
                c.start()
            code = c.wait()
            from .logs import split_streams

            stdout, stderr = split_streams(c.log_path) if os.path.exists(c.log_path) else (b"", b"")
            if remove:
                try:
                    c.remove(force=True)
                except ContainerRemoved:
                    pass
        return RunResult(code, stdout, stderr)


def _log_options(driver: str | None, options: Sequence[str]) -> tuple[str, int]:
    """`--log-driver` and `--log-opt` values as (driver, most bytes of the log; 0: no limit)."""
    driver = driver or "k8s-file"
    if driver in ("journald", "passthrough", "passthrough-tty"):
        raise InvalidArgument(f'the log driver "{driver}" is not supported here: use k8s-file (the default) or none')
    if driver not in ("k8s-file", "none"):
        raise InvalidArgument(f'invalid log driver "{driver}": use k8s-file (the default) or none')
    size_max = 0
    for option in options:
        key, sep, value = option.partition("=")
        if key != "max-size" or not sep:
            raise InvalidArgument(f'invalid log option "{option}": the log driver {driver} takes max-size=SIZE')
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgt]?)b?", value.strip(), re.IGNORECASE)
        if not match:  # decimal units, as Podman's max-size: 1k is 1000 bytes
            raise InvalidArgument(f"invalid size: '{value}'")
        size_max = int(float(match[1]) * 1000 ** ("kmgt".index(match[2].lower()) + 1 if match[2] else 0))
    return driver, size_max


def _pick(words: tuple[str, ...]) -> str:
    """A random word (os.urandom: the `random` module costs the CLI a few ms to import)."""
    return words[int.from_bytes(os.urandom(2), "little") % len(words)]


def _validate_hostname(hostname: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,62})", hostname):
        raise InvalidArgument(f'invalid host name "{hostname}": letters, digits, "." and "-", at most 63')


#: Where Podman's catatonit lives (Debian's podman links it there), then Debian's own path.
INIT_PATHS = ("/usr/libexec/podman/catatonit", "/usr/bin/catatonit")


def _userns_mode(userns: str) -> str:
    """--userns: "" (host, the default) or "keep-id" (rootless only, with enough subordinate ids)."""
    if userns in ("", "host"):
        return ""
    if userns != "keep-id":
        raise InvalidArgument(f'--userns "{userns}": only host and keep-id are supported')
    from .rootless import is_rootless, keep_id_maps

    if not is_rootless():
        raise InvalidArgument("keep-id is only supported in rootless mode")
    keep_id_maps()  # says what is missing
    return userns


def _init_binary(path: str | None) -> str:
    """The init binary for --init: `path`, else catatonit; it must be an executable file."""
    candidates = [path] if path else list(INIT_PATHS)
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    if path:
        raise InvalidArgument(f"init binary {path} is not an executable file")
    raise InvalidArgument("--init needs catatonit: install it (apt-get install catatonit) or give --init-path")


def validate_name(name: str) -> None:
    if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", name):
        raise InvalidArgument(f"container name {name!r} is invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")


def _merge_env(*layers: Any) -> list[str]:
    """Later layers override earlier ones, key by key, keeping first-seen order."""
    merged: dict[str, str] = {}
    for layer in layers:
        if not layer:
            continue
        items = layer.items() if isinstance(layer, dict) else (
            (e.split("=", 1)[0], e.split("=", 1)[1] if "=" in e else "") for e in layer)
        for key, value in items:
            merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]
