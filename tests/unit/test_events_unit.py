"""The events log without containers: formats, time parsing, filters, rotation, concurrent writers, following."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from workbench.engine import events
from workbench.engine.errors import InvalidArgument
from workbench.engine.events import Event

T0 = 1_795_000_000_123_456_789  # 2026-11-18 11:06:40.123456789 UTC


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Podman prints local time; pin the zone so the expected strings hold anywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def ctr(status: str, ns: int = T0, **kw) -> Event:
    base = dict(id="ab" * 32, name="web", image="localhost/busybox:latest", attributes={"app": "x"})
    return Event(events.CONTAINER, status, ns, **{**base, **kw})


def statuses(found) -> list[str]:
    return [e.status for e in found]


# -- formats ----------------------------------------------------------------------------------
def test_rfc3339_nano_drops_trailing_zeros_like_go():
    assert events.rfc3339_nano(T0) == "2026-11-18T11:06:40.123456789Z"
    assert events.rfc3339_nano(1_795_000_000_120_000_000) == "2026-11-18T11:06:40.12Z"
    assert events.rfc3339_nano(1_795_000_000_000_000_000) == "2026-11-18T11:06:40Z"


def test_go_time_string_is_podmans_default_time():
    assert events.go_time(T0) == "2026-11-18 11:06:40.123456789 +0000 UTC"


def test_stamp_round_trips_with_nanoseconds():
    for ns in (T0, 1_795_000_000_000_000_000, 1_795_000_000_100_000_000):
        assert Event.from_json(Event(events.SYSTEM, "refresh", ns).to_json()).time_ns == ns


def test_stamp_in_another_zone_round_trips(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    doc = ctr("start").to_json()
    assert doc["Time"] == "2026-11-18T12:06:40.123456789+01:00"
    assert Event.from_json(doc).time_ns == T0


def test_json_document_has_podmans_keys_and_order():
    doc = ctr("died", exit_code=3).to_json()
    assert list(doc) == ["ContainerExitCode", "ID", "Image", "Name", "Status", "Time", "Type", "Attributes"]
    assert doc["Attributes"] == {"app": "x"}
    image = Event(events.IMAGE, "pull", T0, name="localhost/busybox").to_json()
    assert image == {"Name": "localhost/busybox", "Status": "pull", "Time": "2026-11-18T11:06:40.123456789Z",
                     "Type": "image", "Attributes": None}


def test_human_lines_match_podman():
    assert ctr("start").human() == ("2026-11-18 11:06:40.123456789 +0000 UTC container start " + "ab" * 32
                                    + " (image=localhost/busybox:latest, name=web, app=x)")
    assert ctr("start").human(truncate=True).split()[6] == "ab" * 6
    assert Event(events.IMAGE, "tag", T0, id="cd" * 32, name="localhost/a:latest").human().endswith(
        "image tag " + "cd" * 32 + " localhost/a:latest")
    assert Event(events.NETWORK, "connect", T0, id="ab" * 32, name="web", network="n1").human().endswith(
        f"network connect {'ab' * 32} (container={'ab' * 32}, name=n1)")
    assert Event(events.SYSTEM, "refresh", T0).human() == "2026-11-18 11:06:40.123456789 +0000 UTC system refresh"


def test_record_for_python_has_datetime_and_exact_nanoseconds():
    rec = ctr("died", exit_code=0).to_record()
    assert rec["TimeNano"] == T0
    assert rec["Time"] == datetime(2026, 11, 18, 11, 6, 40, 123457, tzinfo=timezone.utc)
    assert rec["ContainerExitCode"] == 0 and rec["Status"] == "died"


# -- since / until ---------------------------------------------------------------------------------
def test_times_accept_podmans_forms():
    assert events.to_ns("2026-11-18T11:06:40.123456789Z") == T0
    assert events.to_ns("2026-11-18T12:06:40.123456789+01:00") == T0
    assert events.to_ns("1795000000.5") == 1_795_000_000_500_000_000
    assert events.to_ns(datetime(2026, 11, 18, 11, 6, 40, tzinfo=timezone.utc)) == 1_795_000_000_000_000_000
    assert events.to_ns(1795000000) == 1_795_000_000_000_000_000


def test_durations_count_back_for_since_and_forward_for_until():
    now = time.time_ns()
    assert abs(events.to_ns("5m") - (now - 300 * 10**9)) < 2 * 10**9
    assert abs(events.to_ns("5m", until=True) - (now + 300 * 10**9)) < 2 * 10**9


@pytest.mark.parametrize("bad", ["yesterday", "5 minutes", "2026-13-01", ""])
def test_bad_times_are_clear_errors(bad):
    with pytest.raises(InvalidArgument):
        events.to_ns(bad)


# -- filters ------------------------------------------------------------------------------------------
def test_values_of_one_key_are_ored_and_keys_anded():
    match = events.parse_filters(["event=start", "event=stop", "container=web"])
    assert match(ctr("start")) and match(ctr("stop"))
    assert not match(ctr("died"))
    assert not match(ctr("start", name="db", id="ef" * 32))


def test_container_filter_takes_name_or_id_prefix_and_only_containers():
    by_prefix = events.parse_filters(["container=abab"])
    assert by_prefix(ctr("start"))
    assert not by_prefix(Event(events.IMAGE, "tag", T0, id="ab" * 32, name="web"))
    assert events.parse_filters({"container": "web"})(ctr("start"))


def test_label_filter_by_key_value_or_key():
    assert events.parse_filters(["label=app=x"])(ctr("start"))
    assert events.parse_filters(["label=app"])(ctr("start"))
    assert not events.parse_filters(["label=app=y"])(ctr("start"))


def test_type_image_network_and_status_alias_filters():
    img = Event(events.IMAGE, "untag", T0, id="cd" * 32, name="localhost/a:latest")
    net = Event(events.NETWORK, "create", T0, id="ef" * 32, network="n1", attributes={"driver": "bridge"})
    assert events.parse_filters(["type=image"])(img) and not events.parse_filters(["type=image"])(net)
    assert events.parse_filters(["image=localhost/a:latest"])(img)
    assert events.parse_filters(["image=cdcd"])(img)
    assert events.parse_filters(["network=n1"])(net) and not events.parse_filters(["network=n2"])(net)
    assert events.parse_filters(["status=died"])(ctr("died"))
    assert events.parse_filters(["event=die"])(ctr("died"))  # Docker's name


@pytest.mark.parametrize("bad", ["bogus=1", "container", "=x"])
def test_bad_filters_are_clear_errors(bad):
    with pytest.raises(events.InvalidFilter, match="invalid filter"):
        events.parse_filters([bad])


# -- the log -----------------------------------------------------------------------------------------
def test_read_filters_by_time_strictly(tmp_path):
    run = str(tmp_path)
    for i, status in enumerate(["create", "start", "died"]):
        events.write(run, ctr(status, T0 + i * 10**9))
    assert statuses(events.read(run)) == ["create", "start", "died"]
    assert statuses(events.read(run, since="2026-11-18T11:06:41.123456789Z")) == ["died"]
    assert statuses(events.read(run, until="2026-11-18T11:06:41.123456789Z")) == ["create"]
    assert statuses(events.read(run, since="2026-11-18T11:06:40Z", until=1795000002)) == ["create", "start"]


def test_read_with_no_log_yields_nothing(tmp_path):
    assert list(events.read(str(tmp_path))) == []


def test_bad_arguments_fail_before_iterating(tmp_path):
    with pytest.raises(events.InvalidFilter):
        events.read(str(tmp_path), filters=["nope=1"])
    with pytest.raises(InvalidArgument):
        events.read(str(tmp_path), since="soon", follow=True)


def test_malformed_line_is_skipped(tmp_path):
    run = str(tmp_path)
    events.write(run, ctr("create"))
    with open(events.log_path(run), "ab") as f:
        f.write(b"{not json\n")
    events.write(run, ctr("start"))
    assert statuses(events.read(run)) == ["create", "start"]


def test_rotation_keeps_the_newest_events(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "MAX_SIZE", 4096)
    run = str(tmp_path)
    for i in range(200):
        events.write(run, ctr("exec", T0 + i, attributes={"seq": str(i)}))
    path = events.log_path(run)
    assert os.path.getsize(path) <= 4096 + 512 and os.path.getsize(path + ".1") <= 4096 + 512
    seqs = [int(e.attributes["seq"]) for e in events.read(run, filters=["type=container"])]
    assert seqs[-1] == 199
    assert seqs == list(range(seqs[0], 200))  # contiguous: nothing lost between the two files
    assert "rotate" in statuses(events.read(run, filters=["type=system"]))


_WRITER = """
import sys, time
from workbench.engine import events
events.MAX_SIZE = int(sys.argv[3])
for i in range(int(sys.argv[2])):
    events.emit(sys.argv[1], "container", "exec", id=sys.argv[4] * 64, name="w" + sys.argv[4],
                attributes={"seq": str(i), "pad": "x" * 300})
    time.sleep(float(sys.argv[5]))
"""


def _writers(run: str, count: int, max_size: int, names: str, pause: float = 0) -> list[subprocess.Popen]:
    """Processes that each append `count` numbered events; the log rotates past `max_size`."""
    return [subprocess.Popen([sys.executable, "-c", _WRITER, run, str(count), str(max_size), name, str(pause)])
            for name in names]


def test_concurrent_writers_never_interleave_lines(tmp_path):
    run = str(tmp_path)
    procs = _writers(run, 300, 64 * 1024 * 1024, "abcd")
    for p in procs:
        assert p.wait(timeout=60) == 0
    with open(events.log_path(run), "rb") as f:
        lines = f.read().splitlines()
    assert len(lines) == 1200
    docs = [json.loads(line) for line in lines]  # every line whole
    for name in "abcd":
        assert [int(d["Attributes"]["seq"]) for d in docs if d["Name"] == "w" + name] == list(range(300))


def test_follower_sees_new_events_and_misses_nothing_across_rotations(tmp_path):
    run = str(tmp_path)
    stop = threading.Event()
    seen: list[Event] = []
    events.emit(run, events.SYSTEM, "marker")
    follower = events.read(run, follow=True, since=0, stop=stop.is_set)
    thread = threading.Thread(target=lambda: seen.extend(follower), daemon=True)
    thread.start()
    while not seen:  # the follower is reading
        time.sleep(0.01)
    procs = _writers(run, 400, 96 * 1024, "ab", pause=0.001)  # ~200 events per file: a few rotations
    for p in procs:
        assert p.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while len(seen) < 801 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert os.path.exists(events.log_path(run) + ".1")  # it did rotate
    for name in "ab":
        assert [int(e.attributes["seq"]) for e in seen if e.name == "w" + name] == list(range(400))


def test_follow_without_a_time_starts_at_now(tmp_path):
    run = str(tmp_path)
    events.emit(run, events.CONTAINER, "create", id="old")
    stop = threading.Event()
    follower = events.read(run, follow=True, stop=stop.is_set)
    events.emit(run, events.CONTAINER, "start", id="new")
    threading.Timer(0.5, stop.set).start()
    assert [e.id for e in follower] == ["new"]


def test_follow_with_until_reads_from_the_start_and_ends_when_until_passes(tmp_path):
    run = str(tmp_path)
    events.emit(run, events.CONTAINER, "create", id="old")
    follower = events.read(run, follow=True, until=datetime.now(timezone.utc) + timedelta(seconds=1))
    started = time.monotonic()
    events.emit(run, events.CONTAINER, "start", id="new")
    assert [e.id for e in follower] == ["old", "new"]  # as Podman: --until reads from the start
    assert 0.5 < time.monotonic() - started < 5
