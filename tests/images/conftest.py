"""Registry fixtures: Debian's docker-registry on 127.0.0.1 (open, and with htpasswd auth), skopeo
as an independent client, OCI layouts made here, and a tiny scriptable registry for hostile cases."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
               "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
               "none": "application/vnd.oci.image.layer.v1.tar"}
USER, PASSWORD = "alice", "s3cret-pw"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def unique(name: str) -> str:
    """A repository name no other test uses (the registries are shared by a worker's tests)."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------- image bytes


def make_layer(files: dict[str, bytes]) -> bytes:
    """An uncompressed layer tar with these regular files (written with tarfile; never extracted)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compress(tar: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(tar, mtime=0)
    if compression == "zstd":
        return subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True, check=True).stdout
    return tar


def image_config(diff_ids: list[str], arch: str = "amd64", labels: dict[str, str] | None = None) -> bytes:
    return json.dumps({"architecture": arch, "os": "linux",
                       "config": {"Cmd": ["sh"], "Labels": labels or {}},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


class Built:
    """An image as blobs: `manifest` bytes, `config` bytes, `layers` (descriptor, blob bytes)."""

    def __init__(self, tars: list[bytes], compression: str = "gzip", arch: str = "amd64",
                 labels: dict[str, str] | None = None):
        self.blobs = [compress(t, compression) for t in tars]
        self.layers = [descriptor(LAYER_MEDIA[compression], b) for b in self.blobs]
        self.config = image_config([sha256(t) for t in tars], arch, labels)
        self.manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                    "config": descriptor(OCI_CONFIG, self.config),
                                    "layers": self.layers}).encode()
        self.digest = sha256(self.manifest)


def write_oci_layout(path: str, images: list[Built], tag: str = "latest", index: bool = False) -> str:
    """An OCI image layout holding one image, or (index=True) an index of several under `tag`."""
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data: bytes) -> None:
        with open(os.path.join(blobs, sha256(data)[7:]), "wb") as f:
            f.write(data)

    entries = []
    for image in images:
        for blob in [*image.blobs, image.config, image.manifest]:
            put(blob)
        arch = json.loads(image.config)["architecture"]
        entries.append(descriptor(OCI_MANIFEST, image.manifest, platform={"os": "linux", "architecture": arch}))
    top = entries[0]
    if index:
        doc = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        put(doc)
        top = descriptor(OCI_INDEX, doc)
    top = {**top, "annotations": {"org.opencontainers.image.ref.name": tag}}
    top.pop("platform", None)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [top]}, f)
    return f"oci:{path}:{tag}"


@pytest.fixture
def other_rt(tmp_path):
    """A second isolated Runtime (another machine, as far as an archive or registry is concerned)."""
    from workbench import Runtime

    runtime = Runtime(str(tmp_path / "root2"), str(tmp_path / "run2"))
    yield runtime
    for c in runtime.containers():
        c.remove(force=True, timeout=0)
    runtime.close()


@pytest.fixture(scope="session")
def busybox_layer(busybox_tar) -> bytes:
    with open(busybox_tar, "rb") as f:
        return f.read()


def skopeo(*args: str) -> subprocess.CompletedProcess:
    """Run skopeo; fail the test with its stderr when it fails."""
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.fail(f"skopeo {' '.join(args)}: {proc.stderr.strip()}")
    return proc


# --------------------------------------------------------------------------- docker-registry


@pytest.fixture(scope="session")
def auth_registry(start_registry, tmp_path_factory):
    """A registry that wants basic auth for USER/PASSWORD (bcrypt htpasswd)."""
    import bcrypt

    workdir = str(tmp_path_factory.mktemp("auth-registry"))
    htpasswd = os.path.join(workdir, "htpasswd")
    with open(htpasswd, "w") as f:
        f.write(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    return start_registry(workdir, htpasswd)


@pytest.fixture(autouse=True)
def registries_conf(tmp_path, monkeypatch) -> Callable[[str], str]:
    """CONTAINERS_REGISTRIES_CONF points at a file of this test's, empty until written (so the
    machine's own registries.conf and its short-name aliases play no part)."""
    path = tmp_path / "registries.conf"
    path.write_text("")
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(path))

    def write(text: str) -> str:
        path.write_text(text)
        return str(path)
    return write


@pytest.fixture(autouse=True)
def auth_file(tmp_path, monkeypatch) -> str:
    """An auth file path of this test's; $REGISTRY_AUTH_FILE points at it, so no test reads or
    writes the machine's own."""
    path = str(tmp_path / "auth" / "auth.json")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", path)
    return path


@pytest.fixture
def pushed_busybox(registry, busybox_layer, tmp_path) -> tuple[str, Built]:
    """busybox pushed by skopeo as an OCI image; (reference, the image as built)."""
    built = Built([busybox_layer])
    ref = f"{registry.host}/{unique('test/busybox')}:latest"
    skopeo("copy", "-q", "--dest-tls-verify=false", write_oci_layout(str(tmp_path / "oci"), [built]), f"docker://{ref}")
    return ref, built


# --------------------------------------------------------------------------- store checks


def store_state(rt) -> dict[str, Any]:
    """What a failed pull must not change: images, layer rows and dirs, blobs (and no temp files)."""
    blobs = sorted(os.listdir(rt.image_store.content.root))
    return {"images": sorted(i.id for i in rt.images()),
            "layers": sorted(r[0] for r in rt.db.query("SELECT id FROM layers")),
            "layer_dirs": sorted(os.listdir(os.path.join(rt.root, "layers"))),
            "blobs": blobs}


# --------------------------------------------------------------------------- fixture registry


Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    server: _Server

    def _dispatch(self) -> None:
        fixture = self.server.fixture
        fixture.requests.append((self.command, self.path, dict(self.headers)))
        route = fixture.routes.get((self.command, self.path.split("?")[0])) or \
            fixture.routes.get(("GET", self.path.split("?")[0]) if self.command == "HEAD" else None)
        if route is None:
            self.reply(404, b'{"errors":[{"code":"NOT_FOUND","message":"not here"}]}')
        else:
            route(self)

    do_GET = do_HEAD = do_PUT = do_POST = _dispatch

    def reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, *,
              length: bool = True) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except OSError:
                pass
        self.close_connection = True

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fixture: FixtureRegistry


class FixtureRegistry:
    """A scriptable registry on 127.0.0.x: `routes[(method, path)] = fn(handler)`; records requests."""

    def __init__(self, address: str = "127.0.0.1"):
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._server = _Server((address, 0), Handler)
        self._server.fixture = self
        self.host = f"{address}:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"
        self.routes[("GET", "/v2/")] = lambda h: h.reply(200, b"{}")
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def static(self, path: str, body: bytes, content_type: str = "application/octet-stream", status: int = 200) -> None:
        self.routes[("GET", path)] = lambda h: h.reply(status, body, {"Content-Type": content_type})

    def serve(self, repo: str, built: Built, tag: str = "latest") -> str:
        """Serve an image's manifest (by tag and digest), config and blobs; returns the reference."""
        for ref in (tag, built.digest):
            self.static(f"/v2/{repo}/manifests/{ref}", built.manifest, OCI_MANIFEST)
        self.static(f"/v2/{repo}/blobs/{sha256(built.config)}", built.config)
        for blob in built.blobs:
            self.static(f"/v2/{repo}/blobs/{sha256(blob)}", blob)
        return f"{self.host}/{repo}:{tag}"

    def seen(self, path_part: str) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.requests if path_part in r[1]]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fixture_registry():
    server = FixtureRegistry()
    yield server
    server.close()


@pytest.fixture
def other_host():
    """A second fixture server on another loopback address (another host, as far as origins go)."""
    server = FixtureRegistry("127.0.0.2")
    yield server
    server.close()


class Kit:
    """The helpers above for test modules, as a fixture (a conftest cannot be imported reliably)."""

    sha256 = staticmethod(sha256)
    unique = staticmethod(unique)
    make_layer = staticmethod(make_layer)
    compress = staticmethod(compress)
    image_config = staticmethod(image_config)
    descriptor = staticmethod(descriptor)
    layout = staticmethod(write_oci_layout)
    skopeo = staticmethod(skopeo)
    state = staticmethod(store_state)
    Built = Built
    FixtureRegistry = FixtureRegistry
    USER, PASSWORD = USER, PASSWORD


@pytest.fixture(scope="session")
def kit() -> type[Kit]:
    return Kit
