"""The k8s-file log reader: parsing, --tail/--since/--until, rendering and --follow."""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from workbench.engine import logs
from workbench.engine.errors import InvalidArgument
from workbench.engine.logs import LogRecord

PLUS1 = timezone(timedelta(hours=1))


def line(second: int, stream: str = "stdout", tag: str = "F", data: bytes = b"x",
         nanos: int = 0, offset: str = "+00:00") -> bytes:
    """One conmon k8s-file line, newline included."""
    stamp = f"2026-11-28T14:48:{second:02d}.{nanos:09d}{offset}".encode()
    return stamp + b" " + stream.encode() + b" " + tag.encode() + b" " + data + b"\n"


def write(path, *lines: bytes) -> None:
    with open(path, "ab") as f:
        f.write(b"".join(lines))


def datas(records) -> list[bytes]:
    return [r.data for r in records]


# -- parse_line -----------------------------------------------------------------------------
def test_parse_full_line():
    rec = logs.parse_line(b"2026-11-28T14:48:53.696212815+01:00 stdout F hello\n")
    assert rec is not None
    assert (rec.stream, rec.partial, rec.data) == ("stdout", False, b"hello")
    assert rec.time == datetime(2026, 11, 28, 14, 48, 53, 696212, tzinfo=PLUS1)
    assert rec.time.utcoffset() == timedelta(hours=1)
    assert rec.nanos == 696212815
    assert rec.time_ns == int(datetime(2026, 11, 28, 13, 48, 53, tzinfo=timezone.utc).timestamp()) \
        * 10**9 + 696212815


def test_parse_partial_and_stderr():
    p = logs.parse_line(b"2026-11-28T14:48:53.000000001+00:00 stdout P partial\n")
    e = logs.parse_line(b"2026-11-28T14:48:54.697860015+00:00 stderr F err")
    assert (p.stream, p.partial, p.data) == ("stdout", True, b"partial")
    assert (e.stream, e.partial, e.data) == ("stderr", False, b"err")


def test_parse_keeps_inner_spaces_and_tty_carriage_return():
    rec = logs.parse_line(b"2026-11-28T14:48:53.696212815-05:30 stdout F  two  spaces \r\n")
    assert rec.data == b" two  spaces \r"
    assert rec.time.utcoffset() == -timedelta(hours=5, minutes=30)


def test_parse_empty_content_and_binary():
    assert logs.parse_line(b"2026-11-28T14:48:53.696212815+00:00 stdout F \n").data == b""
    assert logs.parse_line(b"2026-11-28T14:48:53.696212815Z stdout F \xff\x00").data == b"\xff\x00"


@pytest.mark.parametrize("bad", [
    b"",
    b"hello world",
    b"2026-11-28T14:48:53.696212815+00:00 stdout F",  # podman needs 4 fields
    b"2026-11-28T14:48:53.696212815+00:00 stdin F x",
    b"2026-11-28T14:48:53.696212815+00:00 stdout X x",
    b"2026-11-28T14:48:53.6962+00:00 stdout F x",
    b"2026-11-28 14:48:53.696212815+00:00 stdout F x",
    b"2026-13-28T14:48:53.696212815+00:00 stdout F x",
    b"2026-11-28T14:48:53.696212815 stdout F x",
])
def test_parse_malformed_returns_none_and_warns(bad, caplog):
    with caplog.at_level(logging.WARNING, logger="workbench.engine.logs"):
        assert logs.parse_line(bad) is None
    assert "malformed" in caplog.text


def test_record_is_frozen_and_constructible():
    t = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    rec = LogRecord(t, "stdout", False, b"hi")
    assert rec == LogRecord(time=t, stream="stdout", partial=False, data=b"hi")
    assert rec.nanos == 123456000
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.data = b"no"  # type: ignore[misc]
    with pytest.raises(TypeError):
        LogRecord(datetime(2026, 1, 2), "stdout", False, b"naive time")


# -- read_records -----------------------------------------------------------------------------
def test_read_skips_malformed_lines_with_one_warning(tmp_path, caplog):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"a"), b"garbage\n", b"\n", line(2, data=b"b"), b"more garbage\n")
    with caplog.at_level(logging.WARNING, logger="workbench.engine.logs"):
        assert datas(logs.read_records(p)) == [b"a", b"b"]
    assert [r.getMessage() for r in caplog.records if "skipped 2 malformed" in r.getMessage()]


def test_read_includes_unterminated_last_line(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"a"), line(2, data=b"b")[:-1])
    assert datas(logs.read_records(p)) == [b"a", b"b"]
    assert datas(logs.read_records(p, tail=1)) == [b"b"]


def _sample(tmp_path):
    p = tmp_path / "ctr.log"
    write(p,
          line(1, data=b"a"),
          line(2, tag="P", data=b"b1"), line(3, tag="P", data=b"b2"), line(4, data=b"b3"),
          line(5, stream="stderr", data=b"c"))
    return p


def test_tail_counts_full_lines_and_keeps_their_partials(tmp_path):
    p = _sample(tmp_path)
    assert datas(logs.read_records(p, tail=1)) == [b"c"]
    assert datas(logs.read_records(p, tail=2)) == [b"b1", b"b2", b"b3", b"c"]
    assert datas(logs.read_records(p, tail=3)) == [b"a", b"b1", b"b2", b"b3", b"c"]
    assert datas(logs.read_records(p, tail=99)) == [b"a", b"b1", b"b2", b"b3", b"c"]
    assert logs.read_records(p, tail=0) == []
    assert datas(logs.read_records(p, tail=-1)) == datas(logs.read_records(p))


def test_tail_counts_a_trailing_partial_as_a_line(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"a"), line(2, data=b"b"),
          line(3, tag="P", data=b"c1"), line(4, tag="P", data=b"c2"))
    assert datas(logs.read_records(p, tail=1)) == [b"c1", b"c2"]
    assert datas(logs.read_records(p, tail=2)) == [b"b", b"c1", b"c2"]


def _naive_tail(records, n):
    """Reference: group records into lines (each F closes one, trailing P's form the last)."""
    groups, current = [], []
    for r in records:
        current.append(r)
        if not r.partial:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return [r for g in groups[len(groups) - n:] for r in g] if n else []


def test_tail_matches_reference_across_block_boundaries(tmp_path, monkeypatch):
    rng = random.Random(7)
    p = tmp_path / "ctr.log"
    lines = []
    for i in range(300):
        data = bytes(rng.choice(b"ab \r") for _ in range(rng.randrange(0, 90)))
        lines.append(line(i % 60, stream=rng.choice(["stdout", "stderr"]),
                          tag="P" if rng.random() < 0.4 else "F", data=data, nanos=i))
    write(p, *lines)
    everything = logs.read_records(p)
    assert len(everything) == 300
    for block in (7, 64, 1000, 65536):
        monkeypatch.setattr(logs, "_BLOCK", block)
        for n in (1, 2, 5, 17, 150, 400):
            got = logs.read_records(p, tail=n)
            assert [(r.stamp, r.data) for r in got] == \
                [(r.stamp, r.data) for r in _naive_tail(everything, n)], (block, n)


def test_tail_on_big_file_reads_only_the_end(tmp_path, monkeypatch):
    p = tmp_path / "ctr.log"
    block = b"".join(line(i % 60, data=b"filler %d " % i + b"z" * 100) for i in range(1000))
    with open(p, "wb") as f:
        for _ in range(40):  # ~6 MB
            f.write(block)
        f.write(line(59, data=b"last-1") + line(59, data=b"last"))
    assert os.path.getsize(p) > 5_000_000

    read_bytes = []
    real_open = open

    class Counting:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            data = self.f.read(n)
            read_bytes.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(logs, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False)
    got = logs.read_records(p, tail=2)
    assert datas(got) == [b"last-1", b"last"]
    assert sum(read_bytes) <= 2 * 65536  # read from the end, not the whole file


def test_since_and_until_are_strict_and_compare_instants(tmp_path):
    p = tmp_path / "ctr.log"
    write(p,
          line(1, data=b"a", nanos=5),
          line(2, data=b"b", nanos=500),
          line(3, data=b"c", offset="+01:00"),  # an hour earlier than the others
          line(4, data=b"d"))
    t2 = datetime(2026, 11, 28, 14, 48, 2, tzinfo=timezone.utc)
    assert datas(logs.read_records(p, since=t2)) == [b"b", b"d"]
    assert datas(logs.read_records(p, until=t2)) == [b"a", b"c"]
    # "a" is 5 ns after `since`; "d" is exactly at `until` (the same instant as 15:48:04+01:00)
    assert datas(logs.read_records(p, since=t2 - timedelta(seconds=1),
                                   until=datetime(2026, 11, 28, 15, 48, 4, tzinfo=PLUS1))) == [b"a", b"b"]


def test_since_keeps_nanosecond_precision(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"a", nanos=123456789), line(1, data=b"b", nanos=123456790))
    since = logs.parse_since("2026-11-28T14:48:01.123456789Z")
    assert datas(logs.read_records(p, since=since)) == [b"b"]


def test_tail_is_applied_before_since(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"a"), line(2, data=b"b"), line(3, data=b"c"))
    since = datetime(2026, 11, 28, 14, 48, 2, 500000, tzinfo=timezone.utc)
    assert datas(logs.read_records(p, since=since, tail=2)) == [b"c"]


def test_impossible_date_is_skipped_when_filtering(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, b"2026-02-31T14:48:01.000000000+00:00 stdout F bad\n", line(2, data=b"ok"))
    assert datas(logs.read_records(p)) == [b"bad", b"ok"]  # times are parsed lazily
    assert datas(logs.read_records(p, since=datetime(2000, 1, 1, tzinfo=timezone.utc))) == [b"ok"]


def test_split_streams_reassembles_partials(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, tag="P", data=b"hel"), line(1, stream="stderr", data=b"oops"),
          line(2, data=b"lo"), line(3, stream="stderr", tag="P", data=b"no newline"))
    assert logs.split_streams(p) == (b"hello\n", b"oops\nno newline")


def test_hundred_thousand_lines_render_without_parsing_a_single_time(tmp_path, monkeypatch):
    """Rendering never needs a record's datetime (parsing one per line made `logs` slow); the time
    is parsed only when asked for. (Speed itself is measured in bench/, not here.)"""
    p = tmp_path / "ctr.log"
    write(p, *(line(i % 60, tag="P" if i % 5 == 0 else "F", data=b"line %d" % i, nanos=i)
               for i in range(100_000)))
    parsed = []
    real = logs._stamp_datetime
    monkeypatch.setattr(logs, "_stamp_datetime", lambda stamp: parsed.append(stamp) or real(stamp))
    records = logs.read_records(p)
    chunks = list(logs.render(records))
    assert len(chunks) == 100_000
    assert chunks[1] == ("stdout", b"line 1\n")
    assert parsed == []
    assert records[1].time.year >= 1970 and len(parsed) == 1


# -- render ---------------------------------------------------------------------------------
def test_render_without_timestamps(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, tag="P", data=b"a "), line(1, data=b"b\r"), line(2, stream="stderr", data=b"e"))
    assert list(logs.render(logs.read_records(p))) == [
        ("stdout", b"a "), ("stdout", b"b\r\n"), ("stderr", b"e\n")]


def test_render_with_timestamps_keeps_nanoseconds_and_go_zone():
    recs = [
        logs.parse_line(b"2026-11-28T14:48:53.000000100+00:00 stdout P part"),
        logs.parse_line(b"2026-11-28T14:48:53.696212815+01:00 stdout F full"),
        logs.parse_line(b"2026-11-28T14:48:54.000000000-03:00 stderr F err"),
    ]
    assert list(logs.render(recs, timestamps=True)) == [
        ("stdout", b"2026-11-28T14:48:53.000000100Z part"),
        ("stdout", b"2026-11-28T14:48:53.696212815+01:00 full\n"),
        ("stderr", b"2026-11-28T14:48:54.000000000-03:00 err\n"),
    ]


def test_render_timestamps_of_constructed_records():
    recs = [LogRecord(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc), "stdout", False, b"u"),
            LogRecord(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(-timedelta(hours=7))),
                      "stderr", True, b"p")]
    assert list(logs.render(recs, timestamps=True)) == [
        ("stdout", b"2026-01-02T03:04:05.000006000Z u\n"),
        ("stderr", b"2026-01-02T03:04:05.000000000-07:00 p"),
    ]


# -- parse_since ------------------------------------------------------------------------------
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("value, expected", [
    ("2024-01-02T03:04:05.123456789Z", datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)),
    ("2024-01-02T03:04:05+02:00", datetime(2024, 1, 2, 1, 4, 5, tzinfo=timezone.utc)),
    ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ("2024-01-02T03:04:05.5", datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc)),
    ("2024-01-02", datetime(2024, 1, 2, tzinfo=timezone.utc)),
    ("2024-01-02-05:00", datetime(2024, 1, 2, 5, tzinfo=timezone.utc)),
    ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)),
    ("1700000000.25", datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=timezone.utc)),
    ("10m", NOW - timedelta(minutes=10)),
    ("1h30m", NOW - timedelta(hours=1, minutes=30)),
    ("2.5s", NOW - timedelta(seconds=2.5)),
    ("1m500ms", NOW - timedelta(minutes=1, milliseconds=500)),
    ("-5m", NOW + timedelta(minutes=5)),
    ("0", datetime(1970, 1, 1, tzinfo=timezone.utc)),  # a Unix timestamp, as in Go
])
def test_parse_since_forms(value, expected):
    got = logs.parse_since(value, now=NOW)
    assert got == expected
    assert got.tzinfo is not None


def test_parse_since_keeps_offset_and_nanoseconds():
    got = logs.parse_since("2024-01-02T03:04:05.123456789+02:00")
    assert got.utcoffset() == timedelta(hours=2)
    assert got.nanosecond == 123456789
    assert logs.parse_since("1700000000.000000001").nanosecond == 1


def test_parse_since_default_now_is_current_time():
    before = datetime.now(timezone.utc)
    got = logs.parse_since("1h")
    assert before - timedelta(hours=1, seconds=5) < got <= datetime.now(timezone.utc) - timedelta(hours=1)


def test_parse_until_adds_durations():
    assert logs.parse_until("10m", now=NOW) == NOW + timedelta(minutes=10)
    assert logs.parse_until("2024-01-02", now=NOW) == datetime(2024, 1, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize("value", ["", "yesterday", "10x", "1h30", ".s", "2024-13-01", "2024-01-02T25:00:00",
                                   "inf", "nan", "1e400", "h", "--5m"])
def test_parse_since_rejects_garbage(value):
    with pytest.raises(ValueError) as info:
        logs.parse_since(value, now=NOW)
    assert isinstance(info.value, InvalidArgument)
    assert repr(value) in str(info.value)


# -- follow_records -----------------------------------------------------------------------------
def _consume(gen, out: list, done: threading.Event) -> threading.Thread:
    def run():
        for rec in gen:
            out.append(rec)
        done.set()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def _wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_follow_yields_existing_then_appended_then_stops(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"old"))
    running = threading.Event()
    running.set()
    out: list = []
    done = threading.Event()
    _consume(logs.follow_records(p, is_running=running.is_set, poll_interval=0.01), out, done)
    assert _wait_for(lambda: datas(out) == [b"old"])

    def writer():
        for i in range(20):
            rec = line(2, data=b"new%d" % i)
            with open(p, "ab") as f:  # split the write mid-line, as a slow writer could
                f.write(rec[:10])
                f.flush()
                time.sleep(0.002)
                f.write(rec[10:])
        write(p, line(3, tag="P", data=b"tail-partial"))
        running.clear()

    w = threading.Thread(target=writer)
    w.start()
    w.join()
    assert done.wait(5)
    assert datas(out) == [b"old"] + [b"new%d" % i for i in range(20)] + [b"tail-partial"]
    assert out[-1].partial


def test_follow_drains_lines_written_just_before_exit(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"a"))
    calls = []

    def is_running():
        calls.append(1)
        if len(calls) == 1:
            write(p, line(2, data=b"written as the container exits"))
        return False

    got = list(logs.follow_records(p, is_running=is_running, poll_interval=0.01))
    assert datas(got) == [b"a", b"written as the container exits"]


def test_follow_survives_rename_over_rotation(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"before-1"), line(1, data=b"before-2"))
    running = threading.Event()
    running.set()
    gen = logs.follow_records(p, is_running=running.is_set, poll_interval=0.01)
    first = next(gen)  # the old file is open now
    assert first.data == b"before-1"
    out: list = [first]
    done = threading.Event()
    _consume(gen, out, done)
    assert _wait_for(lambda: len(out) == 2)
    old_inode = os.stat(p).st_ino

    write(p, line(2, data=b"last-old"))
    tmp = str(p) + ".tmp"
    with open(tmp, "wb"):  # conmon: O_TRUNC the .tmp, rename it over the log, keep writing
        pass
    os.rename(tmp, p)
    assert os.stat(p).st_ino != old_inode
    write(p, line(3, data=b"after-1"))
    assert _wait_for(lambda: b"after-1" in datas(out))
    write(p, line(4, data=b"after-2"))
    running.clear()
    assert done.wait(5)
    assert datas(out) == [b"before-1", b"before-2", b"last-old", b"after-1", b"after-2"]


def test_follow_restarts_after_in_place_truncation(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"a" * 200), line(1, data=b"b" * 200))
    running = threading.Event()
    running.set()
    out: list = []
    done = threading.Event()
    _consume(logs.follow_records(p, is_running=running.is_set, poll_interval=0.01), out, done)
    assert _wait_for(lambda: len(out) == 2)
    with open(p, "r+b") as f:
        f.truncate(0)
    write(p, line(2, data=b"fresh"))
    assert _wait_for(lambda: len(out) == 3)
    running.clear()
    assert done.wait(5)
    assert datas(out)[2] == b"fresh"


def test_follow_with_tail_and_since(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"a"), line(2, data=b"b"), line(3, data=b"c"), line(4, data=b"d"))
    state = {"n": 0}

    def is_running():
        state["n"] += 1
        if state["n"] == 1:
            write(p, line(0, data=b"too old"), line(5, data=b"e"))
            return True
        return False

    since = datetime(2026, 11, 28, 14, 48, 2, 500000, tzinfo=timezone.utc)
    got = logs.follow_records(p, is_running=is_running, tail=3, since=since, poll_interval=0.01)
    assert datas(got) == [b"c", b"d", b"e"]


def test_follow_tail_leaves_unfinished_line_for_later(tmp_path):
    p = tmp_path / "ctr.log"
    half = line(2, data=b"second")
    write(p, line(1, data=b"first"), half[:15])
    calls = []

    def is_running():
        calls.append(1)
        if len(calls) == 1:
            write(p, half[15:])
            return True
        return False

    got = logs.follow_records(p, is_running=is_running, tail=5, poll_interval=0.01)
    assert datas(got) == [b"first", b"second"]


def test_follow_stops_promptly_when_stop_is_set(tmp_path):
    p = tmp_path / "ctr.log"
    write(p, line(1, data=b"a"))
    stop = threading.Event()
    out: list = []
    done = threading.Event()
    _consume(logs.follow_records(p, is_running=lambda: True, poll_interval=30, stop=stop), out, done)
    assert _wait_for(lambda: len(out) == 1)
    start = time.monotonic()
    stop.set()
    assert done.wait(2)
    assert time.monotonic() - start < 1


def test_follow_missing_file_of_stopped_container_yields_nothing(tmp_path):
    assert list(logs.follow_records(tmp_path / "nope.log", is_running=lambda: False)) == []


def test_follow_waits_for_the_file_to_appear(tmp_path):
    p = tmp_path / "ctr.log"
    running = threading.Event()
    running.set()
    out: list = []
    done = threading.Event()
    _consume(logs.follow_records(p, is_running=running.is_set, poll_interval=0.01), out, done)
    time.sleep(0.05)
    write(p, line(1, data=b"late"))
    assert _wait_for(lambda: len(out) == 1)
    running.clear()
    assert done.wait(5)
    assert datas(out) == [b"late"]
