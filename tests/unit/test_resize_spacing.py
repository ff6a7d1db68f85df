"""Resizes through one conmon ctl fifo reach it apart: conmon handles one message per read of the
fifo, and a second message that arrived before that read is lost (a session's first size, then a
view's, was lost that way under load)."""

from __future__ import annotations

import os
import select
import threading
import time

from workbench.engine.attach import RESIZE_SPACING, write_resize


def test_two_resizes_through_one_fifo_arrive_apart(tmp_path):
    fifo = str(tmp_path / "ctl")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    reads: list[tuple[float, bytes]] = []

    def read_two() -> None:
        deadline = time.monotonic() + 5
        while len(b"".join(data for _, data in reads).splitlines()) < 2 and time.monotonic() < deadline:
            if select.select([reader], [], [], 0.1)[0]:
                data = os.read(reader, 4096)
                if data:  # b"": no writer has the fifo open just now
                    reads.append((time.monotonic(), data))
                else:
                    time.sleep(0.001)

    thread = threading.Thread(target=read_two)
    thread.start()
    try:
        write_resize(fifo, 20, 70)
        write_resize(fifo, 30, 90)
        thread.join(6)
    finally:
        os.close(reader)
    assert [data for _, data in reads] == [b"1 20 70\n", b"1 30 90\n"]
    assert reads[1][0] - reads[0][0] >= RESIZE_SPACING * 0.9


def test_resizes_through_different_fifos_do_not_wait(tmp_path):
    readers = []
    for name in ("a", "b"):
        os.mkfifo(tmp_path / name)
        readers.append(os.open(tmp_path / name, os.O_RDONLY | os.O_NONBLOCK))
    try:
        started = time.monotonic()
        write_resize(str(tmp_path / "a"), 20, 70)
        write_resize(str(tmp_path / "b"), 20, 70)
        assert time.monotonic() - started < RESIZE_SPACING
    finally:
        for fd in readers:
            os.close(fd)
