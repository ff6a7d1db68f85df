"""A layer's tar kept as its headers plus references to the unpacked files ("tar-split").

An image layer is stored once: unpacked in its layer dir. What the tar had besides file
contents (headers, pax records, padding, the end blocks) is recorded while the layer is applied,
with each regular file's data replaced by a reference to its path. `open_tar` rebuilds the
original tar byte for byte from the two, for `save` and `push`, and checks it against the
layer's diff_id as it streams. A referenced file that the same archive later removes (a duplicate
entry, a whiteout) is first hard-linked into the layer's attic directory as `<record number>`,
where the rebuild takes it from.

Record file: a sequence of records, each a 1-byte kind, an 8-byte big-endian length, a payload:
    R  raw tar bytes (the payload)
    F  file data: 8-byte size + the file's path (relative, "/"-separated, fs-encoded)
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections import deque
from collections.abc import Callable
from typing import BinaryIO

from ..errors import WorkbenchError
from .rootpath import open_in_root

RAW, FILE = b"R", b"F"
_HEAD = struct.Struct(">cQ")
_SIZE = struct.Struct(">Q")
_CHUNK = 1 << 20
_MAX_PATH_RECORD = 8 + 4096


class DamagedLayer(WorkbenchError):
    """A stored layer no longer rebuilds to its tar: a file changed, or a record is damaged."""


class Recorder:
    """Receives the uncompressed tar as it is read (`write`) and the data regions of the regular
    files the applier created (`file`), and writes the records to `out`.

    Bytes are held back until they are known not to belong to a file's data: the tar reader reads
    ahead of the header it parses, so a region is announced after its first bytes may have arrived.
    """

    def __init__(self, out: BinaryIO, attic_fd: int | None = None):
        self._out = out
        self.attic_fd = attic_fd  # where `removing` keeps files (the applier links them there)
        self._buf = bytearray()
        self._cursor = 0  # stream offset of _buf[0]
        self._regions: deque[tuple[int, int, str]] = deque()  # (start, end, path), in stream order
        self._raw = bytearray()  # raw bytes not yet written as a record
        self._kept: dict[str, list[int]] = {}  # path -> index of its F records still in the layer dir
        self._records = 0

    def write(self, data: bytes) -> None:
        self._buf += data
        self._advance(final=False)

    def file(self, offset: int, size: int, path: str) -> None:
        """The `size` bytes at stream `offset` are the data of the file now at `path`."""
        if size:
            self._regions.append((offset, offset + size, path))
            self._advance(final=False)

    def removing(self, path: str, keep: Callable[[str, str], None]) -> None:
        """`path` (a file, or a directory and all below it) is about to be removed: each referenced
        file there is kept first, by `keep(its path, attic name)`."""
        prefix = path + "/"
        for p in [p for p in self._kept if p == path or p.startswith(prefix)]:
            for index in self._kept.pop(p):
                keep(p, str(index))

    def finish(self) -> None:
        """Write the rest; call once the whole stream has been written."""
        self._advance(final=True)
        if self._regions:
            raise WorkbenchError("tar-split: a file's data region lies beyond the end of the stream")
        self._flush_raw()

    def _advance(self, *, final: bool) -> None:
        buf = self._buf
        taken = 0
        while taken < len(buf):
            if self._regions:
                start, end, path = self._regions[0]
                if self._cursor < start:  # raw bytes up to the region
                    n = min(len(buf) - taken, start - self._cursor)
                    self._raw += buf[taken:taken + n]
                else:  # inside the region: its data is in the file
                    if self._cursor == start:
                        self._flush_raw()
                        self._record(FILE, _SIZE.pack(end - start) + os.fsencode(path))
                        self._kept.setdefault(path, []).append(self._records - 1)
                    n = min(len(buf) - taken, end - self._cursor)
                    if self._cursor + n == end:
                        self._regions.popleft()
            elif final:
                n = len(buf) - taken
                self._raw += buf[taken:]
            else:
                break
            taken += n
            self._cursor += n
            if len(self._raw) >= _CHUNK:
                self._flush_raw()
        del buf[:taken]

    def _flush_raw(self) -> None:
        if self._raw:
            self._record(RAW, bytes(self._raw))
            self._raw.clear()

    def _record(self, kind: bytes, payload: bytes) -> None:
        self._out.write(_HEAD.pack(kind, len(payload)))
        self._out.write(payload)
        self._records += 1


class _Rebuilt:
    """The rebuilt tar as a read-only stream, hashed as it goes; at its end the digest must be
    the layer's diff_id (else DamagedLayer)."""

    def __init__(self, records: BinaryIO, root_fd: int, attic_fd: int | None, diff_id: str, size: int):
        self._records, self._root_fd, self._attic_fd = records, root_fd, attic_fd
        self._diff_id, self._left = diff_id, size
        self._attic = set(os.listdir(attic_fd)) if attic_fd is not None else set()
        self._index = -1  # of the record being read
        self._hash = hashlib.sha256()
        self._file: BinaryIO | None = None
        self._file_left = 0
        self._pending = b""  # the current piece, read from `_at` on
        self._at = 0
        self.size = size

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes, fewer only at the end (tarfile wants whole reads)."""
        if size is None or size < 0:
            size = _CHUNK
        parts: list[bytes] = []
        want = size
        while want > 0:
            if self._at == len(self._pending):
                if not self._next():
                    if not parts:
                        self._finish()
                    break
                self._at = 0
            piece = self._pending[self._at:self._at + want]
            self._at += len(piece)
            parts.append(piece)
            want -= len(piece)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._hash.update(data)
        self._left -= len(data)
        if self._left < 0:
            raise DamagedLayer(f"layer {self._diff_id}: rebuilt tar is longer than recorded")
        return data

    def _next(self) -> bool:
        """Load the next piece into `_pending`; False at the end of the records."""
        if self._file is not None:
            data = self._file.read(min(_CHUNK, self._file_left))
            if not data:
                raise DamagedLayer(f"layer {self._diff_id}: a file is shorter than recorded")
            self._file_left -= len(data)
            if self._file_left == 0:
                self._file.close()
                self._file = None
            self._pending = data
            return True
        head = self._records.read(_HEAD.size)
        if not head:
            return False
        if len(head) != _HEAD.size:
            raise DamagedLayer(f"layer {self._diff_id}: tar-split record truncated")
        kind, length = _HEAD.unpack(head)
        self._index += 1
        if kind == RAW:
            self._pending = self._exact(length)
        elif kind == FILE and _SIZE.size < length <= _MAX_PATH_RECORD:
            payload = self._exact(length)
            (file_size,) = _SIZE.unpack_from(payload)
            self._open(os.fsdecode(payload[_SIZE.size:]), file_size)
            self._pending = b""
        else:
            raise DamagedLayer(f"layer {self._diff_id}: unknown tar-split record {kind!r}")
        return True

    def _exact(self, length: int) -> bytes:
        data = self._records.read(length)
        if len(data) != length:
            raise DamagedLayer(f"layer {self._diff_id}: tar-split record truncated")
        return data

    def _open(self, path: str, size: int) -> None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        try:
            if str(self._index) in self._attic:
                fd = os.open(str(self._index), flags, dir_fd=self._attic_fd)
            else:
                fd = open_in_root(self._root_fd, path, flags)
        except OSError as exc:
            raise DamagedLayer(f"layer {self._diff_id}: {path}: {exc.strerror}") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            os.close(fd)
            raise DamagedLayer(f"layer {self._diff_id}: {path} is no longer the file the layer had")
        self._file, self._file_left = os.fdopen(fd, "rb", buffering=0), size

    def _finish(self) -> None:
        digest = "sha256:" + self._hash.hexdigest()
        if self._left != 0 or digest != self._diff_id:
            raise DamagedLayer(f"layer {self._diff_id}: rebuilt tar has digest {digest}: the layer's files changed")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._records.close()
        os.close(self._root_fd)
        if self._attic_fd is not None:
            os.close(self._attic_fd)

    def __enter__(self) -> _Rebuilt:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_tar(records_path: str, layer_dir: str, attic_dir: str, diff_id: str, size: int) -> _Rebuilt:
    """The layer's original tar, rebuilt from its records, files and attic (a stream of `size` bytes)."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    fds: list[int] = []
    records = open(records_path, "rb", buffering=_CHUNK)
    try:
        fds.append(os.open(layer_dir, flags))
        try:
            fds.append(os.open(attic_dir, flags | os.O_NOFOLLOW))
        except FileNotFoundError:
            fds.append(-1)
    except BaseException:
        records.close()
        for fd in fds:
            if fd >= 0:
                os.close(fd)
        raise
    return _Rebuilt(records, fds[0], fds[1] if fds[1] >= 0 else None, diff_id, size)
