"""Lifecycle events (libpod's events, file backend): one JSON line per event in the run root.

Writers append each event to `<runroot>/events/events.log` with one O_APPEND write, so lines from
several processes never interleave and no lock is taken. Past MAX_SIZE the log is renamed to
`events.log.1` (replacing the previous one) and a new one starts: the newest events always stay,
and a reader holding the old file keeps reading it whole. Readers filter by time and by Podman's
`--filter` keys; followers poll, and switch files across a rotation without missing a line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping

from . import logger
from .errors import InvalidArgument
from .records import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Any, Callable, Iterable, Iterator

    from .container import Container

log = logger.get(__name__)

#: Rotate events.log past this size (Podman's events_logfile_max_size default: 1 MiB).
MAX_SIZE = 1024 * 1024
#: How often a follower looks for new lines.
POLL_INTERVAL = 0.05
#: How long a follower still drains a rotated file for writers that opened it just before.
ROTATION_GRACE = 1.0

CONTAINER, IMAGE, NETWORK, SYSTEM = "container", "image", "network", "system"
#: Podman's event types (`--filter type=`); Workbench emits the first four.
TYPES = (CONTAINER, IMAGE, NETWORK, SYSTEM, "pod", "volume", "machine")
FILTER_KEYS = ("container", "event", "status", "image", "label", "type", "network", "pod", "volume")


class InvalidFilter(InvalidArgument):
    """A `--filter` that is not `key=value` with a key Podman knows."""


class Event(NamedTuple):
    """One event, with Podman's fields; `time_ns` is nanoseconds since the epoch."""

    type: str
    status: str
    time_ns: int
    id: str = ""
    name: str = ""
    image: str = ""
    network: str = ""
    exit_code: int | None = None
    attributes: Mapping[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        """Podman's JSON document (`events --format json`, and each line of the log)."""
        doc: dict[str, Any] = {}
        if self.exit_code is not None:
            doc["ContainerExitCode"] = self.exit_code
        for key, value in (("ID", self.id), ("Image", self.image), ("Name", self.name), ("network", self.network)):
            if value:
                doc[key] = value
        doc["Status"] = self.status
        doc["Time"] = rfc3339_nano(self.time_ns)
        doc["Type"] = self.type
        doc["Attributes"] = dict(self.attributes or {}) if self.attributes or self.type == CONTAINER else None
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Event":
        return cls(type=doc.get("Type", ""), status=doc.get("Status", ""), time_ns=_parse_stamp(doc["Time"]),
                   id=doc.get("ID", ""), name=doc.get("Name", ""), image=doc.get("Image", ""),
                   network=doc.get("network", ""), exit_code=doc.get("ContainerExitCode"),
                   attributes=doc.get("Attributes") or {})

    def to_record(self) -> dict[str, Any]:
        """The JSON document with `Time` an aware datetime (pandas-ready) and exact `TimeNano`."""
        from datetime import datetime, timezone

        doc = self.to_json()
        doc["Time"] = datetime.fromtimestamp(self.time_ns / 1e9, timezone.utc).astimezone()
        doc["TimeNano"] = self.time_ns
        doc["Attributes"] = dict(self.attributes or {})
        return doc

    def template_data(self) -> dict[str, Any]:
        """What `--format` templates see: Podman's Event struct fields, Time as Go prints it."""
        return {"ID": self.id, "Image": self.image, "Name": self.name, "Network": self.network,
                "Status": self.status, "Time": go_time(self.time_ns), "TimeNano": self.time_ns, "Type": self.type,
                "ContainerExitCode": self.exit_code or 0, "Attributes": dict(self.attributes or {}),
                "PodID": "", "HealthStatus": ""}

    def human(self, truncate: bool = False) -> str:
        """Podman's default line, e.g. `... UTC container start <id> (image=..., name=...)`."""
        ident = self.id[:12] if truncate else self.id
        head = f"{go_time(self.time_ns)} {self.type} {self.status}"
        if self.type in (CONTAINER, "pod"):
            extra = "".join(f", {k}={v}" for k, v in (self.attributes or {}).items())
            return f"{head} {ident} (image={self.image}, name={self.name}{extra})"
        if self.type == NETWORK:
            if self.status in ("create", "remove"):
                return f"{head} {self.id} (name={self.network}, type={(self.attributes or {}).get('driver', '')})"
            return f"{head} {ident} (container={ident}, name={self.network})"
        if self.type == IMAGE:
            return f"{head} {ident} {self.name}"
        return f"{head} {self.name}" if self.name else head


# -- time --------------------------------------------------------------------------------------
def rfc3339_nano(ns: int) -> str:
    """Go's RFC3339Nano in local time: trailing zeros of the fraction dropped, `Z` for UTC."""
    seconds, frac = divmod(ns, 1_000_000_000)
    lt = time.localtime(seconds)
    offset = lt.tm_gmtoff or 0
    hours, minutes = divmod(abs(offset) // 60, 60)
    zone = "Z" if offset == 0 else f"{'+' if offset > 0 else '-'}{hours:02d}:{minutes:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", lt) + _fraction(frac) + zone


def go_time(ns: int) -> str:
    """Go's time.Time String(): `2006-01-02 15:04:05.999999999 -0700 MST`, in local time."""
    seconds, frac = divmod(ns, 1_000_000_000)
    lt = time.localtime(seconds)
    return time.strftime("%Y-%m-%d %H:%M:%S", lt) + _fraction(frac) + time.strftime(" %z ", lt) + lt.tm_zone


def _fraction(frac: int) -> str:
    return f".{frac:09d}".rstrip("0") if frac else ""


def _parse_stamp(text: str) -> int:
    """Epoch nanoseconds of a stamp rfc3339_nano wrote (only our own format: no general parser)."""
    from datetime import datetime

    main, zone = text[:19], text[19:]
    frac = ""
    if zone.startswith("."):
        end = 1
        while end < len(zone) and zone[end].isdigit():
            end += 1
        frac, zone = zone[1:end], zone[end:]
    seconds = int(datetime.fromisoformat(main + (zone if zone != "Z" else "+00:00")).timestamp())
    return seconds * 1_000_000_000 + int(frac.ljust(9, "0")[:9] or 0)


def to_ns(value: "str | float | int | datetime", *, until: bool = False) -> int:
    """A --since/--until value as epoch nanoseconds: RFC3339, a date, Unix seconds or a duration
    (Podman's ParseInputTime, shared with `logs`), a datetime, or a number of Unix seconds."""
    from datetime import datetime

    from . import logs

    if isinstance(value, str):
        value = (logs.parse_until if until else logs.parse_since)(value)
    if isinstance(value, datetime):
        return logs._datetime_ns(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 1_000_000_000)
    raise InvalidArgument(f"invalid time value {value!r}: use a string, a datetime or Unix seconds")


# -- writing -------------------------------------------------------------------------------------
def log_path(runroot: str) -> str:
    return os.path.join(runroot, "events", "events.log")


def write(runroot: str, event: Event) -> None:
    """Append one event: a single O_APPEND write; never fails the operation that emitted it."""
    path = log_path(runroot)
    line = (json.dumps(event.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    try:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            rotated = os.fstat(fd).st_size > MAX_SIZE and _rotate(fd, path)
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("writing %s event to %s: %s", event.status, path, exc)
        return
    if rotated:
        write(runroot, Event(SYSTEM, "rotate", time.time_ns(), name=path))


def _rotate(fd: int, path: str) -> bool:
    """Rename the full log to `.1`, once: writers over the limit serialise on the file itself."""
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        st, current = os.fstat(fd), os.stat(path)
        if (st.st_dev, st.st_ino) != (current.st_dev, current.st_ino):
            return False  # another writer rotated it already
        os.rename(path, path + ".1")
        return True
    except FileNotFoundError:
        return False
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def emit(runroot: str, type: str, status: str, *, id: str = "", name: str = "", image: str = "",
         network: str = "", exit_code: int | None = None, attributes: Mapping[str, str] | None = None) -> None:
    """Record an event now."""
    write(runroot, Event(type, status, time.time_ns(), id, name, image, network, exit_code, attributes))


def container(c: "Container", status: str, *, exit_code: int | None = None, **attributes: str) -> None:
    """A container event; its labels (and `attributes`, e.g. execID) become the attributes."""
    cfg = c.config
    attrs = {**cfg.labels, **attributes} if attributes else cfg.labels
    emit(c.rt.runroot, CONTAINER, status, id=cfg.id, name=cfg.name, image=cfg.image_name, exit_code=exit_code,
         attributes=attrs)


def image(runroot: str, status: str, image_id: str, name: str = "") -> None:
    """An image event: `name` is the reference (tag, untag, pull, push) or the archive (save, load)."""
    emit(runroot, IMAGE, status, id=image_id, name=name)


def network(runroot: str, status: str, network_id: str, name: str) -> None:
    """A network was created or removed (Podman 4.4's `(name=..., type=bridge)` events)."""
    emit(runroot, NETWORK, status, id=network_id, network=name, attributes={"driver": "bridge"})


def connection(c: "Container", status: str, network: str) -> None:
    """A container joined (`connect`) or left (`disconnect`) a network."""
    emit(c.rt.runroot, NETWORK, status, id=c.config.id, name=c.config.name, network=network)


# -- filtering ------------------------------------------------------------------------------------
def _matcher(key: str, value: str) -> Callable[[Event], bool]:
    def named(kind: str, name_of: Callable[[Event], str]) -> Callable[[Event], bool]:
        return lambda e: e.type == kind and (name_of(e) == value or e.id.startswith(value))

    if key == "container":
        return named(CONTAINER, lambda e: e.name)
    if key in ("event", "status"):
        wanted = "died" if value == "die" else value  # Docker's name
        return lambda e: e.status == wanted
    if key in ("image", "pod"):
        return named(key, lambda e: e.name)
    if key == "network":
        return named(NETWORK, lambda e: e.network)
    if key == "volume":
        return lambda e: e.type == "volume" and e.name.startswith(value)
    if key == "type":
        return lambda e: e.type == value
    label, has_value, wanted = value.partition("=")  # label: `key=value` or just `key`
    return lambda e: label in (e.attributes or {}) and (not has_value or (e.attributes or {})[label] == wanted)


def parse_filters(filters: Iterable[str] | Mapping[str, str | Iterable[str]] | None) -> Callable[[Event], bool]:
    """Podman's `--filter key=value` list (or {key: value(s)}) as one predicate: values of one key
    are ORed, different keys ANDed. Raises InvalidFilter for an unknown key or a missing `=`."""
    pairs: list[tuple[str, str]] = []
    if isinstance(filters, Mapping):
        for key, values in filters.items():
            pairs += [(key, values)] if isinstance(values, str) else [(key, v) for v in values]
    else:
        for item in filters or ():
            key, sep, value = item.partition("=")
            if not sep:
                raise InvalidFilter(f"failed to parse event filters: {item} is an invalid filter")
            pairs.append((key, value))
    groups: dict[str, list[Callable[[Event], bool]]] = {}
    for key, value in pairs:
        norm = key.lower()
        if norm not in FILTER_KEYS:
            raise InvalidFilter(f"failed to parse event filters: {key} is an invalid filter "
                                f"(use one of {', '.join(FILTER_KEYS)})")
        groups.setdefault("event" if norm == "status" else norm, []).append(_matcher(norm, str(value)))
    checks = list(groups.values())
    return lambda e: all(any(m(e) for m in group) for group in checks)


# -- reading --------------------------------------------------------------------------------------
def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _open(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _open_pair(path: str) -> tuple[int | None, int | None]:
    """(previous, current) fds that belong together: no rotation between the two opens."""
    for _ in range(100):
        current = _open(path)
        previous = _open(path + ".1")
        try:
            still = _identity(os.stat(path))
        except FileNotFoundError:
            still = None
        if current is None and still is None or current is not None and still == _identity(os.fstat(current)):
            return previous, current
        for fd in (previous, current):
            if fd is not None:
                os.close(fd)
    raise OSError(f"{path} keeps rotating: cannot read a consistent pair of event files")


class _File:
    """One open log file read line by line; a partial last line waits for its newline."""

    def __init__(self, fd: int, *, at_end: bool = False):
        self.fd = fd
        self.identity = _identity(os.fstat(fd))
        self.rest = b""
        if at_end:
            os.lseek(fd, 0, os.SEEK_END)

    def lines(self) -> list[bytes]:
        chunks = []
        while data := os.read(self.fd, 1 << 20):
            chunks.append(data)
        if not chunks:
            return []
        data = self.rest + b"".join(chunks)
        end = data.rfind(b"\n") + 1
        self.rest = data[end:]
        return data[:end].splitlines()

    def close(self) -> None:
        os.close(self.fd)


def _decode(lines: Iterable[bytes]) -> Iterator[Event]:
    for raw in lines:
        try:
            yield Event.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("skipping a malformed line in the events log: %s", exc)


def _follow(path: str, stop: Callable[[], bool]) -> Iterator[Event]:
    """Every line of the log (both files) and then each new one as it is written, across
    rotations, until `stop()` turns true between two polls."""
    old: list[tuple[_File, float]] = []  # rotated files, drained a little longer for late writers
    current: _File | None = None
    previous, fd = _open_pair(path)
    try:
        while True:
            if previous is not None:  # a file we have not read yet: the log before `fd`
                f = _File(previous)
                old.append((f, time.monotonic() + ROTATION_GRACE))
                yield from _decode(f.lines())
            if fd is not None:
                if current is not None:
                    old.append((current, time.monotonic() + ROTATION_GRACE))
                current = _File(fd)
            while True:
                # Rotated files first: a writer that put a line in the old file before its next one
                # in the new file is then seen in its own order.
                for f, deadline in list(old):
                    yield from _decode(f.lines())
                    if time.monotonic() > deadline:
                        f.close()
                        old.remove((f, deadline))
                lines = current.lines() if current is not None else []
                yield from _decode(lines)
                try:
                    on_disk: tuple[int, int] | None = _identity(os.stat(path))
                except FileNotFoundError:
                    on_disk = None
                if on_disk is not None and (current is None or on_disk != current.identity):
                    break  # rotated (or created): switch files
                if stop():
                    return
                if not lines:  # keep reading while lines come: a follower must not fall a file behind
                    time.sleep(POLL_INTERVAL)
            previous, fd = _open_pair(path)
            seen = {f.identity for f, _ in old} | ({current.identity} if current is not None else set())
            if previous is not None and _identity(os.fstat(previous)) in seen:
                os.close(previous)  # rotated once: `.1` is the file we were reading
                previous = None
    finally:
        for f, _ in old:
            f.close()
        if current is not None:
            current.close()


def read(runroot: str, *, since: Any = None, until: Any = None, follow: bool = False,
         filters: Iterable[str] | Mapping[str, str | Iterable[str]] | None = None,
         stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """Events in the log, oldest first, strictly after `since` and before `until`.

    With `follow`, keep waiting for new ones (from the end of the log unless since/until is
    given, as Podman) until `until` passes or `stop()` is true. Arguments are checked before
    the iterator is returned, so a bad filter or time fails at once.
    """
    since_ns = None if since is None else to_ns(since)
    until_ns = None if until is None else to_ns(until, until=True)
    wanted = parse_filters(filters)
    path = log_path(runroot)

    def accepted(events: Iterator[Event]) -> Iterator[Event]:
        for e in events:
            if (since_ns is None or e.time_ns > since_ns) and (until_ns is None or e.time_ns < until_ns) \
                    and wanted(e):
                yield e

    if not follow:
        def everything() -> Iterator[Event]:
            previous, current = _open_pair(path)
            for fd in (previous, current):
                if fd is not None:
                    f = _File(fd)
                    try:
                        yield from _decode(f.lines())
                    finally:
                        f.close()
        return accepted(everything())
    if since_ns is None and until_ns is None:
        since_ns = time.time_ns()  # Podman streams new events only, unless a time is given

    def done() -> bool:
        return (stop is not None and stop()) or (until_ns is not None and time.time_ns() >= until_ns)

    return accepted(_follow(path, done))
