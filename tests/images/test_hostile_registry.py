"""A registry that lies, loops or oversends: every pull fails with a clear error and leaves the
store as it was (no image, no layer row or dir, no blob, no temp file). The fixture server runs
on 127.0.0.1 (and 127.0.0.2 as "another host") in the test process."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from workbench.engine.errors import InvalidArgument
from workbench.engine.images import transfer
from workbench.engine.images.registry import (
    MAX_REDIRECTS,
    AuthenticationError,
    RegistryError,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REPO = "test/img"


@pytest.fixture
def small(kit):
    """A two-layer gzip image of a few bytes."""
    return kit.Built([kit.make_layer({"a.txt": b"hello"}), kit.make_layer({"b.txt": b"world"})])


def refused(kit, rt, ref: str, error: type[Exception], match: str, **options) -> Exception:
    """Pull `ref`, expect `error`, and check that the store did not change."""
    before = kit.state(rt)
    with pytest.raises(error, match=match) as info:
        transfer.pull(rt, ref, tls_verify=False, **options)
    assert kit.state(rt) == before
    return info.value


def serve_doc(server, doc: dict | bytes, content_type: str = OCI_MANIFEST) -> str:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    server.static(f"/v2/{REPO}/manifests/latest", data, content_type)
    return f"{server.host}/{REPO}:latest"


def blob_path(digest: str) -> str:
    return f"/v2/{REPO}/blobs/{digest}"


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_the_fixture_serves_a_pullable_image(kit, rt, fixture_registry, compression):
    built = kit.Built([kit.make_layer({"a.txt": b"hello"}), kit.make_layer({"b.txt": b"world"})], compression)
    image = transfer.pull(rt, fixture_registry.serve(REPO, built), tls_verify=False)
    assert image.digest == built.digest and len(image.layers) == 2
    diff_ids = json.loads(built.config)["rootfs"]["diff_ids"]
    # the config is a blob; each layer is its unpacked dir with its tar-split record, no copy of its tar
    assert kit.state(rt)["blobs"] == [kit.sha256(built.config)[7:]]
    for diff_id in diff_ids:
        assert sorted(os.listdir(os.path.join(rt.root, "layers", diff_id[7:]))) == ["diff", "tar-split"]
        stream, size = rt.image_store.open_layer_tar(diff_id)
        with stream:
            assert hashlib.sha256(stream.read(size + 1)).hexdigest() == diff_id[7:]


def test_blob_with_a_wrong_digest(kit, rt, fixture_registry, small):
    ref = fixture_registry.serve(REPO, small)
    bad = bytearray(small.blobs[1])
    bad[-1] ^= 0xFF
    fixture_registry.static(blob_path(small.layers[1]["digest"]), bytes(bad))
    refused(kit, rt, ref, RegistryError, "content has digest sha256:[0-9a-f]{64}; refusing it")


@pytest.mark.parametrize("with_length", [True, False])
def test_blob_longer_than_declared(kit, rt, fixture_registry, small, with_length):
    ref = fixture_registry.serve(REPO, small)
    blob = small.blobs[0] + b"trailing garbage" * 1000
    fixture_registry.routes[("GET", blob_path(small.layers[0]["digest"]))] = lambda h: h.reply(200, blob, length=with_length)
    refused(kit, rt, ref, RegistryError, "bytes announced" if with_length else "larger than its declared size")


def test_blob_shorter_than_declared(kit, rt, fixture_registry, small):
    ref = fixture_registry.serve(REPO, small)
    fixture_registry.routes[("GET", blob_path(small.layers[1]["digest"]))] = \
        lambda h: h.reply(200, small.blobs[1][:-3], length=False)
    refused(kit, rt, ref, RegistryError, f"got {small.layers[1]['size'] - 3} bytes, expected {small.layers[1]['size']}")


def test_missing_blob_after_one_layer_was_stored(kit, rt, fixture_registry, small):
    ref = fixture_registry.serve(REPO, small)
    del fixture_registry.routes[("GET", blob_path(small.layers[1]["digest"]))]
    refused(kit, rt, ref, RegistryError, "not found: not here")


@pytest.mark.parametrize("with_length", [True, False])
def test_manifest_too_big(kit, rt, fixture_registry, with_length):
    body = b'{"schemaVersion": 2, "layers": [' + b" " * (5 << 20) + b"]}"
    fixture_registry.routes[("GET", f"/v2/{REPO}/manifests/latest")] = lambda h: h.reply(200, body, length=with_length)
    refused(kit, rt, f"{fixture_registry.host}/{REPO}", RegistryError, "manifest latest .* is too large")


def test_config_too_big_is_not_even_fetched(kit, rt, fixture_registry, small):
    doc = json.loads(small.manifest)
    doc["config"]["size"] = 5 << 20
    refused(kit, rt, serve_doc(fixture_registry, doc), RegistryError, "image config is too large")
    assert not fixture_registry.seen("/blobs/")


def test_redirect_loop(kit, rt, fixture_registry, small):
    ref = fixture_registry.serve(REPO, small)
    path = blob_path(small.layers[0]["digest"])
    fixture_registry.routes[("GET", path)] = lambda h: h.reply(307, headers={"Location": path})
    refused(kit, rt, ref, RegistryError, f"too many redirects \\(more than {MAX_REDIRECTS}\\)")
    assert len(fixture_registry.seen(path)) == MAX_REDIRECTS + 1


def test_redirect_to_a_non_http_scheme(kit, rt, fixture_registry, small):
    ref = fixture_registry.serve(REPO, small)
    fixture_registry.routes[("GET", blob_path(small.layers[0]["digest"]))] = \
        lambda h: h.reply(302, headers={"Location": "file:///etc/passwd"})
    refused(kit, rt, ref, RegistryError, "refusing redirect to 'file:///etc/passwd'")


def _require_basic(server, user: str, password: str) -> None:
    """Every route of `server` now wants these basic credentials."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    for key, route in list(server.routes.items()):
        def guarded(h, route=route):
            if h.headers.get("Authorization") != expected:
                h.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
                        {"WWW-Authenticate": 'Basic realm="fixture"'})
            else:
                route(h)
        server.routes[key] = guarded


def test_redirect_to_another_host_carries_no_credentials(rt, fixture_registry, other_host, small):
    ref = fixture_registry.serve(REPO, small)
    digest = small.layers[1]["digest"]
    other_host.static("/storage/blob", small.blobs[1])
    fixture_registry.routes[("GET", blob_path(digest))] = \
        lambda h: h.reply(307, headers={"Location": f"{other_host.url}/storage/blob"})
    _require_basic(fixture_registry, "alice", "pw")
    image = transfer.pull(rt, ref, tls_verify=False, credentials=("alice", "pw"))
    assert image.digest == small.digest
    assert other_host.seen("/storage/blob") and all("Authorization" not in h for _, _, h in other_host.requests)
    assert all("Authorization" in h for _, path, h in fixture_registry.requests if "/blobs/" in path)


def test_another_host_asking_for_credentials_gets_none(kit, rt, fixture_registry, other_host, small):
    ref = fixture_registry.serve(REPO, small)
    challenge = f'Bearer realm="{other_host.url}/token",service="evil"'
    other_host.routes[("GET", "/storage/blob")] = lambda h: h.reply(401, b"", {"WWW-Authenticate": challenge})
    fixture_registry.routes[("GET", blob_path(small.layers[0]["digest"]))] = \
        lambda h: h.reply(307, headers={"Location": f"{other_host.url}/storage/blob"})
    _require_basic(fixture_registry, "alice", "pw")
    refused(kit, rt, ref, AuthenticationError, "wants credentials; they are only sent to", credentials=("alice", "pw"))
    assert not other_host.seen("/token")
    assert all("Authorization" not in h for _, _, h in other_host.requests)


@pytest.mark.parametrize("bad", ["sha256:../../x", "sha256:" + "A" * 64, "sha999:" + "a" * 64, "sha256:" + "a" * 63])
@pytest.mark.parametrize("where", ["layer", "config"])
def test_invalid_digests_never_become_paths(kit, rt, fixture_registry, small, bad, where):
    doc = json.loads(small.manifest)
    (doc["layers"][0] if where == "layer" else doc["config"])["digest"] = bad
    refused(kit, rt, serve_doc(fixture_registry, doc), RegistryError, "invalid digest")
    assert not fixture_registry.seen("/blobs/")
    assert not os.path.exists(os.path.join(rt.root, "x")) and not os.path.exists(os.path.join(rt.root, "blobs", "x"))


def test_layer_diff_id_mismatch_keeps_no_layer(kit, rt, fixture_registry, small):
    config = json.loads(small.config)
    config["rootfs"]["diff_ids"][1] = kit.sha256(b"something else")
    config_bytes = json.dumps(config).encode()
    doc = json.loads(small.manifest)
    doc["config"] = kit.descriptor(doc["config"]["mediaType"], config_bytes)
    fixture_registry.serve(REPO, small)
    fixture_registry.static(blob_path(kit.sha256(config_bytes)), config_bytes)
    refused(kit, rt, serve_doc(fixture_registry, doc), InvalidArgument, "layer content has digest .*, expected")


def test_config_and_manifest_disagree_on_the_layer_count(kit, rt, fixture_registry, small):
    one = kit.Built([kit.make_layer({"a.txt": b"hello"})])
    doc = json.loads(small.manifest)
    doc["config"] = json.loads(one.manifest)["config"]
    fixture_registry.serve(REPO, small)
    fixture_registry.static(blob_path(kit.sha256(one.config)), one.config)
    refused(kit, rt, serve_doc(fixture_registry, doc), RegistryError, "image config lists 1 layers, the manifest 2")


@pytest.mark.parametrize("doc, content_type, match", [
    (b"not json", OCI_MANIFEST, "not JSON"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": None}, OCI_MANIFEST, "descriptor"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "manifests": [], "layers": []}, OCI_MANIFEST,
     "both manifests and layers"),
    ({"schemaVersion": 2, "mediaType": OCI_MANIFEST}, DOCKER_MANIFEST, "does not match Content-Type"),
    ({"schemaVersion": 1, "name": "x", "fsLayers": []}, "application/vnd.docker.distribution.manifest.v1+prettyjws",
     "schema 1"),
])
def test_malformed_manifests(kit, rt, fixture_registry, doc, content_type, match):
    refused(kit, rt, serve_doc(fixture_registry, doc, content_type), RegistryError, match)


@pytest.mark.parametrize("change, match", [
    (lambda d: d["layers"][0].update(size=-1), "bad mediaType or size"),
    (lambda d: d["layers"][0].update(urls=["http://127.0.0.2/x"]), "foreign layer"),
    (lambda d: d["layers"][0].update(mediaType="application/x-evil"), "unsupported layer type"),
])
def test_bad_layer_descriptors(kit, rt, fixture_registry, small, change, match):
    doc = json.loads(small.manifest)
    change(doc)
    refused(kit, rt, serve_doc(fixture_registry, doc), RegistryError, match)


def test_pull_by_digest_refuses_other_content(kit, rt, fixture_registry, small):
    fixture_registry.serve(REPO, small)
    wanted = kit.sha256(b"another manifest")
    fixture_registry.static(f"/v2/{REPO}/manifests/{wanted}", small.manifest, OCI_MANIFEST)
    refused(kit, rt, f"{fixture_registry.host}/{REPO}@{wanted}", RegistryError, "has digest .*: refusing it")


def test_bearer_token_auth(rt, fixture_registry, small):
    ref = fixture_registry.serve(REPO, small)
    token_requests = []

    def token(h):
        token_requests.append((h.path, h.headers.get("Authorization")))
        h.reply(200, b'{"token": "tok-123"}', {"Content-Type": "application/json"})

    challenge = f'Bearer realm="{fixture_registry.url}/token",service="fixture"'
    for key, route in list(fixture_registry.routes.items()):
        def guarded(h, route=route):
            if h.headers.get("Authorization") != "Bearer tok-123":
                h.reply(401, b"", {"WWW-Authenticate": challenge})
            else:
                route(h)
        fixture_registry.routes[key] = guarded
    fixture_registry.routes[("GET", "/token")] = token
    image = transfer.pull(rt, ref, tls_verify=False, credentials=("bob", "pw"))
    assert image.digest == small.digest
    basic = "Basic " + base64.b64encode(b"bob:pw").decode()
    assert (f"/token?service=fixture&scope=repository%3A{REPO.replace('/', '%2F')}%3Apull", basic) in token_requests


@pytest.mark.parametrize("token_body, realm, match", [
    (b'{"token": "tok"}', "file:///etc/passwd", "invalid token realm 'file:///etc/passwd'"),
    (b'{"token": "' + b"x" * (2 << 20) + b'"}', None, "token response is too large"),
    (b'{"token": "bad\\r\\nX-Injected: 1"}', None, "without a usable token"),
])
def test_token_endpoint_abuse(kit, rt, fixture_registry, small, token_body, realm, match):
    ref = fixture_registry.serve(REPO, small)
    challenge = f'Bearer realm="{realm or fixture_registry.url + "/token"}",service="fixture"'
    fixture_registry.routes[("GET", "/v2/")] = lambda h: h.reply(401, b"", {"WWW-Authenticate": challenge})
    fixture_registry.routes[("GET", "/token")] = lambda h: h.reply(200, token_body)
    refused(kit, rt, ref, RegistryError, match)


def test_tls_is_required_unless_the_registry_is_insecure(kit, rt, fixture_registry, small):
    ref = fixture_registry.serve(REPO, small)
    before = kit.state(rt)
    with pytest.raises(RegistryError, match=f"pinging container registry {fixture_registry.host}: "):
        transfer.pull(rt, ref)
    assert kit.state(rt) == before and not fixture_registry.requests  # no plain-HTTP fallback


def test_push_upload_to_another_host_carries_no_credentials(rt, busybox, fixture_registry, other_host):
    fixture_registry.routes[("POST", f"/v2/{REPO}/blobs/uploads/")] = \
        lambda h: h.reply(202, headers={"Location": f"{other_host.url}/upload?session=1"})
    fixture_registry.routes[("PUT", f"/v2/{REPO}/manifests/v1")] = lambda h: h.reply(201)

    def upload(h):
        h.rfile.read(int(h.headers["Content-Length"]))
        h.reply(201)
    other_host.routes[("PUT", "/upload")] = upload
    _require_basic(fixture_registry, "alice", "pw")
    transfer.push(rt, busybox, f"{fixture_registry.host}/{REPO}:v1", tls_verify=False, credentials=("alice", "pw"))
    uploads = other_host.seen("/upload?session=1&digest=sha256%3A")
    assert len(uploads) == 2 and all("Authorization" not in h for _, _, h in uploads)  # layer and config
    assert all("Authorization" in h for _, path, h in fixture_registry.requests if path.startswith(f"/v2/{REPO}/"))
