"""OCI distribution client for one registry: TLS unless insecure, basic and bearer-token auth,
bounded redirects and sizes, blobs verified while they stream, and the manifest documents."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Callable
from typing import Any, BinaryIO
from urllib.parse import urlencode, urljoin, urlsplit

from .. import logger
from ..errors import InvalidArgument, WorkbenchError
from ..records import NamedTuple
from ..storage.content import validate_digest
from .mediatypes import INDEX_TYPES, LAYER_TYPES, MANIFEST_TYPES, OCI_INDEX, OCI_MANIFEST

log = logger.get(__name__)

MAX_REDIRECTS = 5
MAX_MANIFEST_BYTES = 4 << 20
MAX_ERROR_BYTES = 1 << 20
MAX_TOKEN_BYTES = 1 << 20
TIMEOUT = 30.0
_CHUNK = 1 << 20

_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v1+prettyjws")
_REDIRECTS = (301, 302, 303, 307, 308)


class RegistryError(WorkbenchError):
    """The registry is unreachable, answered something unexpected, or sent data that fails checks."""


class AuthenticationError(RegistryError):
    """The registry refused the credentials (or wants some and none were given)."""


class ManifestUnknown(RegistryError):
    """The registry has no image under that name, tag or digest."""


class Descriptor(NamedTuple):
    """A content descriptor from a manifest or index; `digest` and `size` are validated."""

    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None


class Manifest(NamedTuple):
    """An image manifest (config + layers) or an index (manifests), with its media type."""

    media_type: str
    config: Descriptor | None
    layers: list[Descriptor]
    manifests: list[Descriptor]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def parse_manifest(data: bytes, content_type: str = "") -> Manifest:
    """Parse and check a manifest or index. The document's mediaType must agree with the
    Content-Type, and a document with both `manifests` and `layers` is refused (CVE-2021-41190)."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise RegistryError(f"invalid manifest: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RegistryError("invalid manifest: not a JSON object")
    if "manifests" in doc and ("layers" in doc or "config" in doc):
        raise RegistryError("invalid manifest: it has both manifests and layers (ambiguous document)")
    declared = doc.get("mediaType")
    header = content_type.split(";")[0].strip()
    if declared is not None and not isinstance(declared, str):
        raise RegistryError("invalid manifest: mediaType is not a string")
    if header in _SCHEMA1 or declared in _SCHEMA1 or doc.get("schemaVersion") == 1:
        raise RegistryError("unsupported manifest schema 1 (Docker image format v1): push the image again with "
                            "a current client")
    if declared and header in MANIFEST_TYPES and header != declared:
        raise RegistryError(f"invalid manifest: mediaType {declared} does not match Content-Type {header}")
    media_type = declared or (header if header in MANIFEST_TYPES else OCI_INDEX if "manifests" in doc else OCI_MANIFEST)
    if media_type not in MANIFEST_TYPES:
        raise RegistryError(f"unsupported manifest type {media_type!r}")
    if doc.get("schemaVersion") != 2:
        raise RegistryError("invalid manifest: schemaVersion must be 2")
    if media_type in INDEX_TYPES:
        return Manifest(media_type, None, [], [_descriptor(d, "manifest") for d in _list(doc.get("manifests"), "manifests")])
    config = _descriptor(doc.get("config"), "config")
    layers = [_descriptor(d, "layer") for d in _list(doc.get("layers"), "layers")]
    if not layers:
        raise RegistryError("invalid manifest: it lists no layers")
    for layer in layers:
        if layer.media_type not in LAYER_TYPES:
            raise RegistryError(f"unsupported layer type {layer.media_type!r} for {layer.digest}")
    return Manifest(media_type, config, layers, [])


def _list(value: object, what: str) -> list:
    if not isinstance(value, list):
        raise RegistryError(f"invalid manifest: {what} must be a list")
    return value


def _descriptor(obj: object, what: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise RegistryError(f"invalid manifest: {what} descriptor is not an object")
    media_type, digest, size = obj.get("mediaType", ""), obj.get("digest"), obj.get("size")
    try:
        validate_digest(digest)  # type: ignore[arg-type]
    except InvalidArgument as exc:
        raise RegistryError(f"invalid manifest: {what} descriptor: {exc}") from None
    if not isinstance(media_type, str) or type(size) is not int or not 0 <= size < 1 << 62:
        raise RegistryError(f"invalid manifest: {what} {digest} has a bad mediaType or size")
    if obj.get("urls"):
        raise RegistryError(f"{what} {digest} is a foreign layer (urls); refusing to fetch from other hosts")
    platform = obj.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise RegistryError(f"invalid manifest: {what} {digest} has a bad platform")
    return Descriptor(media_type, digest, size, platform)


# --------------------------------------------------------------------------- HTTP


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


_contexts: dict[bool, Any] = {}


def _ssl_context(verify: bool):
    if verify not in _contexts:
        import ssl

        ctx = ssl.create_default_context()
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        _contexts[verify] = ctx
    return _contexts[verify]


def _http(method: str, url: str, headers: dict[str, str], body: Any, verify: bool, timeout: float):
    """One HTTP exchange on its own connection (the response owns it: Connection: close)."""
    import http.client

    parts = urlsplit(url)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    conn: http.client.HTTPConnection | None = None
    try:
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=_ssl_context(verify))
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        conn.request(method, target, body=body, headers={"User-Agent": "workbench", **headers, "Connection": "close"})
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if conn is not None:
            conn.close()
        raise RegistryError(f'{method} "{url}": {_describe(exc)}') from None
    log.debug("%s %s -> %s", method, url, resp.status)
    resp.final_url = url  # type: ignore[attr-defined]
    return resp


def _describe(exc: BaseException) -> str:
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: {exc.verify_message}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _read_capped(resp, cap: int, what: str) -> bytes:
    """The whole body, refusing more than `cap` bytes (whatever Content-Length claims)."""
    length = resp.getheader("Content-Length")
    if length and length.isdigit() and int(length) > cap:
        raise RegistryError(f"{what} is too large ({length} bytes, the limit is {cap})")
    try:
        data = resp.read(cap + 1)
    except OSError as exc:
        raise RegistryError(f"reading {what}: {_describe(exc)}") from None
    if len(data) > cap:
        raise RegistryError(f"{what} is too large (more than {cap} bytes)")
    return data


def _error_text(resp) -> str:
    """`code: message` from a registry error body, else the HTTP status."""
    try:
        errors = json.loads(resp.read(MAX_ERROR_BYTES)).get("errors") or []
        first = errors[0]
        return f"{str(first['code']).lower().replace('_', ' ')}: {first.get('message', '')}"
    except (OSError, ValueError, AttributeError, LookupError, TypeError):
        return f"HTTP {resp.status} {resp.reason}".strip()


def _parse_challenge(header: str) -> tuple[str, dict[str, str]] | None:
    """`Bearer realm="...",service="..."` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {k.lower(): v1 if v1 or q else v2
              for k, q, v1, v2 in re.findall(r'(\w+)\s*=\s*(?:(")((?:[^"\\]|\\.)*)"|([^,\s]*))', rest)}
    return scheme.lower(), params


def _basic(credentials: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()


def pull_scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def push_scope(repo: str) -> str:
    return f"repository:{repo}:pull,push"


class BlobReader:
    """A blob as a stream that is checked as it is read: never more than the declared size, and
    at the end exactly that size with the expected digest (RegistryError otherwise)."""

    def __init__(self, resp, digest: str, size: int, progress: Callable[[int], None] | None = None,
                 cancel: threading.Event | None = None):
        self._resp, self.digest, self.size = resp, digest, size
        self._progress, self._cancel = progress, cancel
        self._hash = hashlib.sha256()
        self.done = 0

    def read(self, n: int = -1) -> bytes:
        if self._cancel is not None and self._cancel.is_set():
            raise RegistryError(f"download of {self.digest} cancelled")
        try:
            data = self._resp.read(min(n if n and n > 0 else _CHUNK, self.size - self.done + 1))
        except OSError as exc:
            raise RegistryError(f"reading blob {self.digest}: {_describe(exc)}") from None
        if not data:
            if self.done != self.size:
                raise RegistryError(f"blob {self.digest}: got {self.done} bytes, expected {self.size}")
            if "sha256:" + self._hash.hexdigest() != self.digest:
                raise RegistryError(f"blob {self.digest}: content has digest sha256:{self._hash.hexdigest()}; refusing it")
            return b""
        self.done += len(data)
        if self.done > self.size:
            raise RegistryError(f"blob {self.digest} is larger than its declared size of {self.size} bytes")
        self._hash.update(data)
        if self._progress is not None:
            self._progress(self.done)
        return data

    def close(self) -> None:
        self._resp.close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Counting:
    """A request body that reports how much of it was sent."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], None] | None):
        self._stream, self._progress, self.done = stream, progress, 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n if n and n > 0 else _CHUNK)
        self.done += len(data)
        if self._progress is not None and data:
            self._progress(self.done)
        return data

    def seek(self, pos: int) -> None:
        self._stream.seek(pos)
        self.done = pos


class Registry:
    """A client for one registry host (`docker.io`, `127.0.0.1:5000`). Credentials go only to that
    host (or to the token realm it names); redirects elsewhere are followed without them."""

    def __init__(self, host: str, *, insecure: bool = False, credentials: tuple[str, str] | None = None,
                 timeout: float = TIMEOUT):
        self.host = host
        self.insecure = insecure
        self.credentials = credentials
        self.timeout = timeout
        self._endpoint = "registry-1.docker.io" if host == "docker.io" else host
        try:
            _origin(f"https://{self._endpoint}/")
        except ValueError:
            raise InvalidArgument(f"invalid registry host {host!r}") from None
        self._base: str | None = None
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- the protocol ----------------------------------------------------------------------
    def ping(self) -> None:
        """GET /v2/ once: choose https (or http for an insecure registry) and learn the auth scheme."""
        if self._base is not None:
            return
        errors = []
        for scheme in ("https", "http") if self.insecure else ("https",):
            base = f"{scheme}://{self._endpoint}"
            try:
                resp = self._send("GET", base + "/v2/", {}, None, None)
            except RegistryError as exc:
                errors.append(str(exc))
                continue
            with resp:
                resp.read(MAX_ERROR_BYTES)
            if resp.status == 401:
                self._challenge = _parse_challenge(resp.getheader("WWW-Authenticate", ""))
            elif resp.status != 200:
                errors.append(f"GET {base}/v2/: not a registry (HTTP {resp.status})")
                continue
            self._base = base
            return
        raise RegistryError(f"pinging container registry {self.host}: {'; '.join(errors)}")

    def login(self) -> None:
        """Check the credentials against /v2/ (AuthenticationError when refused)."""
        try:
            with self.request("GET", "/v2/", scope="") as resp:
                if resp.status != 200:
                    raise RegistryError(f'logging into "{self.host}": {_error_text(resp)}')
        except AuthenticationError:
            raise AuthenticationError(f'logging into "{self.host}": invalid username/password') from None

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str]:
        """(bytes, Content-Type) of a manifest or index by tag or digest, at most 4 MiB."""
        what = f"manifest {reference} in {self.host}/{repo}"
        with self.request("GET", f"/v2/{repo}/manifests/{reference}", scope=pull_scope(repo),
                          headers={"Accept": ", ".join(MANIFEST_TYPES)}, context=f"reading {what}") as resp:
            if resp.status == 404:
                raise ManifestUnknown(f"reading {what}: {_error_text(resp)}")
            if resp.status != 200:
                raise RegistryError(f"reading {what}: {_error_text(resp)}")
            return _read_capped(resp, MAX_MANIFEST_BYTES, what), resp.getheader("Content-Type", "")

    def open_blob(self, repo: str, digest: str, size: int, *, progress: Callable[[int], None] | None = None,
                  cancel: threading.Event | None = None) -> BlobReader:
        """A checked stream of a blob's bytes (see BlobReader)."""
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=pull_scope(repo),
                            context=f"reading blob {digest}")
        length = resp.getheader("Content-Length")
        if resp.status != 200 or (length and length.isdigit() and int(length) != size):
            try:
                problem = _error_text(resp) if resp.status != 200 else f"{length} bytes announced, {size} expected"
            finally:
                resp.close()
            raise RegistryError(f"reading blob {digest} from {self.host}/{repo}: {problem}")
        return BlobReader(resp, digest, size, progress, cancel)

    def has_blob(self, repo: str, digest: str) -> bool:
        with self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=push_scope(repo)) as resp:
            if resp.status in (200, 404):
                return resp.status == 200
            raise RegistryError(f"checking blob {digest} in {self.host}/{repo}: HTTP {resp.status}")

    def mount_blob(self, repo: str, digest: str, source: str) -> str | None:
        """Link a blob the registry has in repository `source` into `repo`: None when done, else
        the upload URL the registry opened instead."""
        query = urlencode({"mount": digest, "from": source})
        with self.request("POST", f"/v2/{repo}/blobs/uploads/?{query}", scope=f"{push_scope(repo)} {pull_scope(source)}",
                          headers={"Content-Length": "0"}) as resp:
            if resp.status == 201:
                return None
            return self._upload_location(resp, repo)

    def upload_blob(self, repo: str, digest: str, size: int, stream: BinaryIO, *,
                    progress: Callable[[int], None] | None = None, location: str | None = None) -> None:
        """Monolithic upload: POST to open a session (unless `location` is one), PUT the bytes."""
        if location is None:
            with self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=push_scope(repo),
                              headers={"Content-Length": "0"}) as resp:
                location = self._upload_location(resp, repo)
        url = location + ("&" if "?" in location else "?") + urlencode({"digest": digest})
        body = _Counting(stream, progress)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        with self.request("PUT", url, scope=push_scope(repo), headers=headers, body=body) as resp:
            if resp.status not in (201, 204):
                raise RegistryError(f"uploading blob {digest} to {self.host}/{repo}: {_error_text(resp)}")

    def put_manifest(self, repo: str, tag: str, data: bytes, media_type: str) -> str:
        """Upload a manifest under `tag`; returns its digest (checked against the registry's)."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self.request("PUT", f"/v2/{repo}/manifests/{tag}", scope=push_scope(repo),
                          headers={"Content-Type": media_type}, body=data) as resp:
            if resp.status not in (200, 201):
                raise RegistryError(f"writing manifest to {self.host}/{repo}:{tag}: {_error_text(resp)}")
            answered = resp.getheader("Docker-Content-Digest")
        if answered and answered != digest:
            raise RegistryError(f"registry stored manifest {answered}, expected {digest}")
        return digest

    def _upload_location(self, resp, repo: str) -> str:
        location = resp.getheader("Location")
        if resp.status != 202 or not location:
            raise RegistryError(f"starting a blob upload to {self.host}/{repo}: {_error_text(resp)}")
        return urljoin(resp.final_url, location)

    # -- requests with authentication ----------------------------------------------------------
    def request(self, method: str, path: str, *, scope: str, headers: dict[str, str] | None = None,
                body: Any = None, context: str = ""):
        """Send to `path` under the registry (or to an absolute URL it gave us) with the auth
        `scope` needs; on 401 authenticate once and retry. Refusals raise AuthenticationError."""
        self.ping()
        assert self._base is not None
        url = path if "://" in path else self._base + path
        own = _origin(url) == _origin(self._base)
        for attempt in (0, 1):
            resp = self._send(method, url, headers or {}, body, self._authorization(scope) if own else None)
            if resp.status != 401 or attempt or _origin(resp.final_url) != _origin(self._base):
                break
            self._challenge = _parse_challenge(resp.getheader("WWW-Authenticate", "")) or self._challenge
            resp.close()
            with self._lock:
                self._tokens.pop(scope, None)
            if hasattr(body, "seek"):
                body.seek(0)
        if resp.status in (401, 403):
            try:
                problem = _error_text(resp)
            finally:
                resp.close()
            if _origin(resp.final_url) != _origin(self._base):
                problem = f"{urlsplit(resp.final_url).netloc} wants credentials; they are only sent to {self.host}"
            raise AuthenticationError(f"{context or method + ' ' + url}: {problem}")
        return resp

    def _send(self, method: str, url: str, headers: dict[str, str], body: Any, authorization: str | None):
        """One request, following at most MAX_REDIRECTS redirects (http(s) only, never https ->
        http); `authorization` goes only to the origin of `url` and is dropped once we leave it."""
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers)
            if authorization:
                sent["Authorization"] = authorization
            resp = _http(method, url, sent, body, not self.insecure, self.timeout)
            if resp.status not in _REDIRECTS:
                return resp
            location = resp.getheader("Location", "")
            resp.close()
            target = urljoin(url, location)
            scheme = urlsplit(target).scheme
            if not location or scheme not in ("http", "https") or (scheme == "http" and url.startswith("https:")):
                raise RegistryError(f'{method} "{url}": refusing redirect to {location!r}')
            if _origin(target) != origin:
                authorization = None
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "content-type")}
            elif hasattr(body, "seek"):
                body.seek(0)
            url = target
        raise RegistryError(f'{method} "{url}": too many redirects (more than {MAX_REDIRECTS})')

    def _authorization(self, scope: str) -> str | None:
        if self._challenge is None:
            return None
        kind, params = self._challenge
        if kind == "basic":
            return _basic(self.credentials) if self.credentials else None
        if kind != "bearer":
            return None
        with self._lock:
            if scope not in self._tokens:
                self._tokens[scope] = self._fetch_token(params, scope)
            return "Bearer " + self._tokens[scope]

    def _fetch_token(self, params: dict[str, str], scope: str) -> str:
        """A bearer token from the realm the registry named (with our credentials, if any)."""
        assert self._base is not None
        realm = params.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AuthenticationError(f"{self.host}: invalid token realm {realm!r}")
        if parts.scheme == "http" and self._base.startswith("https:"):
            raise AuthenticationError(f"{self.host}: refusing plain-HTTP token realm {realm!r} for a TLS registry")
        query = [("service", params["service"])] if params.get("service") else []
        query += [("scope", s) for s in dict.fromkeys(scope.split() + params.get("scope", "").split())]
        url = realm + ("&" if parts.query else "?") + urlencode(query) if query else realm
        with self._send("GET", url, {}, None, _basic(self.credentials) if self.credentials else None) as resp:
            if resp.status in (401, 403):
                raise AuthenticationError(f"{self.host}: token request refused: {_error_text(resp)}")
            if resp.status != 200:
                raise RegistryError(f"{self.host}: token request failed: {_error_text(resp)}")
            body = _read_capped(resp, MAX_TOKEN_BYTES, "token response")
        try:
            answer = json.loads(body)
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token or not all(33 <= ord(c) < 127 for c in token):
            raise RegistryError(f"{self.host}: the token endpoint answered without a usable token")
        return token
