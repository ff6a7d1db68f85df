"""A container's resource use (`stats`): its cgroup's counters (v1 or v2) and its network namespace's.

Figures follow Podman (libpod/stats_linux.go): CPU % is the CPU time used between two samples
over the wall time between them, x100, not divided by the number of CPUs (so a busy container on
2 CPUs can show 200%); a first sample measures from the container's start, so one snapshot
gives the average since start without sleeping. Memory use is Docker's and current Podman's
(usage minus inactive file cache: v1 `memory.usage_in_bytes - total_inactive_file`, v2
`memory.current - inactive_file`); Podman 4.3 took v1's usage as is and v2's `anon` alone. The
limit is the cgroup's, or the host's RAM when that is lower or there is none. Network bytes are
the container's interfaces other than `lo` (0 with `--network host` or `none`, as Podman).
Block I/O is what the cgroup read and wrote through the block layer: v2 `io.stat`; v1
`blkio.throttle.io_service_bytes_recursive`, which recent kernels (6.x) fill reliably only for
a device the cgroup has a throttle rule on (without one a direct 20 MiB write shows 0 B, in
Podman as well).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import cgroups
from .records import NamedTuple
from .state import ContainerState

if TYPE_CHECKING:
    from .container import Container
    from .runtime import Runtime

#: The v1 hierarchies read, and the files read in each.
V1_CONTROLLERS = ("cpuacct", "memory", "pids", "blkio")
_WITH_PROCESSES = (ContainerState.RUNNING, ContainerState.PAUSED)
_MAYBE_RUNNING = (ContainerState.RUNNING, ContainerState.PAUSED, ContainerState.STOPPING)  # before a sync


class Counters(NamedTuple):
    """A cgroup's raw counters at one moment (bytes, nanoseconds)."""

    cpu_ns: int
    cpu_system_ns: int
    mem_usage: int
    mem_limit: int | None  # None: no limit set
    pids: int
    block_read: int
    block_write: int


# -- readers -------------------------------------------------------------------------------------
def _read(path: str) -> bytes:
    """A cgroup or /proc file's content, b'' when it is gone (raw reads: half the cost of open())."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError, ProcessLookupError):
        return b""
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:  # ENODEV: the cgroup went away between open and read
        return b""
    finally:
        os.close(fd)


def _file(directory: str | None, name: str) -> bytes:
    return _read(f"{directory}/{name}") if directory else b""


def _number(directory: str | None, name: str) -> int | None:
    """A one-value cgroup file as an int; None for `max` (v2's no limit) or a missing file."""
    text = _file(directory, name).strip()
    return int(text) if text and text != b"max" else None


def _field(text: bytes, key: bytes) -> int:
    """The value on the `key value` line of a flat keyed file (memory.stat, cpu.stat), 0 when absent."""
    text = b"\n" + text
    start = text.find(b"\n" + key + b" ")
    if start < 0:
        return 0
    start += len(key) + 2
    end = text.find(b"\n", start)
    return int(text[start:end if end >= 0 else None])


def read_v1(dirs: Mapping[str, str | None]) -> Counters:
    """The counters of a v1 cgroup; `dirs` maps each of V1_CONTROLLERS to its directory."""
    memory = dirs.get("memory")
    usage = _number(memory, "memory.usage_in_bytes") or 0
    inactive = _field(_file(memory, "memory.stat"), b"total_inactive_file")
    read = write = 0
    for line in _file(dirs.get("blkio"), "blkio.throttle.io_service_bytes_recursive").splitlines():
        fields = line.split()  # "8:0 Read 4096"; the last line is "Total N"
        if len(fields) == 3:
            read += int(fields[2]) if fields[1] == b"Read" else 0
            write += int(fields[2]) if fields[1] == b"Write" else 0
    acct = dirs.get("cpuacct")
    return Counters(_number(acct, "cpuacct.usage") or 0, _number(acct, "cpuacct.usage_sys") or 0,
                    max(usage - inactive, 0), _number(memory, "memory.limit_in_bytes"),
                    _number(dirs.get("pids"), "pids.current") or 0, read, write)


def read_v2(directory: str) -> Counters:
    """The counters of a cgroup in the unified (v2) hierarchy."""
    cpu = _file(directory, "cpu.stat")
    usage = _number(directory, "memory.current") or 0
    inactive = _field(_file(directory, "memory.stat"), b"inactive_file")
    read = write = 0
    for line in _file(directory, "io.stat").splitlines():  # "8:0 rbytes=4096 wbytes=0 rios=1 ..."
        for item in line.split()[1:]:
            key, _, value = item.partition(b"=")
            read += int(value) if key == b"rbytes" else 0
            write += int(value) if key == b"wbytes" else 0
    return Counters(_field(cpu, b"usage_usec") * 1000, _field(cpu, b"system_usec") * 1000, max(usage - inactive, 0),
                    _number(directory, "memory.max"), _number(directory, "pids.current") or 0, read, write)


def read_net_dev(path: str) -> tuple[int, int]:
    """(bytes received, bytes sent) over every interface but `lo` in a /proc/<pid>/net/dev file."""
    rx = tx = 0
    for line in _read(path).splitlines()[2:]:  # after two header lines, "  eth0: rx-bytes ... tx-bytes ..."
        name, _, counters = line.partition(b":")
        fields = counters.split()
        if name.strip() != b"lo" and len(fields) >= 9:
            rx += int(fields[0])
            tx += int(fields[8])
    return rx, tx


def read_processes(pids: Iterable[int]) -> Counters:
    """What /proc gives for a set of processes: CPU time, resident memory, block I/O, their count
    (a process that exits between two samples takes its CPU time with it)."""
    tick_ns, page = 1_000_000_000 // os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    user = system = rss = read = written = count = 0
    for pid in pids:
        try:
            stat = _read(f"/proc/{pid}/stat")
            fields = stat[stat.rfind(b")") + 2:].split()  # from field 3 (state) on
            user, system = user + int(fields[11]), system + int(fields[12])
            rss += int(_read(f"/proc/{pid}/statm").split()[1]) * page
            count += 1
            for line in _read(f"/proc/{pid}/io").splitlines():
                key, _, value = line.partition(b":")
                if key == b"read_bytes":
                    read += int(value)
                elif key == b"write_bytes":
                    written += int(value)
        except (OSError, IndexError, ValueError):
            continue  # exited while we read, or not ours to read
    return Counters((user + system) * tick_ns, system * tick_ns, rss, None, count, read, written)


def host_memory() -> int:
    """The host's RAM in bytes (sysinfo's totalram, what Podman shows as the limit of an unlimited container)."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def container_counters(c: "Container") -> Counters:
    """The counters of the container's cgroup on this host, v1 or v2; summed over its processes
    from /proc when it has no cgroup (rootless)."""
    if not cgroups.containers_have_cgroups():
        from .top import members

        return read_processes(members(c)[0])
    cgroup = cgroups.container_cgroup(c.id)
    if cgroups.is_v2():
        return read_v2(cgroups.controller_dir("memory", cgroup) or "")
    return read_v1({name: cgroups.controller_dir(name, cgroup) for name in V1_CONTROLLERS})


# -- records -------------------------------------------------------------------------------------
def empty_record(c: "Container") -> dict[str, Any]:
    """The record of a container without processes: its identity and zeros, as Podman shows it."""
    return {"ContainerID": c.id, "Name": c.name, "SystemNano": time.time_ns(), "CPUNano": 0, "CPUSystemNano": 0,
            "CPU": 0.0, "AvgCPU": 0.0, "MemUsage": 0, "MemLimit": 0, "MemPerc": 0.0, "NetInput": 0,
            "NetOutput": 0, "BlockInput": 0, "BlockOutput": 0, "PIDs": 0, "ElapsedNano": 0}


def _percent(part: float, whole: float) -> float:
    return part / whole * 100 if part > 0 and whole > 0 else 0.0


def sample(c: "Container", previous: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One record of container `c`, whose state the caller has just synced (see Container.stats).

    CPU % is measured since `previous` (an earlier record of the same container) or, without
    one, since the container started.
    """
    if c.st.state not in _WITH_PROCESSES:
        return empty_record(c)
    counters = container_counters(c)
    now = time.time_ns()
    started = int(c.st.started_at * 1e9)
    if previous is None or previous["CPUNano"] > counters.cpu_ns or previous["SystemNano"] < started:
        previous = {"CPUNano": 0, "SystemNano": started}  # first sample, or the container restarted since
    network = c.config.network
    rx, tx = (0, 0) if network in ("none", "host") or not c.st.pid else read_net_dev(f"/proc/{c.st.pid}/net/dev")
    host = host_memory()
    limit = host if counters.mem_limit is None else min(counters.mem_limit, host)
    return {
        "ContainerID": c.id, "Name": c.name, "SystemNano": now,
        "CPUNano": counters.cpu_ns, "CPUSystemNano": counters.cpu_system_ns,
        "CPU": _percent(counters.cpu_ns - previous["CPUNano"], now - previous["SystemNano"]),
        "AvgCPU": _percent(counters.cpu_ns, now - started),
        "MemUsage": counters.mem_usage, "MemLimit": limit, "MemPerc": _percent(counters.mem_usage, limit),
        "NetInput": rx, "NetOutput": tx, "BlockInput": counters.block_read, "BlockOutput": counters.block_write,
        "PIDs": counters.pids, "ElapsedNano": max(now - started, 0),
    }


def rounds(rt: "Runtime", containers: Sequence["str | Container"] | None = None, *, all: bool = False,
           stream: bool = False, interval: float = 5.0) -> Iterator[list[dict[str, Any]]]:
    """One list of records per sample: of the named containers (NoSuchContainer when one is
    unknown), or of every running one (every one with `all`); with `stream`, again every
    `interval` seconds, CPU % then measured since the previous sample."""
    from .errors import ContainerRemoved, InvalidArgument

    if interval <= 0:
        raise InvalidArgument("invalid interval, must be a positive number greater zero")
    previous: dict[str, dict[str, Any]] = {}
    while True:
        if containers:
            targets: Iterable[Container] = [rt.container(x) if isinstance(x, str) else x for x in containers]
        else:  # synced once, by c.stats(), not also by the listing
            targets = [c for c in rt.containers(all=True, sync=False) if all or c.st.state in _MAYBE_RUNNING]
        batch = []
        for c in targets:
            try:
                record = c.stats(previous.get(c.id))
            except ContainerRemoved:
                if containers:
                    raise
                continue  # removed while listing
            if containers or all or c.st.state == ContainerState.RUNNING:  # Podman: running, not paused
                previous[c.id] = record
                batch.append(record)
        yield batch
        if not stream:
            return
        time.sleep(interval)
