"""Reader for conmon's k8s-file container logs, with `podman logs` 4.3 semantics.

A log line is `<RFC3339Nano local time> <stdout|stderr> <F|P> <content>\\n`; `F` closes a line,
`P` is a fragment the next record continues. Times are parsed lazily: plain reads never build
a datetime, and `--timestamps` output reuses the stamp bytes exactly as conmon wrote them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from . import logger
from .errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

log = logger.get(__name__)

__all__ = [
    "InvalidTimeValue",
    "LogRecord",
    "follow_records",
    "parse_line",
    "parse_since",
    "parse_until",
    "read_records",
    "render",
    "split_streams",
]

_BLOCK = 64 * 1024  # backwards-read block for --tail
_FOLLOW_READ = 1024 * 1024  # largest read per follow step
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_STAMP_RE = re.compile(
    rb"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    rb"\.\d{9}(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
)
_STREAMS = {b"stdout": "stdout", b"stderr": "stderr"}
_TAGS = {b"F": False, b"P": True}


class InvalidTimeValue(InvalidArgument, ValueError):
    """A --since/--until value is neither a timestamp nor a duration."""


# -- records -----------------------------------------------------------------------------
class _LazyTime:
    """The `time` field: kept when given, otherwise parsed from the raw stamp on first read."""

    def __get__(self, rec: Any, owner: type | None = None) -> datetime:
        if rec is None:  # no class-level default: keeps `time` a required dataclass field
            raise AttributeError("time")
        d = rec.__dict__
        value = d.get("_time")
        if value is None:
            value = d["_time"] = _stamp_datetime(d["stamp"])
        return value

    def __set__(self, rec: Any, value: datetime) -> None:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError(f"LogRecord.time must be a timezone-aware datetime, not {value!r}")
        rec.__dict__["_time"] = value


@dataclass(frozen=True)
class LogRecord:
    """One k8s-file record; `data` has no trailing newline, `stamp` is the raw file timestamp."""

    time: datetime  # a _LazyTime descriptor, installed below
    stream: str
    partial: bool
    data: bytes
    stamp: bytes = field(default=b"", repr=False, compare=False)

    @property
    def nanos(self) -> int:
        """Nanoseconds within the second (`time` only holds microseconds)."""
        return self.time_ns % 1_000_000_000

    @property
    def time_ns(self) -> int:
        """The record time as integer nanoseconds since the Unix epoch."""
        d = self.__dict__
        value = d.get("_ns")
        if value is None:
            stamp = d["stamp"]
            value = d["_ns"] = _stamp_ns(stamp) if stamp else _datetime_ns(self.time)
        return value

    def timestamp_text(self) -> bytes:
        """The time in Go's `2006-01-02T15:04:05.000000000Z07:00` layout, as podman prints it."""
        stamp = self.__dict__["stamp"]
        if stamp:
            if stamp.endswith((b"+00:00", b"-00:00")):
                return stamp[:-6] + b"Z"
            return stamp
        return _format_time(self.time, self.nanos).encode()


# Installed after @dataclass so `time` stays a required field; the generated __init__ still
# stores through it, and records parsed from a file fill it only when someone reads it.
LogRecord.time = _LazyTime()  # type: ignore[assignment]

_new = object.__new__
_match_stamp = _STAMP_RE.fullmatch


def _parse(line: bytes) -> LogRecord | None:
    """Parse one line (without its newline); None when it is not a k8s-file record.

    The hot path: builds the record without the frozen-dataclass `__init__` and leaves the
    time unparsed (`_time` None) until someone reads it.
    """
    parts = line.split(b" ", 3)
    if len(parts) != 4:
        return None
    stamp, device, tag, data = parts
    stream = _STREAMS.get(device)
    partial = _TAGS.get(tag)
    if stream is None or partial is None or _match_stamp(stamp) is None:
        return None
    rec = _new(LogRecord)
    d = rec.__dict__
    d["_time"] = None
    d["stream"] = stream
    d["partial"] = partial
    d["data"] = data
    d["stamp"] = stamp
    return rec


def parse_line(line: bytes) -> LogRecord | None:
    """Parse one k8s-file line (a trailing `\\n` is dropped); None, with a warning, if malformed."""
    if line.endswith(b"\n"):
        line = line[:-1]
    rec = _parse(line)
    if rec is None:
        log.warning("skipping malformed log line %r", line[:120])
    return rec


# -- timestamps ----------------------------------------------------------------------------
_TZ_CACHE: dict[bytes, timezone] = {}
_SECONDS_CACHE: dict[bytes, int] = {}


def _stamp_tz(offset: bytes) -> timezone:
    tz = _TZ_CACHE.get(offset)
    if tz is None:
        if offset == b"Z":
            tz = timezone.utc
        else:
            minutes = int(offset[1:3]) * 60 + int(offset[4:6])
            tz = timezone(timedelta(minutes=-minutes if offset[:1] == b"-" else minutes))
        _TZ_CACHE[offset] = tz
    return tz


def _stamp_datetime(stamp: bytes) -> datetime:
    """`2026-11-28T14:48:53.696212815+01:00` as an aware datetime (microsecond precision)."""
    return datetime(
        int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10]),
        int(stamp[11:13]), int(stamp[14:16]), int(stamp[17:19]),
        int(stamp[20:26]), _stamp_tz(stamp[29:]),
    )


def _stamp_ns(stamp: bytes) -> int:
    """Epoch nanoseconds of a stamp; whole seconds are cached since records share them."""
    key = stamp[:19] + stamp[29:]
    seconds = _SECONDS_CACHE.get(key)
    if seconds is None:
        dt = _stamp_datetime(stamp[:20] + b"000000000" + stamp[29:])
        seconds = int(dt.timestamp())  # tz-aware and whole seconds: exact
        if len(_SECONDS_CACHE) > 4096:
            _SECONDS_CACHE.clear()
        _SECONDS_CACHE[key] = seconds
    return seconds * 1_000_000_000 + int(stamp[20:29])


def _datetime_ns(dt: datetime) -> int:
    """Epoch nanoseconds of an aware datetime, keeping a parse_since `nanosecond` if present."""
    if dt.tzinfo is None:
        dt = dt.astimezone()
    delta = dt - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    nanos = getattr(dt, "nanosecond", None)
    extra = nanos % 1000 if isinstance(nanos, int) and nanos // 1000 == dt.microsecond else 0
    return micros * 1000 + extra


def _format_time(dt: datetime, nanos: int) -> str:
    """Go's `2006-01-02T15:04:05.000000000Z07:00` for a datetime plus its nanoseconds."""
    offset = dt.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        zone = "Z"
    else:
        minutes = int(offset.total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{nanos:09d}{zone}"


# -- reading -------------------------------------------------------------------------------
class _Skipped:
    """Counts malformed lines so a big bad file gives one warning, not thousands."""

    def __init__(self) -> None:
        self.count = 0
        self.first: bytes = b""

    def add(self, line: bytes) -> None:
        if not self.count:
            self.first = line[:120]
        self.count += 1

    def report(self, path: Any) -> None:
        if self.count:
            log.warning("skipped %d malformed line(s) in %s (first: %r)", self.count, path, self.first)
            self.count = 0


def _parse_lines(lines: Iterable[bytes], skipped: _Skipped) -> list[LogRecord]:
    out: list[LogRecord] = []
    append = out.append
    parse = _parse
    for line in lines:
        if not line:
            continue
        rec = parse(line)
        if rec is None:
            skipped.add(line)
        else:
            append(rec)
    return out


def _read_all(f: BinaryIO, skipped: _Skipped) -> list[LogRecord]:
    return _parse_lines(f.read().split(b"\n"), skipped)


def _read_tail(f: BinaryIO, end: int, tail: int, skipped: _Skipped) -> list[LogRecord]:
    """The records of the last `tail` lines before offset `end`, reading backwards in blocks.

    Only F records count as lines, plus the very last record even if it is P; P records
    before a counted F belong to it and are kept.
    """
    if tail <= 0:
        return []
    found: list[LogRecord] = []  # newest first
    counted = 0
    pos = end
    pending: list[bytes] = []  # chunks of the first, still incomplete line (newest first)
    while pos > 0:
        start = max(0, pos - _BLOCK)
        f.seek(start)
        chunk = f.read(pos - start)
        pos = start
        if pos > 0 and b"\n" not in chunk:
            pending.append(chunk)
            continue
        if pending:
            chunk += b"".join(reversed(pending))
            pending.clear()
        parts = chunk.split(b"\n")
        if pos > 0:
            pending.append(parts[0])
            stop_at = 0
        else:
            stop_at = -1
        for i in range(len(parts) - 1, stop_at, -1):
            line = parts[i]
            if not line:
                continue
            rec = _parse(line)
            if rec is None:
                skipped.add(line)
                continue
            if not rec.partial or not found:
                counted += 1
                if counted > tail:
                    found.reverse()
                    return found
            found.append(rec)
    found.reverse()
    return found


def _since_ns(value: datetime | None) -> int | None:
    return None if value is None else _datetime_ns(value)


def _in_window(rec: LogRecord, since_ns: int | None, until_ns: int | None, skipped: _Skipped) -> bool:
    """Podman's strict `time.After(since)` / `time.Before(until)`; bad dates count as malformed."""
    try:
        t = rec.time_ns
    except ValueError:
        skipped.add(rec.stamp)
        return False
    return (since_ns is None or t > since_ns) and (until_ns is None or t < until_ns)


def read_records(path: str | os.PathLike[str], *, since: datetime | None = None,
                 until: datetime | None = None, tail: int | None = None) -> list[LogRecord]:
    """The log's records: the last `tail` lines first (None or <0 = all), then since/until."""
    skipped = _Skipped()
    with open(path, "rb") as f:
        if tail is None or tail < 0:
            records = _read_all(f, skipped)
        else:
            records = _read_tail(f, os.fstat(f.fileno()).st_size, tail, skipped)
    if since is not None or until is not None:
        s, u = _since_ns(since), _since_ns(until)
        records = [r for r in records if _in_window(r, s, u, skipped)]
    skipped.report(path)
    return records


def split_streams(path: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    """The whole stdout and stderr content, each reassembled as the container wrote it."""
    out: list[bytes] = []
    err: list[bytes] = []
    for rec in read_records(path):
        target = out if rec.stream == "stdout" else err
        target.append(rec.data)
        if not rec.partial:
            target.append(b"\n")
    return b"".join(out), b"".join(err)


# -- following -----------------------------------------------------------------------------
class _Follower:
    """An open log that is read forward, reopened when conmon renames a new file over it."""

    def __init__(self, path: str | os.PathLike[str], f: BinaryIO, skipped: _Skipped):
        self.path = path
        self.f = f
        self.offset = 0
        self.fragment = b""  # bytes after the last newline read so far
        self.skipped = skipped

    def read(self) -> list[LogRecord] | None:
        """Records completed by newly appended bytes; None when nothing new was there."""
        if os.fstat(self.f.fileno()).st_size < self.offset:
            log.debug("%s was truncated; reading it from the start", self.path)
            self.f.seek(0)
            self.offset = 0
            self.fragment = b""
        chunk = self.f.read(_FOLLOW_READ)
        if not chunk:
            return None
        self.offset += len(chunk)
        cut = chunk.rfind(b"\n")
        if cut < 0:
            self.fragment += chunk
            return []
        lines = (self.fragment + chunk[:cut]).split(b"\n")
        self.fragment = chunk[cut + 1:]
        return _parse_lines(lines, self.skipped)

    def flush(self) -> list[LogRecord]:
        """The unterminated last line, if it parses (conmon always ends records with \\n)."""
        fragment, self.fragment = self.fragment, b""
        rec = _parse(fragment) if fragment else None
        return [rec] if rec is not None else []

    def replaced(self) -> bool:
        """True if the path now names another file than the one we have open."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # between unlink and rename: keep the old file until the new one lands
        own = os.fstat(self.f.fileno())
        return (st.st_ino, st.st_dev) != (own.st_ino, own.st_dev)

    def reopen(self) -> list[LogRecord]:
        """Switch to the file now at the path; returns what the old file still completed."""
        left = self.flush()
        try:
            f = open(self.path, "rb", buffering=0)  # noqa: SIM115 - owned by the follower
        except FileNotFoundError:
            return left
        log.debug("%s was replaced (log-size-max); following the new file", self.path)
        self.f.close()
        self.f = f
        self.offset = 0
        return left

    def close(self) -> None:
        self.f.close()


def _open_when_present(path: str | os.PathLike[str], is_running: Callable[[], bool],
                       poll_interval: float, sleep: Callable[[float], bool]) -> BinaryIO | None:
    """Open the log, waiting for it to appear while the container runs."""
    while True:
        try:
            return open(path, "rb", buffering=0)
        except FileNotFoundError:
            if not is_running():
                try:
                    return open(path, "rb", buffering=0)
                except FileNotFoundError:
                    return None
        if sleep(poll_interval):
            return None


def _find_line_end(f: BinaryIO, size: int) -> int:
    """Offset just past the last newline before `size` (0 if none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - _BLOCK)
        f.seek(start)
        cut = f.read(pos - start).rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        pos = start
    return 0


def follow_records(path: str | os.PathLike[str], *, is_running: Callable[[], bool],
                   since: datetime | None = None, tail: int | None = None,
                   poll_interval: float = 0.1,
                   stop: threading.Event | None = None) -> Iterator[LogRecord]:
    """Existing records, then new ones as conmon appends them (`podman logs -f`).

    Ends once `is_running()` is False and the file is drained, or as soon as `stop` is set.
    Survives truncation and conmon's log-size-max rename of a fresh file over the log.
    """
    halt = stop if stop is not None else threading.Event()
    sleep = halt.wait  # returns True as soon as `stop` is set
    skipped = _Skipped()
    f = _open_when_present(path, is_running, poll_interval, sleep)
    if f is None:
        return
    follower = _Follower(path, f, skipped)
    since_ns = _since_ns(since)

    def wanted(batch: list[LogRecord]) -> Iterator[LogRecord]:
        for rec in batch:
            if halt.is_set():
                return
            if since_ns is None or _in_window(rec, since_ns, None, skipped):
                yield rec

    try:
        if tail is not None and tail >= 0:
            end = _find_line_end(f, os.fstat(f.fileno()).st_size)
            yield from wanted(_read_tail(f, end, tail, skipped))
            f.seek(end)
            follower.offset = end
        finishing = False
        while not halt.is_set():
            batch = follower.read()
            if batch is not None:
                yield from wanted(batch)
                continue
            if follower.replaced():
                yield from wanted(follower.reopen())
                continue
            if finishing:
                yield from wanted(follower.flush())
                return
            if not is_running():
                finishing = True  # one more pass picks up what was written before the exit
                continue
            skipped.report(path)
            if sleep(poll_interval):
                return
    finally:
        skipped.report(path)
        follower.close()


# -- rendering -----------------------------------------------------------------------------
def render(records: Iterable[LogRecord], *, timestamps: bool = False) -> Iterator[tuple[str, bytes]]:
    """(stream, bytes) chunks as `podman logs` writes them: F adds the newline, P does not."""
    for rec in records:
        data = rec.data if rec.partial else rec.data + b"\n"
        if timestamps:
            data = rec.timestamp_text() + b" " + data
        yield rec.stream, data


# -- --since / --until -----------------------------------------------------------------------
class _NanoDatetime(datetime):
    """A datetime that also remembers the nanoseconds it was parsed with."""

    __slots__ = ("nanosecond",)
    nanosecond: int


_DATE_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?"
)
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
            "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_HELP = ("use an RFC3339 timestamp (2006-01-02T15:04:05Z07:00), a date (2006-01-02), "
         "a Unix timestamp in seconds, or a duration such as 10m or 1h30m")


def _from_ns(ns: int, tz: timezone) -> datetime:
    """An aware datetime for epoch nanoseconds, keeping sub-microsecond digits."""
    base = _EPOCH + timedelta(microseconds=ns // 1000)
    dt = base.astimezone(tz)
    if ns % 1000:
        nano = _NanoDatetime(dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second,
                             dt.microsecond, dt.tzinfo)
        nano.nanosecond = dt.microsecond * 1000 + ns % 1000
        return nano
    return dt


def _parse_date(value: str) -> datetime | None:
    m = _DATE_RE.fullmatch(value)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    if zone is None or zone == "Z":
        tz = timezone.utc  # Go's time.Parse: no zone in the input means UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    wall = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                    int(second or 0), tzinfo=tz)
    return _from_ns(_datetime_ns(wall) + nanos, tz)


def _parse_unix(value: str) -> datetime | None:
    if _NUMBER_RE.fullmatch(value) is None:
        return None
    from decimal import Decimal, InvalidOperation

    try:
        ns = int(Decimal(value) * 1_000_000_000)  # truncates toward zero like Go's math.Modf
    except InvalidOperation:
        return None
    return _from_ns(ns, timezone.utc)


def parse_duration(value: str) -> int | None:
    """Go's time.ParseDuration, in nanoseconds; None if `value` is not a duration."""
    sign = 1
    body = value
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        return None
    total = 0
    pos = 0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if m is None or not (m.group(1) or m.group(2)):
            return None
        whole, frac, unit = m.groups()
        scale = _UNIT_NS[unit]
        total += int(whole or 0) * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        pos = m.end()
    return sign * total


def _parse_time(value: str, now: datetime | None, direction: int) -> datetime:
    text = value.strip()
    try:
        parsed = _parse_date(text) or _parse_unix(text)
    except (ValueError, OverflowError) as exc:
        raise InvalidTimeValue(f"invalid time value {value!r}: {exc}") from None
    if parsed is not None:
        return parsed
    nanos = parse_duration(text)
    if nanos is None:
        raise InvalidTimeValue(f"unable to interpret time value {value!r}: {_HELP}")
    base = datetime.now().astimezone() if now is None else now
    if base.tzinfo is None:
        base = base.astimezone()
    try:
        return _from_ns(_datetime_ns(base) + direction * nanos, base.tzinfo)  # type: ignore[arg-type]
    except (ValueError, OverflowError):
        raise InvalidTimeValue(f"time value {value!r} is out of range") from None


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """A `--since` value as an aware datetime; durations count back from `now`.

    Raises InvalidTimeValue (a ValueError) naming the accepted forms.
    """
    return _parse_time(value, now, -1)


def parse_until(value: str, now: datetime | None = None) -> datetime:
    """A `--until` value: as parse_since, but podman 4.3 adds durations to `now`."""
    return _parse_time(value, now, +1)
