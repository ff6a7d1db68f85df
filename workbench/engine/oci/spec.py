"""OCI runtime spec (config.json) with Podman 4.3's defaults."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from ..cgroups import container_cgroup
from ..errors import InvalidArgument
from ..records import NamedTuple

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: Debian's containers.conf default_capabilities (what podman 4.3.1 applies here).
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
)

#: Capability names by number (linux/capability.h).
CAPABILITY_BITS = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)


def capabilities(add: Sequence[str] = (), drop: Sequence[str] = ()) -> list[str]:
    """The bounding set of a container, as Podman: the defaults, plus `add`, minus `drop`; "ALL"
    in `add` means every capability, in `drop` none but what `add` names. Names with or without
    "CAP_", any case; an unknown one is an error."""
    def names(values: Sequence[str]) -> set[str]:
        out = set()
        for value in values:
            name = value.strip().upper()
            if name == "ALL":
                out.add("ALL")
                continue
            name = name if name.startswith("CAP_") else "CAP_" + name
            if name[4:] not in CAPABILITY_BITS:
                raise InvalidArgument(f'unknown capability "{value}"')
            out.add(name)
        return out
    added, dropped = names(add), names(drop)
    if "ALL" in dropped:
        return sorted(added - {"ALL"})
    base = {"CAP_" + name for name in CAPABILITY_BITS} if "ALL" in added else set(DEFAULT_CAPABILITIES) | added
    return sorted(base - dropped)


def privileged_capabilities() -> list[str]:
    """What --privileged gets, as Podman: every capability of our own bounding set (a sandbox may
    lack some; they cannot be given), up to CAP_BPF, the last one runc knows here."""
    with open("/proc/self/status") as f:
        bounding = int(next(line.split()[1] for line in f if line.startswith("CapBnd:")), 16)
    known = CAPABILITY_BITS[:CAPABILITY_BITS.index("BPF") + 1]
    return sorted("CAP_" + name for bit, name in enumerate(known) if bounding >> bit & 1)


#: What --privileged leaves out of the host's /dev: what the runtime mounts there itself.
_PRIVATE_DEV = {"/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/console"}


def host_devices(root: str = "/dev") -> list[dict]:
    """The host's device nodes under `root` as OCI `linux.devices` (--privileged: all of /dev;
    --device: one node, or a directory of them), symlinks below `root` left out."""
    import os
    import stat

    def entry(path: str, st: os.stat_result) -> dict | None:
        kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else None
        return kind and {"path": path, "type": kind, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                         "fileMode": st.st_mode & 0o7777, "uid": st.st_uid, "gid": st.st_gid}

    try:
        single = entry(root, os.stat(root))
    except OSError:
        return []
    if single:
        return [single]
    devices = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if os.path.join(directory, d) not in _PRIVATE_DEV)
        for name in sorted(files):
            path = os.path.join(directory, name)
            if path in _PRIVATE_DEV:
                continue
            try:
                found = entry(path, os.lstat(path))
            except OSError:
                continue
            if found:
                devices.append(found)
    return devices


MASKED_PATHS = (
    "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/fs/selinux", "/sys/dev/block",
)
READONLY_PATHS = ("/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

PIDS_LIMIT = 2048
SHM_SIZE = 64 * 1024 * 1024  # Podman's size=65536k
INIT_MOUNT = "/run/podman-init"  # where --init's binary is mounted (Podman's path)


class SpecInput(NamedTuple):
    """What the spec generator needs to know about one container."""

    ctr_id: str
    rootfs: str
    args: list[str]
    env: list[str]
    cwd: str
    uid: int
    gid: int
    additional_gids: list[int]
    hostname: str
    stop_signal: int
    auto_remove: bool
    created: float
    bind_files: dict[str, str]  # container path -> host file (hosts, hostname, resolv.conf, .containerenv)
    annotations: dict[str, str] | None = None
    terminal: bool = False
    namespaces: dict[str, str] | None = None  # kind -> path to join, "" = new; None = all new
    cgroup_v2: bool = False
    seccomp: dict | None = None
    resources: dict | None = None  # OCI memory/cpu/pids/blockIO; None: the default pids limit only
    rlimits: list[dict] | None = None
    oom_score_adj: int | None = None
    shm_size: int = SHM_SIZE
    capabilities: Sequence[str] = DEFAULT_CAPABILITIES  # the bounding set
    mounts: Sequence[dict] = ()  # the user's: -v, --mount, --tmpfs (see mounts.py)
    read_only: bool = False
    init_path: str = ""  # --init: mounted at INIT_MOUNT, run as PID 1 before the command
    privileged: bool = False  # --privileged: the host's devices, /sys and cgroups writable, nothing masked
    cgroups: bool = True  # False: no cgroup of its own (rootless without a delegated cgroup: no limits)
    tty_gid: int | None = 5  # the group of /dev/pts terminals; None where gid 5 is not mapped (rootless)
    id_maps: tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]] | None = None  # a user namespace of
    # its own: uid and gid maps (inside, outside, count), as --userns=keep-id makes
    bind_sys: bool = False  # /sys bound from the host: the container's user namespace does not own its
    # network namespace (rootless keep-id, or the host's network), so it may not mount a sysfs
    umask: int = 0o022
    sysctls: dict[str, str] | None = None  # the user's, over the defaults
    no_new_privileges: bool = False
    mask: Sequence[str] = ()  # masked besides the defaults
    devices: Sequence[dict] = ()  # --device: OCI linux.devices entries
    device_rules: Sequence[dict] = ()  # and the cgroup rules allowing them
    unmask: Sequence[str] = ()  # default masked or read-only paths left alone; "ALL": all of them


def generate(spec_in: SpecInput) -> dict:
    """The config.json for `runc create`."""
    caps = list(spec_in.capabilities)
    # A non-root user keeps the bounding set but gets no effective/permitted capabilities.
    effective = caps if spec_in.uid == 0 else []
    created = datetime.datetime.fromtimestamp(spec_in.created, datetime.timezone.utc)
    annotations = {
        "io.container.manager": "workbench",
        "io.kubernetes.cri-o.Created": created.isoformat().replace("+00:00", "Z"),
        "io.kubernetes.cri-o.TTY": str(spec_in.terminal).lower(),
        "io.podman.annotations.autoremove": "TRUE" if spec_in.auto_remove else "FALSE",
        "io.podman.annotations.init": "TRUE" if spec_in.init_path else "FALSE",
        "io.podman.annotations.privileged": "TRUE" if spec_in.privileged else "FALSE",
        "io.podman.annotations.publish-all": "FALSE",
        "org.opencontainers.image.stopSignal": str(spec_in.stop_signal),
        **(spec_in.annotations or {}),
    }
    devices = host_devices() if spec_in.privileged else list(spec_in.devices)
    spaces = spec_in.namespaces if spec_in.namespaces is not None else dict.fromkeys(
        ("pid", "network", "ipc", "uts", "mount"), "")
    namespaces = [{"type": kind, **({"path": path} if path else {})} for kind, path in spaces.items()]
    if spec_in.cgroup_v2:
        namespaces.append({"type": "cgroup"})
    if spec_in.id_maps is not None:
        namespaces.append({"type": "user"})
    spec = {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": spec_in.terminal,
            "user": {"uid": spec_in.uid, "gid": spec_in.gid, "umask": spec_in.umask,
                     **({"additionalGids": spec_in.additional_gids} if spec_in.additional_gids else {})},
            "args": [INIT_MOUNT, "--", *spec_in.args] if spec_in.init_path else spec_in.args,
            "env": spec_in.env,
            "cwd": spec_in.cwd,
            "capabilities": {"bounding": caps, "effective": effective, "permitted": effective},
        },
        "root": {"path": spec_in.rootfs, **({"readonly": True} if spec_in.read_only else {})},
        **({"hostname": spec_in.hostname} if spaces.get("uts") == "" else {}),  # only a private UTS has one
        "mounts": _mounts(spec_in),
        "annotations": annotations,
        "linux": {
            **(_cgroup(spec_in) if spec_in.cgroups else {}),
            # (a network namespace the container's own user namespace does not own refuses net.* sysctls)
            "sysctl": {**({"net.ipv4.ping_group_range": "0 0"} if "network" in spaces and spec_in.id_maps is None
                          else {}), **(spec_in.sysctls or {})},
            "namespaces": namespaces,
            "maskedPaths": _confined_paths(spec_in, MASKED_PATHS) + list(spec_in.mask),
            "readonlyPaths": _confined_paths(spec_in, READONLY_PATHS),
            **({"devices": devices} if devices else {}),
        },
    }
    if spec_in.id_maps is not None:
        for key, ranges in zip(("uidMappings", "gidMappings"), spec_in.id_maps):
            spec["linux"][key] = [{"containerID": inside, "hostID": outside, "size": count}
                                  for inside, outside, count in ranges]
    if spec_in.seccomp is not None:
        spec["linux"]["seccomp"] = spec_in.seccomp
    if spec_in.rlimits:
        spec["process"]["rlimits"] = spec_in.rlimits
    if spec_in.oom_score_adj is not None:
        spec["process"]["oomScoreAdj"] = spec_in.oom_score_adj
    if spec_in.no_new_privileges:
        spec["process"]["noNewPrivileges"] = True
    return spec


def _confined_paths(spec_in: SpecInput, defaults: Sequence[str]) -> list[str]:
    """The default masked or read-only paths, less what --privileged or unmask frees."""
    if spec_in.privileged or "ALL" in spec_in.unmask:
        return []
    return [path for path in defaults if path not in spec_in.unmask]


def _cgroup(spec_in: SpecInput) -> dict:
    """The container's own cgroup and its limits."""
    limits = spec_in.resources if spec_in.resources is not None else {"pids": {"limit": PIDS_LIMIT}}
    return {"resources": {"devices": [{"allow": spec_in.privileged, "access": "rwm"}, *spec_in.device_rules], **limits},
            "cgroupsPath": container_cgroup(spec_in.ctr_id)}


def _sysfs(spec_in: SpecInput) -> dict:
    """A new sysfs, or /sys bound read-only where mounting one is refused (see bind_sys; as Podman)."""
    if spec_in.bind_sys:
        return {"destination": "/sys", "type": "bind", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    return {"destination": "/sys", "type": "sysfs", "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "rw" if spec_in.privileged else "ro"]}


def _mounts(spec_in: SpecInput) -> list[dict]:
    from ..mounts import merged

    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        _sysfs(spec_in),
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     *([f"gid={spec_in.tty_gid}"] if spec_in.tty_gid is not None else [])]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={spec_in.shm_size // 1024}k"]},
    ]
    for dest, source in spec_in.bind_files.items():
        mounts.append({"destination": dest, "type": "bind", "source": source, "options": ["bind", "rprivate"]})
    if spec_in.init_path:
        mounts.append({"destination": INIT_MOUNT, "type": "bind", "source": spec_in.init_path,
                       "options": ["bind", "ro", "rprivate"]})
    if not spec_in.bind_sys:  # a bound /sys brings the host's cgroup tree along
        mounts.append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["rprivate", "nosuid", "noexec", "nodev", "relatime",
                                   "rw" if spec_in.privileged else "ro"]})
    return merged(mounts, spec_in.mounts) if spec_in.mounts else mounts


