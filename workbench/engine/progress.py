"""Byte progress of long local work (load, save, export, commit, import, bootstrap).

A `ByteProgress` callback gets `(done, total)`: bytes so far and the expected total, `UNKNOWN`
while the total cannot be known ahead (an export walks the file system as it writes). The last
call of a piece of work has `done == total`; a notebook draws a bar and ends it in a summary.
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO, Self

ByteProgress = Callable[[int, int], None]

UNKNOWN = -1
_STEP = 256 * 1024  # report at most once per this many bytes (and at the end)


class Meter:
    """Counts bytes toward `total` and reports them to `progress` (which may be None)."""

    def __init__(self, progress: ByteProgress | None, total: int = UNKNOWN):
        self.progress, self.total, self.done, self._reported = progress, total, 0, -_STEP

    def add(self, count: int) -> None:
        self.done += count
        if self.progress is not None and self.done - self._reported >= _STEP:
            self._reported = self.done
            self.progress(self.done, self.total)

    def finish(self) -> None:
        """The end: what was moved is the total."""
        if self.progress is not None:
            self.progress(self.done, self.done)

    def reader(self, stream: BinaryIO) -> BinaryIO:
        """`stream`, counting what is read from it."""
        return _MeteredReader(stream, self)  # type: ignore[return-value]

    def writer(self, stream: BinaryIO) -> BinaryIO:
        """`stream`, counting what is written to it."""
        return _MeteredWriter(stream, self)  # type: ignore[return-value]


class _MeteredReader:
    def __init__(self, stream: BinaryIO, meter: Meter):
        self._stream, self._meter = stream, meter

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._meter.add(len(data))
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        count = self._stream.readinto(buffer)  # type: ignore[attr-defined]
        self._meter.add(count or 0)
        return count

    def __getattr__(self, name: str):  # close, fileno, seekable, ...: the stream's own
        return getattr(self._stream, name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()


class _MeteredWriter:
    def __init__(self, stream: BinaryIO, meter: Meter):
        self._stream, self._meter = stream, meter

    def write(self, data: bytes | bytearray | memoryview) -> int:
        count = self._stream.write(data)
        self._meter.add(len(data) if count is None else count)
        return count

    def __getattr__(self, name: str):  # flush, fileno, tell, ...: the stream's own
        return getattr(self._stream, name)
