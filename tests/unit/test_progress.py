"""Byte progress: the meter's reports and the notebook's bar for known, unknown and finished work."""

from __future__ import annotations

import io

from workbench.engine.progress import UNKNOWN, Meter
from workbench.notebook import progress_html


def test_a_meter_reports_every_quarter_megabyte_and_ends_with_done_equal_total():
    calls = []
    meter = Meter(lambda done, total: calls.append((done, total)), total=1_000_000)
    reader = meter.reader(io.BytesIO(b"x" * 1_000_000))
    while reader.read(100_000):
        pass
    meter.finish()
    assert calls[0] == (100_000, 1_000_000)  # the first bytes are shown at once
    assert [done for done, _ in calls[1:-1]] == [400_000, 700_000, 1_000_000]
    assert calls[-1] == (1_000_000, 1_000_000)


def test_a_writer_counts_what_it_writes_and_an_unknown_total_stays_unknown_until_the_end():
    calls = []
    meter = Meter(lambda done, total: calls.append((done, total)))
    out = io.BytesIO()
    writer = meter.writer(out)
    for _ in range(3):
        writer.write(b"y" * 300_000)
    meter.finish()
    assert out.getvalue() == b"y" * 900_000 and writer.tell() == 900_000  # the stream's own methods
    assert all(total == UNKNOWN for _, total in calls[:-1]) and calls[-1] == (900_000, 900_000)


def test_without_a_callback_a_meter_only_counts():
    meter = Meter(None, 10)
    meter.reader(io.BytesIO(b"0123456789")).read()
    meter.finish()
    assert meter.done == 10


def test_the_bar_shows_bytes_of_a_total_a_moving_bar_while_unknown_and_a_summary_at_the_end():
    assert '<progress value="1000000" max="4000000"' in progress_html(1_000_000, 4_000_000, "saving bb")
    moving = progress_html(3_000_000, UNKNOWN, "exporting box")
    assert "<progress style" in moving and "value=" not in moving and "3 MB" in moving
    assert progress_html(3_000_000, 3_000_000, "exporting box") == "<span>&#10003; exporting box: 3 MB</span>"
    assert progress_html(0, 0, "committing box") == "<span>&#10003; committing box: 0 B</span>"
    assert progress_html(0, UNKNOWN, "debian:bookworm: running apt-get update").startswith(
        "<span>debian:bookworm: running apt-get update <progress")
