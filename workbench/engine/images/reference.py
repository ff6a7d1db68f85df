"""Docker/OCI image references: parsing and normalisation (`busybox` -> `docker.io/library/busybox:latest`)."""

from __future__ import annotations

import re

from ..errors import InvalidArgument
from ..records import NamedTuple

DEFAULT_DOMAIN = "docker.io"
LOCAL_DOMAIN = "localhost"
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class Reference(NamedTuple):
    """A parsed reference; `domain` is empty for a short name."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def repository(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text


def parse(text: str) -> Reference:
    """Parse without adding defaults; raises InvalidArgument on a malformed reference."""
    if not text or len(text) > 255 + 128 + 72:
        raise InvalidArgument(f"invalid reference format: {text!r}")
    rest, digest = text, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidArgument(f"invalid reference format: bad digest in {text!r}")
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidArgument(f"invalid reference format: bad tag in {text!r}")
    parts = rest.split("/")
    domain = ""
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        domain, parts = parts[0], parts[1:]
    if not parts or not all(_COMPONENT.match(p) for p in parts):
        raise InvalidArgument(f"invalid reference format: repository name must be lowercase in {text!r}"
                              if rest.lower() != rest else f"invalid reference format: {text!r}")
    return Reference(domain, "/".join(parts), tag, digest)


def normalize(text: str, default_domain: str = DEFAULT_DOMAIN) -> Reference:
    """Fully qualify: add the default domain (and `library/` on docker.io) and the `latest` tag."""
    ref = parse(text)
    domain, path = ref.domain, ref.path
    if not domain:
        domain = default_domain
        if domain == DEFAULT_DOMAIN and "/" not in path:
            path = "library/" + path
    tag = ref.tag or ("" if ref.digest else "latest")
    return Reference(domain, path, tag, ref.digest)


def normalize_local(text: str) -> str:
    """Name for an image made here (import, commit, tag): short names go under `localhost/`."""
    return str(normalize(text, LOCAL_DOMAIN))
