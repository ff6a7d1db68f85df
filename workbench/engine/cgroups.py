"""The host's cgroup set-up: which layout, where each container's cgroup lives, what it says.

Containers live in `/workbench_parent/workbench-<id>` (Podman: `/libpod_parent/libpod-<id>`)
and conmon in `/workbench_parent/conmon`, so a container's OOM kill never reaches its monitor.
On cgroup v1 each controller has its own hierarchy (`/sys/fs/cgroup/<controller>/...`), on v2
one unified tree holds every controller. Readers take a directory, so tests can point them at a
fake v2 tree.
"""

from __future__ import annotations

import functools
import os

ROOT = "/sys/fs/cgroup"
PARENT = "/workbench_parent"


@functools.lru_cache(maxsize=1)
def layout() -> str:
    """'v2' (unified), 'hybrid' (v1 controllers plus a cgroup2 mount) or 'v1'."""
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split(" - ") for line in f]
    except OSError:
        return "v1"
    v2_at_root = any(p[1].startswith("cgroup2 ") and p[0].split()[4] == ROOT for p in mounts if len(p) > 1)
    if v2_at_root:
        return "v2"
    if any(p[1].startswith("cgroup2 ") for p in mounts if len(p) > 1):
        return "hybrid"
    return "v1"


def is_v2() -> bool:
    """Whether /sys/fs/cgroup is the unified (v2) hierarchy."""
    return layout() == "v2"


def container_cgroup(ctr_id: str) -> str:
    """The container's cgroup path inside each hierarchy (the spec's `cgroupsPath`)."""
    return f"{PARENT}/workbench-{ctr_id}"


def conmon_cgroup() -> str:
    """The cgroup conmon processes are moved to, outside every container's cgroup."""
    return f"{PARENT}/conmon"


_V1_CONTROLLERS = frozenset(("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                             "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"))


@functools.lru_cache(maxsize=1)
def _v1_mounts() -> dict[str, str]:
    """v1 controller name (and `name=systemd`) -> mount point, from /proc/self/mountinfo."""
    found: dict[str, str] = {}
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.readlines()
    except OSError:
        return found
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = right.split()
        if not sep or len(fields) < 3 or fields[0] != "cgroup":
            continue
        mount_point = left.split()[4]
        for option in fields[2].split(","):
            if option in _V1_CONTROLLERS or option.startswith("name="):
                found.setdefault(option, mount_point)
    return found


def controller_dir(controller: str, cgroup: str) -> str | None:
    """The directory of `cgroup` for `controller` (v2: the unified tree), or None when the
    controller is not mounted here."""
    if is_v2():
        return os.path.join(ROOT, cgroup.lstrip("/"))
    mount_point = _v1_mounts().get(controller)
    return os.path.join(mount_point, cgroup.lstrip("/")) if mount_point else None


def v1_controllers() -> list[str]:
    """The v1 controllers mounted here (empty on v2)."""
    return [] if is_v2() else list(_v1_mounts())


def move_pid(cgroup: str, pid: int) -> None:
    """Put process `pid` into `cgroup` in every hierarchy, creating the cgroup where missing.

    A new v1 cpuset cgroup starts with no CPUs or memory nodes, so it inherits its parent's
    first. Raises OSError when the kernel refuses.
    """
    directories = [os.path.join(ROOT, cgroup.lstrip("/"))] if is_v2() else sorted(
        {os.path.join(mount, cgroup.lstrip("/")) for mount in _v1_mounts().values()})
    for directory in directories:
        procs = os.path.join(directory, "cgroup.procs")
        try:
            _write(procs, str(pid))
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            if os.path.exists(os.path.join(directory, "cpuset.cpus")):
                _inherit_cpuset(directory)
            _write(procs, str(pid))


def _inherit_cpuset(directory: str) -> None:
    """Fill an empty v1 cpuset (and its empty parents, top down) from the parent's values."""
    parent = os.path.dirname(directory)
    for name in ("cpuset.cpus", "cpuset.mems"):
        with open(os.path.join(directory, name)) as f:
            if f.read().strip():
                continue
        with open(os.path.join(parent, name)) as f:
            value = f.read().strip()
        if not value:
            _inherit_cpuset(parent)
            with open(os.path.join(parent, name)) as f:
                value = f.read().strip()
        _write(os.path.join(directory, name), value)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def containers_have_cgroups() -> bool:
    """Whether containers get a cgroup of their own (and so limits and stats): as root. Rootless
    containers stay in the user's cgroup, as rootless Podman's on cgroup v1 (delegated v2
    cgroups are not used yet)."""
    from .rootless import is_rootless

    return not is_rootless()


def cgroupless_systems() -> str:
    """Where containers get no cgroup, in messages: Podman's words on v1."""
    return "rootless systems without cgroup v2 delegation (not used yet)" if is_v2() else "cgroups V1 rootless systems"


def prime_attach_lock() -> None:
    """Start the kernel's cgroup attach lock on its slow path now, on a background thread.

    After a quiet spell, the first write to any cgroup.procs waits for an RCU grace period (the
    threadgroup rwsem turning to writer mode: ~25 ms here), and `runc create` writes one on its
    critical path. A thread that writes itself into the cgroup it is already in moves nothing but
    starts that wait at once, while the caller writes the spec and starts conmon; conmon's
    move and runc's own writes then find the lock ready (in-process `run` ~7 ms faster here).
    """
    if containers_have_cgroups():
        from .signals import start_deaf_thread

        start_deaf_thread(_rewrite_own_cgroup, "cgroup-prime")


def _rewrite_own_cgroup() -> None:
    """Write this thread into its own cgroup (v1: the `tasks` of one hierarchy; v2: this process
    into `cgroup.procs`); any refusal is fine, the write only saves time."""
    import threading

    try:
        with open("/proc/thread-self/cgroup") as f:
            entries = [line.rstrip("\n").split(":", 2) for line in f]
        if is_v2():
            target, ident = next(os.path.join(ROOT, path.lstrip("/"), "cgroup.procs")
                                 for _, names, path in entries if names == ""), os.getpid()
        else:
            mounts = _v1_mounts()
            target, ident = next(os.path.join(mounts[names], path.lstrip("/"), "tasks")
                                 for _, names, path in entries if names in mounts), threading.get_native_id()
        _write(target, str(ident))
    except (OSError, StopIteration, ValueError):
        pass


def place_conmon(pid: int) -> None:
    """Move a conmon into the conmon cgroup (as root; rootless conmon stays where it was started)."""
    if containers_have_cgroups():
        move_pid(conmon_cgroup(), pid)
