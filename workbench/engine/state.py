"""Container states, the one table of legal operations, and the records kept in the DB."""

from __future__ import annotations

import enum

from .errors import ContainerStateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ContainerState(str, enum.Enum):
    """libpod's states; the value is the user-facing string Podman prints."""

    UNKNOWN = "unknown"
    CONFIGURED = "created"  # in the store, not in the OCI runtime
    CREATED = "initialized"  # conmon + `runc create` done, not started
    RUNNING = "running"
    STOPPED = "stopped"  # exited, not yet cleaned up
    PAUSED = "paused"
    EXITED = "exited"  # exited and cleaned up
    REMOVING = "removing"
    STOPPING = "stopping"

    def __str__(self) -> str:
        return self.value


S = ContainerState

# operation -> (states in which it is legal, Podman's message when it is not).
# The message is formatted with id= and state=.
_IMPROPER = ": container state improper"
TRANSITIONS: dict[str, tuple[frozenset[ContainerState], str]] = {
    "init": (frozenset({S.CONFIGURED, S.STOPPED, S.EXITED}),
             "container {id} has already been created in runtime" + _IMPROPER),
    "start": (frozenset({S.CONFIGURED, S.CREATED, S.STOPPED, S.EXITED}),
              "container {id} must be in Created or Stopped state to be started" + _IMPROPER),
    "stop": (frozenset({S.CREATED, S.RUNNING, S.STOPPING}),
             "container {id} is running or paused, refusing to clean up" + _IMPROPER),
    "kill": (frozenset({S.RUNNING, S.STOPPING, S.PAUSED}),
             "can only kill running containers. {id} is in state {state}" + _IMPROPER),
    "pause": (frozenset({S.RUNNING}), '"{state}" is not running, can\'t pause' + _IMPROPER),
    "unpause": (frozenset({S.PAUSED}), '"{id}" is not paused, can\'t unpause' + _IMPROPER),
    "restart": (frozenset({S.CONFIGURED, S.CREATED, S.RUNNING, S.STOPPED, S.EXITED}),
                "unable to restart a container in a paused or unknown state" + _IMPROPER),
    "cleanup": (frozenset({S.CONFIGURED, S.CREATED, S.STOPPED, S.STOPPING, S.EXITED}),
                "container {id} is running or paused, refusing to clean up" + _IMPROPER),
    "remove": (frozenset({S.CONFIGURED, S.CREATED, S.STOPPED, S.EXITED, S.REMOVING}),
               "cannot remove container {id} as it is {state} - running or paused containers "
               "cannot be removed without force" + _IMPROPER),
    "exec": (frozenset({S.RUNNING}), "can only create exec sessions on running containers" + _IMPROPER),
    "attach": (frozenset({S.CREATED, S.RUNNING}), "can only attach to created or running containers" + _IMPROPER),
    "top": (frozenset({S.RUNNING, S.PAUSED}), "top can only be used on running containers" + _IMPROPER),
    "update": (frozenset({S.CREATED, S.RUNNING, S.PAUSED}),
               "container {id} is {state}: only a created, running or paused container's limits can be updated"
               + _IMPROPER),
}

#: States in which a container has processes (conmon and maybe the workload).
ACTIVE_STATES = frozenset({S.CREATED, S.RUNNING, S.PAUSED, S.STOPPING})


def check(operation: str, ctr_id: str, state: ContainerState) -> None:
    """Raise ContainerStateError unless `operation` is legal in `state`."""
    allowed, message = TRANSITIONS[operation]
    if state not in allowed:
        raise ContainerStateError(message.format(id=ctr_id, state=state.value))


def is_legal(operation: str, state: ContainerState) -> bool:
    """Whether `operation` is legal in `state` (no exception)."""
    return state in TRANSITIONS[operation][0]


class Record:
    """A plain record of JSON-able fields; `_DEFAULTS` names them (dataclasses cost every CLI start 10 ms)."""

    __slots__ = ()
    _DEFAULTS: dict[str, Any] = {}

    def __init__(self, **values: Any):
        unknown = set(values) - set(self._DEFAULTS)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(unknown)}")
        for name, default in self._DEFAULTS.items():
            if name in values:
                value = values[name]
            elif default is REQUIRED:
                raise TypeError(f"{type(self).__name__}: missing field {name!r}")
            else:
                value = default.copy() if isinstance(default, (dict, list)) else default
            setattr(self, name, value)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._DEFAULTS}

    @classmethod
    def from_json(cls, data: dict[str, Any]):
        return cls(**{k: v for k, v in data.items() if k in cls._DEFAULTS})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_json() == other.to_json()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.to_json().items())})"


REQUIRED = object()


class ContainerConfig(Record):
    """What the user asked for at create time; only `update` changes it (resources) afterwards."""

    _DEFAULTS = {
        "id": REQUIRED, "name": REQUIRED, "image_id": REQUIRED, "image_name": REQUIRED,
        "command": REQUIRED, "entrypoint": REQUIRED, "env": REQUIRED, "workdir": REQUIRED, "user": REQUIRED,
        "stop_signal": 15, "stop_timeout": 10, "auto_remove": False, "labels": {}, "annotations": {},
        "network": "none", "hostname": "", "layer_id": "", "created": 0.0, "image_config": {},
        "tty": False, "stdin": False, "networks": [], "ports": [], "dns": [], "dns_search": [], "dns_options": [],
        "add_hosts": [], "mac_address": "", "ip": "", "namespaces": {}, "aliases": [],
        "resources": {}, "ulimits": [], "oom_score_adj": None, "shm_size": 0,
        "mounts": [], "read_only": False, "capabilities": [], "init_path": "", "privileged": False,
        "userns": "", "network_options": {}, "create_workdir": True, "restart_policy": "", "restart_retries": 0,
        "log_driver": "k8s-file", "log_size_max": 0, "healthcheck": {}, "health_on_failure": "none",
        "remove_image": False, "no_new_privileges": False, "seccomp": "", "mask": [], "unmask": [],
        "sysctls": {}, "umask": 0o022, "group_add": [], "timezone": "", "secrets": [],
        "devices": [],
    }
    __slots__ = tuple(_DEFAULTS)
    id: str
    name: str
    image_id: str
    image_name: str
    command: list[str]
    entrypoint: list[str]
    env: list[str]
    workdir: str
    user: str
    stop_signal: int
    stop_timeout: int
    auto_remove: bool
    labels: dict[str, str]
    annotations: dict[str, str]
    network: str
    hostname: str
    layer_id: str
    created: float
    image_config: dict[str, Any]
    tty: bool
    stdin: bool
    networks: list[str]  # bridge mode: the networks joined, in order (the first has the default route)
    ports: list[dict[str, Any]]  # PortMapping fields
    dns: list[str]
    dns_search: list[str]
    dns_options: list[str]
    add_hosts: list[str]  # "name:ip"
    mac_address: str
    ip: str
    namespaces: dict[str, str]  # "pid" / "ipc" / "uts" -> the ID of the container whose namespace is joined
    aliases: list[str]  # more names its network peers know it by (--network-alias)
    resources: dict[str, Any]  # OCI linux.resources: memory, cpu, pids, blockIO (changed by update)
    ulimits: list[dict[str, Any]]  # OCI process.rlimits
    oom_score_adj: int | None
    shm_size: int  # bytes of /dev/shm; 0: the default
    mounts: list[dict[str, Any]]  # the user's OCI mounts (-v, --mount, --tmpfs, --read-only's tmpfs)
    read_only: bool  # a read-only root file system
    capabilities: list[str]  # the bounding set ("CAP_..."); empty: Podman's defaults (older configs)
    init_path: str  # --init: the init binary mounted at /run/podman-init as PID 1; "": none
    privileged: bool  # --privileged: every capability, the host's devices, no seccomp, nothing masked
    userns: str  # "": the engine's own user namespace; "keep-id": a nested one, the user as itself (rootless)
    network_options: dict[str, Any]  # slirp4netns:OPTS (allow_host_loopback, mtu, cidr, enable_ipv6)
    create_workdir: bool  # the workdir is the image's, made at init when missing; one given by -w must exist
    restart_policy: str  # "", "no", "on-failure", "always", "unless-stopped" (restart_policy.py)
    restart_retries: int  # on-failure's most restarts; 0: no limit
    log_driver: str  # "k8s-file" (conmon writes <bundle>/ctr.log) or "none"
    log_size_max: int  # --log-opt max-size: conmon empties the log above it; 0: no limit
    healthcheck: dict[str, Any]  # Podman's Config.Healthcheck (Test, Interval, ...: health.py); {}: none
    health_on_failure: str  # none, kill, restart or stop, once unhealthy
    remove_image: bool  # --rmi: the image goes when the container is removed after its exit
    no_new_privileges: bool  # --security-opt no-new-privileges (process_options.py, as the fields below)
    seccomp: str  # "": the default profile; "unconfined"; or a profile's JSON text
    mask: list[str]  # paths masked besides the defaults
    unmask: list[str]  # default masked or read-only paths left alone ("ALL": all)
    sysctls: dict[str, str]
    umask: int
    group_add: list[str]  # supplementary groups: gids or names in the container's /etc/group
    timezone: str  # --tz: a zone ("Asia/Tokyo", "local") whose host file is mounted at /etc/localtime
    secrets: list[dict[str, Any]]  # --secret: name, id, type (mount, env), target, uid, gid, mode
    devices: list[dict[str, str]]  # --device: host, path (in the container), perms (rwm)


class ContainerRuntimeState(Record):
    """What changes as the container lives; saved after every operation."""

    _DEFAULTS = {
        "state": S.CONFIGURED, "pid": 0, "conmon_pid": 0, "exit_code": 0, "exited": False, "oom_killed": False,
        "started_at": 0.0, "finished_at": 0.0, "error": "", "stopped_by_user": False, "mounted": False,
        "mountpoint": "", "restart_count": 0, "mount_count": 0, "netns": "", "network_status": {},
        "slirp_pid": 0, "health_pid": 0, "health_started": 0,
    }
    __slots__ = tuple(_DEFAULTS)
    state: ContainerState
    pid: int
    conmon_pid: int
    exit_code: int
    exited: bool
    oom_killed: bool
    started_at: float
    finished_at: float
    error: str
    stopped_by_user: bool
    mounted: bool
    mountpoint: str
    restart_count: int
    mount_count: int
    netns: str  # bind-mounted network namespace (bridge mode), while set up
    network_status: dict[str, dict[str, Any]]  # network -> ip, prefix, gateway, mac, ifname, host_ifname
    slirp_pid: int  # slirp4netns mode: the slirp4netns process, while set up
    health_pid: int  # the healthcheck monitor (health.py), while running
    health_started: int  # when it started (/proc/PID/stat): a later process with its pid is not it

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        data["state"] = self.state.name
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ContainerRuntimeState":
        values = {k: v for k, v in data.items() if k in cls._DEFAULTS}
        values["state"] = ContainerState[values.get("state", "CONFIGURED")]
        return cls(**values)
