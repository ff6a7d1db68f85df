"""Content store: immutable blobs addressed by sha256 under `<graph root>/blobs/sha256/`."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20


def validate_digest(digest: str) -> str:
    """Return the hex part of a `sha256:<64 hex>` digest, refusing anything else (it becomes a path)."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    return digest[7:]


class HashingReader:
    """A reader that hashes and counts what passes through; `digest()` reads the rest first."""

    def __init__(self, raw: BinaryIO):
        import hashlib

        self._raw, self._hash, self.size = raw, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    def digest(self) -> str:
        while self.read(_CHUNK):
            pass
        return "sha256:" + self._hash.hexdigest()


class Incoming:
    """A blob being written into the content store (see `ContentStore.incoming`)."""

    def __init__(self, file: BinaryIO, path: str, store: ContentStore):
        self.file, self._path, self._store, self.committed = file, path, store, False

    def commit(self, digest: str) -> None:
        """Flush and move the blob in under `digest`."""
        self.file.close()
        os.rename(self._path, self._store.path(digest))
        self.committed = True


SCRATCH = ".tmp-"  # blobs being written: .tmp-<pid>-<random>


class ContentStore:
    """Blobs by digest; writes go to a temp file, are hashed while streaming, then renamed in."""

    def __init__(self, root: str):
        self.root = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self._swept = False

    def path(self, digest: str) -> str:
        return os.path.join(self.root, validate_digest(digest))

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]:
        """Copy a stream into the store; returns (digest, size)."""
        import hashlib

        hasher = hashlib.sha256()
        size = 0
        with self.incoming() as blob:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise InvalidArgument(f"blob exceeds the size limit of {max_bytes} bytes")
                hasher.update(chunk)
                blob.file.write(chunk)
            digest = "sha256:" + hasher.hexdigest()
            blob.commit(digest)
        return digest, size

    def put_bytes(self, data: bytes) -> str:
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            with self.incoming() as blob:
                blob.file.write(data)
                blob.commit(digest)
        return digest

    @contextmanager
    def incoming(self) -> Iterator[Incoming]:
        """A new blob being written: write to `.file`, then `.commit(digest)` (the caller checked
        the digest); left without a commit, or on an error, it is removed."""
        from ..files import scratch_name, sweep_scratch

        if not self._swept:  # once per process: blobs a killed pull left half-written
            sweep_scratch(self.root, SCRATCH)
            self._swept = True
        path = os.path.join(self.root, scratch_name(SCRATCH))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        blob = Incoming(os.fdopen(fd, "wb", buffering=_CHUNK), path, self)
        try:
            yield blob
        finally:
            blob.file.close()
            if not blob.committed:
                _unlink(path)

    def read(self, digest: str) -> bytes:
        with open(self.path(digest), "rb") as f:
            return f.read()

    def delete(self, digest: str) -> None:
        _unlink(self.path(digest))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
