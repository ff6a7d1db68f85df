"""Container states, the one table of legal operations, and the records kept in the DB."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from .errors import ContainerStateError


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
    "attach": (frozenset({S.RUNNING}), "can only attach to created or running containers" + _IMPROPER),
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


@dataclass
class ContainerConfig:
    """What the user asked for at create time; immutable after create."""

    id: str
    name: str
    image_id: str
    image_name: str
    command: list[str]
    entrypoint: list[str]
    env: list[str]
    workdir: str
    user: str
    stop_signal: int = 15
    stop_timeout: int = 10
    auto_remove: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    network: str = "none"
    hostname: str = ""
    layer_id: str = ""
    created: float = 0.0
    image_config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))  # fields are JSON values already; asdict's deep copy is slow

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ContainerConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class ContainerRuntimeState:
    """What changes as the container lives; saved after every operation."""

    state: ContainerState = S.CONFIGURED
    pid: int = 0
    conmon_pid: int = 0
    exit_code: int = 0
    exited: bool = False
    oom_killed: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    error: str = ""
    stopped_by_user: bool = False
    mounted: bool = False
    mountpoint: str = ""
    restart_count: int = 0
    checked_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["state"] = self.state.name
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ContainerRuntimeState":
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["state"] = ContainerState[values.get("state", "CONFIGURED")]
        return cls(**values)
