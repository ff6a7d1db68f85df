"""A container's processes with ps-like columns (`top`), read from its cgroup and the host's /proc.

Descriptors, headers and value formats follow psgo, the library behind `podman top`. Nothing from
the container is ever executed (Podman falls back to running the container's `ps` for descriptors
psgo lacks; an unknown descriptor is an error here), and the container's /etc/passwd and
/etc/group are read inside its root without following a symlink out of it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from . import logger
from .errors import InvalidArgument, WorkbenchError
from .records import NamedTuple
from .rootless import parse_id_map

if TYPE_CHECKING:
    from .container import Container

log = logger.get(__name__)

#: Podman's default columns (`ps -ef`-like).
DEFAULT_DESCRIPTORS = ("user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args")
#: Bytes of a process's command line shown at most (the kernel allows megabytes).
MAX_CMDLINE = 64 << 10
_READ_LIMIT = 64 << 10  # any other /proc file
_OVERFLOW_ID = 65534  # what a process sees for an id outside its user namespace's map


class ProcessTable(NamedTuple):
    """`top` output: one header and one string per descriptor, one row per process (by pid).

    `records()` gives one dict per process keyed by descriptor name, ready for pandas.
    """

    descriptors: tuple[str, ...]
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def records(self) -> list[dict[str, str]]:
        """One {descriptor: value} dict per process."""
        return [dict(zip(self.descriptors, row)) for row in self.rows]


# -- descriptors ---------------------------------------------------------------------------------
_AIX_CODES = {"%C": "pcpu", "%G": "group", "%P": "ppid", "%U": "user", "%a": "args", "%c": "comm",
              "%g": "rgroup", "%n": "nice", "%p": "pid", "%r": "pgid", "%t": "etime", "%u": "ruser",
              "%x": "time", "%y": "tty", "%z": "vsz"}


def descriptors() -> list[str]:
    """The supported descriptor names, sorted (`podman top --list-descriptors`)."""
    return sorted(_DESCRIPTORS)


def parse_descriptors(words: Sequence[str] | str | None) -> list[str]:
    """Descriptor names from words that may each hold several (comma- or space-separated),
    AIX codes (`%p`) translated; Podman's default set when there are none."""
    if isinstance(words, str):
        words = [words]
    names = [name for word in words or () for name in word.replace(",", " ").split()]
    for name in names:
        if name not in _DESCRIPTORS and name not in _AIX_CODES:
            raise InvalidArgument(f"{name!r}: unknown descriptor; top reads /proc and never runs ps in the "
                                  f"container, supported descriptors: {', '.join(descriptors())}")
    return [_AIX_CODES.get(name, name) for name in names] or list(DEFAULT_DESCRIPTORS)


def container_top(c: Container, words: Sequence[str] | str | None = None) -> ProcessTable:
    """The processes of running or paused container `c` (its lock held, so its root stays mounted)."""
    c._check("top")
    names = parse_descriptors(words)
    pids, belongs = members(c)
    own_userns = os.readlink("/proc/self/ns/user")
    processes = [p for p in (_Process.read(pid, belongs, own_userns) for pid in pids) if p]
    processes.sort(key=lambda p: (int(p.ns_pid), p.hpid))
    ctx = _Context(c.st.mountpoint, processes)
    rows = tuple(tuple(_DESCRIPTORS[name][1](p, ctx) for name in names) for p in processes)
    return ProcessTable(tuple(names), tuple(_DESCRIPTORS[name][0] for name in names), rows)


# -- reading /proc -------------------------------------------------------------------------------
def members(c: Container) -> tuple[Iterable[int], Callable[[int], bool]]:
    """The pids of container `c`'s processes (those of `exec` too), and a check that an open
    /proc/<pid> directory still is one of them: by its cgroup as root, by its pid namespace
    when containers have no cgroup of their own (rootless)."""
    from . import cgroups

    if not cgroups.containers_have_cgroups():
        try:
            namespace = os.readlink(f"/proc/{c.st.pid}/ns/pid") if c.st.pid else ""
        except FileNotFoundError:
            namespace = ""
        if not namespace:
            return [], lambda dir_fd: False
        return _namespace_pids(namespace), lambda dir_fd: _pid_namespace(dir_fd) == namespace
    cgroup = cgroups.container_cgroup(c.id)
    directory = cgroups.controller_dir("pids", cgroup)
    if directory is None or not os.path.isdir(directory):
        raise WorkbenchError(f"cannot list the processes of container {c.id}: its pids cgroup "
                             f"{directory or cgroup} is not there")
    return _cgroup_pids(directory), lambda dir_fd: _in_cgroup(_read(dir_fd, "cgroup").decode(errors="replace"),
                                                              cgroup)


def _pid_namespace(dir_fd: int) -> str:
    try:
        return os.readlink("ns/pid", dir_fd=dir_fd)
    except OSError:  # gone, or not ours to see
        return ""


def _namespace_pids(namespace: str) -> Iterator[int]:
    """Every host pid whose pid namespace is `namespace` (read from /proc, skipping what we may not see)."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == namespace:
                    yield int(name)
            except OSError:
                continue


def _cgroup_pids(directory: str) -> Iterator[int]:
    """Every pid in the cgroup `directory` and the cgroups below it (processes of `exec` included)."""
    for dirpath, _dirs, _files in os.walk(directory):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                text = f.read()
        except FileNotFoundError:  # removed while we walked
            continue
        yield from (int(line) for line in text.split())


def _read(dir_fd: int, name: str, limit: int = _READ_LIMIT) -> bytes:
    """Up to `limit` bytes of /proc/<pid>/<name>, opened relative to the process's directory."""
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        chunks, size = [], 0
        while size < limit:
            chunk = os.read(fd, limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _in_cgroup(text: str, cgroup: str) -> bool:
    """Whether a /proc/<pid>/cgroup listing puts the process in `cgroup` or below it."""
    paths = (line.split(":", 2)[-1] for line in text.splitlines())
    return any(path == cgroup or path.startswith(cgroup + "/") for path in paths)


_IDENTITY = [(0, 0, 1 << 32)]


def _inside(host_id: int, ranges: list[tuple[int, int, int]]) -> int:
    """The id a process sees for host id `host_id` in its user namespace (overflow id if unmapped)."""
    for inside, outside, count in ranges:
        if outside <= host_id < outside + count:
            return inside + host_id - outside
    return _OVERFLOW_ID


class _Process:
    """What /proc says about one process, read through one directory fd so a reused pid cannot mix in."""

    __slots__ = ("cmdline", "comm", "gid_map", "hpid", "label", "stat", "status", "uid_map")

    @classmethod
    def read(cls, hpid: int, belongs: Callable[[int], bool], own_userns: str) -> _Process | None:
        """The process `hpid` if it still exists and still `belongs` to the container, else None;
        its ids are read as seen from `own_userns` (this process's user namespace)."""
        try:
            dir_fd = os.open(f"/proc/{hpid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, ProcessLookupError):
            return None
        try:
            if not belongs(dir_fd):
                return None  # it exited and its pid went to a process outside the container
            p = cls()
            p.hpid = hpid
            stat = _read(dir_fd, "stat").decode(errors="replace")
            p.comm = stat[stat.find("(") + 1:stat.rfind(")")]
            p.stat = stat[stat.rfind(")") + 1:].split()
            if len(p.stat) < 21:
                return None  # a task that is gone reads as empty
            p.status = {}
            for line in _read(dir_fd, "status").decode(errors="replace").splitlines():
                key, _, value = line.partition(":")
                p.status[key] = value.strip()
            p.cmdline = _read(dir_fd, "cmdline", MAX_CMDLINE)
            if os.readlink("ns/user", dir_fd=dir_fd) == own_userns:
                p.uid_map = p.gid_map = _IDENTITY  # our own user namespace (rootless): ids as we see them
            else:  # the map says how the process's ids look from our namespace
                p.uid_map = parse_id_map(_read(dir_fd, "uid_map").decode())
                p.gid_map = parse_id_map(_read(dir_fd, "gid_map").decode())
            try:
                p.label = _read(dir_fd, "attr/current").decode(errors="replace").strip("\n\0")
            except OSError:  # no security module offers labels here
                p.label = "?"
        except (FileNotFoundError, ProcessLookupError):
            return None  # it exited while we read
        finally:
            os.close(dir_fd)
        return p

    def stat_field(self, number: int) -> str:
        """Field `number` of /proc/<pid>/stat, numbered as in proc(5) (3 is the state)."""
        return self.stat[number - 3]

    @property
    def ns_pid(self) -> str:
        """The pid as the container sees it: the innermost of NSpid."""
        return (self.status.get("NSpid") or str(self.hpid)).split()[-1]

    @property
    def in_host_pid_namespace(self) -> bool:
        return len(self.status.get("NSpid", "").split()) <= 1

    def host_ids(self, key: str) -> list[int]:
        """`Uid`/`Gid` (real, effective, saved, fs) or `Groups` as the host sees them."""
        return [int(v) for v in self.status.get(key, "").split()]

    def uid(self, index: int) -> int:
        return _inside(self.host_ids("Uid")[index], self.uid_map)

    def gid(self, index: int) -> int:
        return _inside(self.host_ids("Gid")[index], self.gid_map)

    def cpu_ticks(self) -> int:
        return int(self.stat_field(14)) + int(self.stat_field(15))

    def args(self) -> str:
        """The command line, arguments joined by spaces; `[comm]` for kernel threads and zombies."""
        words = self.cmdline.rstrip(b"\0").split(b"\0")
        text = " ".join(w.decode(errors="replace") for w in words)
        return text or f"[{self.status.get('Name', self.comm)}]"


class _Context:
    """What every row shares: the time, the boot time, the container's and the host's names."""

    def __init__(self, rootfs: str, processes: list[_Process]):
        self.rootfs = rootfs
        self.now_ns = time.time_ns()
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.ns_pids = {p.hpid: p.ns_pid for p in processes}
        self._boot_ns: int | None = None
        self._names: dict[str, dict[int, str]] = {}

    def start_ns(self, p: _Process) -> int:
        """When `p` started, in ns since the epoch."""
        if self._boot_ns is None:
            with open("/proc/stat") as f:
                btime = next(line.split()[1] for line in f if line.startswith("btime "))
            self._boot_ns = int(btime) * 10**9
        return self._boot_ns + int(p.stat_field(22)) * 10**9 // self.ticks

    def ppid(self, p: _Process) -> str:
        """The parent's pid inside the container; 0 when the parent is outside it, as the kernel says."""
        parent = int(p.status.get("PPid", "0"))
        return str(parent) if p.in_host_pid_namespace else self.ns_pids.get(parent, "0")

    def user(self, uid: int) -> str:
        """The name of `uid` in the container's /etc/passwd, else the number."""
        return self._container_names("/etc/passwd").get(uid, str(uid))

    def group(self, gid: int) -> str:
        """The name of `gid` in the container's /etc/group, else the number."""
        return self._container_names("/etc/group").get(gid, str(gid))

    def _container_names(self, path: str) -> dict[int, str]:
        if path not in self._names:
            from .users import read_account_file

            names: dict[int, str] = {}
            try:
                entries = read_account_file(self.rootfs, path) if self.rootfs else []
            except (InvalidArgument, OSError) as exc:  # a symlink, a fifo, a huge file: show numbers
                log.debug("top: not reading %s of the container: %s", path, exc)
                entries = []
            for entry in entries:
                if len(entry) >= 3 and entry[2].isdigit():
                    names.setdefault(int(entry[2]), entry[0])
            self._names[path] = names
        return self._names[path]

    def host_user(self, uid: int) -> str:
        import pwd

        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return str(uid)

    def host_group(self, gid: int) -> str:
        import grp

        try:
            return grp.getgrgid(gid).gr_name
        except KeyError:
            return str(gid)


# -- formats (psgo's) ----------------------------------------------------------------------------
def go_duration(ns: int) -> str:
    """Go's time.Duration.String(), the way psgo prints elapsed and CPU time ("1m2.5s", "0s")."""
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns == 0:
        return "0s"
    if ns < 10**9:
        unit, size = next((u, s) for u, s in (("ms", 10**6), ("\u00b5s", 10**3), ("ns", 1)) if ns >= s)
        return sign + _decimal(ns, size) + unit
    secs = ns // 10**9
    text = _decimal(ns % (60 * 10**9), 10**9) + "s"
    if secs >= 60:
        text = f"{secs // 60 % 60}m{text}"
    if secs >= 3600:
        text = f"{secs // 3600}h{text}"
    return sign + text


def _decimal(value: int, unit: int) -> str:
    """value/unit in decimal without trailing zeros (unit a power of ten)."""
    whole, rest = divmod(value, unit)
    digits = f"{rest:0{len(str(unit)) - 1}d}".rstrip("0") if rest else ""
    return f"{whole}.{digits}" if digits else str(whole)


def _go_time(ns: int) -> str:
    """Go's time.Time.String() for a whole second in local time ("2025-01-02 15:04:05 +0000 UTC")."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(ns // 10**9))


def _pcpu(p: _Process, x: _Context) -> str:
    """CPU time over lifetime in percent, three decimals (psgo counts whole CPU seconds, so it
    mostly prints 0.000; this counts clock ticks)."""
    elapsed = (x.now_ns - x.start_ns(p)) / 10**9
    return f"{100 * p.cpu_ticks() / x.ticks / elapsed:.3f}" if elapsed > 0 else "0.000"


def _tty(tty_nr: int) -> str:
    """The controlling terminal's name from its device number (psgo looks it up in /dev), `?` if none."""
    major, minor = (tty_nr >> 8) & 0xFFF, (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    return {(5, 0): "tty", (5, 1): "console"}.get((major, minor), "?")


def _capabilities(mask_hex: str) -> str:
    """A capability mask as sorted names without CAP_, `full` for every capability, `none` for none."""
    from .oci.spec import CAPABILITY_BITS as names

    try:
        mask = int(mask_hex, 16)
    except ValueError:
        return "?"
    if mask == (1 << (_last_capability() + 1)) - 1:
        return "full"
    found = sorted(names[i] if i < len(names) else "unknown" for i in range(64) if mask >> i & 1)
    return ",".join(found) or "none"


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 40


_SECCOMP_MODES = {"0": "disabled", "1": "strict", "2": "filter"}
_Column = Callable[[_Process, _Context], str]

# descriptor -> (psgo's header, value); user and group names are the container's, h* ones the host's
_DESCRIPTORS: dict[str, tuple[str, _Column]] = {
    "args": ("COMMAND", lambda p, x: p.args()),
    "capamb": ("AMBIENT CAPS", lambda p, x: _capabilities(p.status.get("CapAmb", ""))),
    "capbnd": ("BOUNDING CAPS", lambda p, x: _capabilities(p.status.get("CapBnd", ""))),
    "capeff": ("EFFECTIVE CAPS", lambda p, x: _capabilities(p.status.get("CapEff", ""))),
    "capinh": ("INHERITED CAPS", lambda p, x: _capabilities(p.status.get("CapInh", ""))),
    "capprm": ("PERMITTED CAPS", lambda p, x: _capabilities(p.status.get("CapPrm", ""))),
    "comm": ("COMMAND", lambda p, x: p.comm),
    "etime": ("ELAPSED", lambda p, x: go_duration(x.now_ns - x.start_ns(p))),
    "group": ("GROUP", lambda p, x: x.group(p.gid(1))),
    "groups": ("GROUPS", lambda p, x: ",".join(x.group(_inside(g, p.gid_map)) for g in p.host_ids("Groups"))),
    "hgroup": ("HGROUP", lambda p, x: x.host_group(p.host_ids("Gid")[1])),
    "hgroups": ("HGROUPS", lambda p, x: ",".join(map(str, p.host_ids("Groups")))),
    "hpid": ("HPID", lambda p, x: str(p.hpid)),
    "huid": ("HUID", lambda p, x: str(p.host_ids("Uid")[1])),
    "huser": ("HUSER", lambda p, x: x.host_user(p.host_ids("Uid")[1])),
    "label": ("LABEL", lambda p, x: p.label),
    "nice": ("NI", lambda p, x: p.stat_field(19)),
    "pcpu": ("%CPU", _pcpu),
    "pgid": ("PGID", lambda p, x: (p.status.get("NSpgid") or p.stat_field(5)).split()[-1]),
    "pid": ("PID", lambda p, x: p.ns_pid),
    "ppid": ("PPID", lambda p, x: x.ppid(p)),
    "rgroup": ("RGROUP", lambda p, x: x.group(p.gid(0))),
    "rss": ("RSS", lambda p, x: (p.status.get("VmRSS") or "0").split()[0]),
    "ruser": ("RUSER", lambda p, x: x.user(p.uid(0))),
    "seccomp": ("SECCOMP", lambda p, x: _SECCOMP_MODES.get(p.status.get("Seccomp", ""), "?")),
    "state": ("STATE", lambda p, x: (p.status.get("State") or p.stat_field(3)).split()[0]),
    "stime": ("STIME", lambda p, x: _go_time(x.start_ns(p))),
    "time": ("TIME", lambda p, x: go_duration(p.cpu_ticks() // x.ticks * 10**9)),
    "tty": ("TTY", lambda p, x: _tty(int(p.stat_field(7)))),
    "uid": ("UID", lambda p, x: str(p.uid(1))),
    "user": ("USER", lambda p, x: x.user(p.uid(1))),
    "vsz": ("VSZ", lambda p, x: str(int(p.stat_field(23)) // 1024)),
}
