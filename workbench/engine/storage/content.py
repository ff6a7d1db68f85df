"""Content store: immutable blobs addressed by sha256 under `<graph root>/blobs/sha256/`."""

from __future__ import annotations

import os
import re
from typing import BinaryIO

from ..errors import InvalidArgument

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20


def validate_digest(digest: str) -> str:
    """Return the hex part of a `sha256:<64 hex>` digest, refusing anything else (it becomes a path)."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    return digest[7:]


class ContentStore:
    """Blobs by digest; writes go to a temp file, are hashed while streaming, then renamed in."""

    def __init__(self, root: str):
        self.root = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.root, mode=0o700, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.root, validate_digest(digest))

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def put_bytes(self, data: bytes) -> str:
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._commit(lambda f: f.write(data), digest)
        return digest

    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]:
        """Copy a stream into the store; returns (digest, size)."""
        import hashlib

        hasher = hashlib.sha256()
        size = 0
        fd, tmp = self._temp()
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise InvalidArgument(f"blob exceeds the size limit of {max_bytes} bytes")
                    hasher.update(chunk)
                    out.write(chunk)
            digest = "sha256:" + hasher.hexdigest()
            os.rename(tmp, self.path(digest))
        except BaseException:
            _unlink(tmp)
            raise
        return digest, size

    def _temp(self) -> tuple[int, str]:
        path = os.path.join(self.root, f".tmp-{os.getpid()}-{os.urandom(8).hex()}")
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path

    def _commit(self, write, digest: str) -> None:
        fd, tmp = self._temp()
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
            os.rename(tmp, self.path(digest))
        except BaseException:
            _unlink(tmp)
            raise

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
