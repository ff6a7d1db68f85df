"""Archives written here are read by skopeo and Podman 4.3 and valid per the OCI image-spec JSON
schemas; archives written by skopeo and Podman load here and run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from workbench import RunResult
from workbench.engine.images.formats import load, save

PODMAN_CONF = Path(__file__).resolve().parents[2] / "bench" / "podman-containers.conf"
SCHEMAS = Path("/usr/share/gocode/src/github.com/opencontainers/image-spec/schema")


def tool(*argv: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120, env=env)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


@pytest.fixture
def podman():
    """Podman 4.3 on a private store of this test's (under a short path: Podman wants a runroot
    of at most 50 characters)."""
    top = tempfile.mkdtemp(prefix="wb-pm-")
    base = ["podman", "--root", f"{top}/root", "--runroot", f"{top}/run", "--tmpdir", f"{top}/tmp",
            "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    env = {k: v for k, v in os.environ.items() if k != "REGISTRY_AUTH_FILE"}  # a test's may not exist
    env["CONTAINERS_CONF"] = str(PODMAN_CONF)
    yield lambda *args: tool(*base, *args, env=env)
    subprocess.run([*base, "system", "reset", "--force"], check=False, capture_output=True, env=env, timeout=60)
    shutil.rmtree(top, ignore_errors=True)


def oci_documents(layout: Path) -> dict[str, bytes]:
    """index.json, oci-layout, and the manifest and config the index points at, of an OCI layout dir."""
    index = (layout / "index.json").read_bytes()
    blobs = layout / "blobs" / "sha256"
    manifest = (blobs / json.loads(index)["manifests"][0]["digest"][7:]).read_bytes()
    config = (blobs / json.loads(manifest)["config"]["digest"][7:]).read_bytes()
    return {"index": index, "layout": (layout / "oci-layout").read_bytes(), "manifest": manifest, "config": config}


def validator(schema: str):
    """A Draft 4 validator for one of the image-spec schemas (Debian's golang-github-opencontainers-image-spec-dev)."""
    assert SCHEMAS.is_dir(), f"{SCHEMAS} missing: scripts/setup.sh installs golang-github-opencontainers-image-spec-dev"
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    def retrieve(uri: str) -> Resource:
        return Resource.from_contents(json.loads((SCHEMAS / uri.rsplit("/", 1)[-1]).read_text()), DRAFT4)

    return jsonschema.Draft4Validator(json.loads((SCHEMAS / schema).read_text()), registry=Registry(retrieve=retrieve))


@pytest.mark.parametrize("compress", [False, True])
def test_oci_documents_are_valid_per_the_image_spec_schemas(rt, busybox, tmp_path, compress):
    save(rt, [busybox], str(tmp_path / "layout"), format="oci-dir", compress=compress)
    docs = oci_documents(tmp_path / "layout")
    for name, schema in (("index", "image-index-schema.json"), ("layout", "image-layout-schema.json"),
                         ("manifest", "image-manifest-schema.json"), ("config", "config-schema.json")):
        errors = [e.message for e in validator(schema).iter_errors(json.loads(docs[name]))]
        assert errors == [], f"{name}: {errors}"
    broken = json.loads(docs["manifest"]) | {"layers": []}
    assert list(validator("image-manifest-schema.json").iter_errors(broken))  # the validator does check


def test_skopeo_reads_our_docker_archive_with_the_same_digests(rt, busybox, tmp_path):
    save(rt, [busybox], str(tmp_path / "a.tar"))
    image = rt.image(busybox)
    diff_ids = image.config["rootfs"]["diff_ids"]
    assert json.loads(tool("skopeo", "inspect", f"docker-archive:{tmp_path}/a.tar"))["Layers"] == diff_ids
    tool("skopeo", "copy", "-q", "--dest-oci-accept-uncompressed-layers", f"docker-archive:{tmp_path}/a.tar",
         f"oci:{tmp_path}/copy:x")
    manifest = json.loads(oci_documents(tmp_path / "copy")["manifest"])
    assert manifest["config"]["digest"] == "sha256:" + image.id
    assert [layer["digest"] for layer in manifest["layers"]] == diff_ids


@pytest.mark.parametrize("fmt,compress", [("oci-archive", False), ("oci-archive", True), ("oci-dir", False)])
def test_skopeo_reads_our_oci_layouts_as_written(rt, busybox, tmp_path, fmt, compress):
    out = tmp_path / "out"
    save(rt, [busybox], str(out), format=fmt, compress=compress)
    transport = f"{fmt.replace('-dir', '')}:{out}"
    if fmt == "oci-dir":
        ours = oci_documents(out)["manifest"]
    else:
        with tarfile.open(out) as tar:
            index = json.loads(tar.extractfile("index.json").read())
            ours = tar.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]).read()
    assert tool("skopeo", "inspect", "--raw", transport).encode() == ours
    tool("skopeo", "copy", "-q", transport, f"oci:{tmp_path}/copy:x")
    assert json.loads(oci_documents(tmp_path / "copy")["config"]) == rt.image(busybox).config


@pytest.mark.parametrize("fmt,compress", [("docker-archive", False), ("oci-archive", False), ("oci-archive", True)])
def test_podman_loads_and_runs_what_we_save(rt, busybox, podman, tmp_path, fmt, compress):
    save(rt, [busybox], str(tmp_path / "a.tar"), format=fmt, compress=compress)
    assert podman("load", "-i", str(tmp_path / "a.tar")).strip().endswith(f"Loaded image: {busybox}")
    assert podman("image", "inspect", "--format", "{{.Id}}", busybox).strip() == rt.image(busybox).id
    assert podman("run", "--rm", "--network", "none", busybox, "echo", "hi") == "hi\n"


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_what_podman_saves_loads_and_runs_here(busybox_tar, podman, other_rt, tmp_path, fmt):
    podman("import", busybox_tar, "pm-busybox")
    podman("save", "--format", fmt, "-o", str(tmp_path / "p.tar"), "pm-busybox")
    (image,) = load(other_rt, str(tmp_path / "p.tar"))
    assert image.names == ["localhost/pm-busybox:latest"]
    assert image.id == podman("image", "inspect", "--format", "{{.Id}}", "pm-busybox").strip()
    assert other_rt.run(image.names[0], ["echo", "hi"], remove=True) == RunResult(0, b"hi\n", b"")


@pytest.mark.parametrize("dest,names", [("docker-archive:{}:example.com/team/app:v2", ["example.com/team/app:v2"]),
                                        ("oci-archive:{}:latest", ["localhost/latest:latest"]),
                                        ("oci-archive:{}", [])])
def test_what_skopeo_writes_loads_and_runs_here(rt, busybox, other_rt, tmp_path, dest, names):
    save(rt, [busybox], str(tmp_path / "src"), format="oci-dir")
    tool("skopeo", "copy", "-q", f"oci:{tmp_path}/src", dest.format(tmp_path / "s.tar"))
    (image,) = load(other_rt, str(tmp_path / "s.tar"))
    assert (image.id, image.names) == (rt.image(busybox).id, names)
    assert other_rt.run(image.id, ["echo", "hi"], remove=True) == RunResult(0, b"hi\n", b"")


@pytest.mark.parametrize("when", [1_700_000_000.0, 1_700_000_000.5, 1_700_000_000.123456])
def test_configs_keep_their_digest_through_skopeo_whatever_the_time(rt, busybox_tar, tmp_path, when, monkeypatch):
    """Go re-encodes a config when it converts docker-archive to OCI: our times must print as Go's do."""
    import time

    monkeypatch.setattr(time, "time", lambda: when)
    image = rt.import_image(busybox_tar, f"localhost/at:{int(when * 1e6)}")
    save(rt, [image.id], str(tmp_path / "a.tar"))
    tool("skopeo", "copy", "-q", "--dest-oci-accept-uncompressed-layers", f"docker-archive:{tmp_path}/a.tar",
         f"oci:{tmp_path}/copy:x")
    assert json.loads(oci_documents(tmp_path / "copy")["manifest"])["config"]["digest"] == "sha256:" + image.id
