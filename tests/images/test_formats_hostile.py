"""Hostile and broken archives: every one is refused with a clear error, and after each refusal
the store is as it was (no image, no layer row or dir, no blob, no temp file) and nothing was
written outside it. Archives are generated here with tarfile (written, never extracted)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time

import pytest

from workbench.engine.images.formats import ArchiveFormatError, LoadLimits, load

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
MiB = 1 << 20


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(*entries: tuple[str, str, bytes | str]) -> bytes:
    """A tar of ("file", name, bytes), ("sym" | "hard", name, target) and ("dir", name, "") entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))  # type: ignore[arg-type]
                continue
            info.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "dir": tarfile.DIRTYPE}[kind]
            info.linkname = value  # type: ignore[assignment]
            tar.addfile(info)
    return buf.getvalue()


LAYER = tar_of(("file", "hello.txt", b"hi\n"))
OTHER_LAYER = tar_of(("file", "other.txt", b"other\n"))


def config_for(diff_ids: list[str], **extra) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}, **extra}).encode()


def docker_files(layers=(LAYER,), *, config: bytes | None = None, tags=("hostile:1",)) -> dict[str, bytes]:
    """The files of a valid docker-archive, to be spoiled by a test."""
    diff_ids = [sha256(layer) for layer in layers]
    config = config or config_for(diff_ids)
    manifest = [{"Config": sha256(config)[7:] + ".json", "RepoTags": list(tags),
                 "Layers": [d[7:] + ".tar" for d in diff_ids]}]
    files = {d[7:] + ".tar": layer for d, layer in zip(diff_ids, layers)}
    return files | {sha256(config)[7:] + ".json": config, "manifest.json": json.dumps(manifest).encode()}


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def oci_files(blobs=(LAYER,), *, media_type=LAYER_TAR, layers: list[dict] | None = None,
              config: bytes | None = None, diff_ids: list[str] | None = None) -> dict[str, bytes]:
    """The files of a valid oci-archive (layer `blobs` as given), to be spoiled by a test."""
    config = config or config_for(diff_ids or [sha256(b) for b in blobs])
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": descriptor(OCI_CONFIG, config),
                           "layers": layers or [descriptor(media_type, b) for b in blobs]}).encode()
    index = {"schemaVersion": 2, "manifests": [descriptor(OCI_MANIFEST, manifest, annotations={REF_NAME: "hostile:1"})]}
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(index).encode()}
    return files | {"blobs/sha256/" + sha256(b)[7:]: b for b in (*blobs, config, manifest)}


def archive(files: dict[str, bytes], *extra: tuple) -> bytes:
    return tar_of(*[("file", name, data) for name, data in files.items()], *extra)


def state(rt) -> dict:
    layer_dir = os.path.join(rt.root, "layers")
    return {"images": sorted(i.id for i in rt.images()),
            "layer rows": sorted(r[0] for r in rt.db.query("SELECT id FROM layers")),
            "layer dirs": sorted(os.listdir(layer_dir)) if os.path.isdir(layer_dir) else [],
            "blobs and temp files": sorted(os.listdir(rt.content.root))}


@pytest.fixture(params=["path", "stream"])
def refused(request, rt, tmp_path):
    """refused(archive bytes, match): load them (from a file, or a stream) and check the refusal
    left the store as it was."""
    def check(data: bytes, match: str, limits: LoadLimits | None = None) -> ArchiveFormatError:
        before = state(rt)
        (tmp_path / "a.tar").write_bytes(data)
        source = str(tmp_path / "a.tar") if request.param == "path" else io.BytesIO(data)
        with pytest.raises(ArchiveFormatError, match=match) as info:
            load(rt, source, limits=limits)
        assert state(rt) == before
        return info.value
    return check


def test_a_valid_generated_archive_loads(rt, tmp_path):
    """The baseline the hostile cases spoil: both generators make archives that load."""
    (tmp_path / "d.tar").write_bytes(archive(docker_files()))
    (tmp_path / "o.tar").write_bytes(archive(oci_files()))
    for name in ("d.tar", "o.tar"):
        (image,) = load(rt, str(tmp_path / name))
        assert image.names == ["localhost/hostile:1"] and image.layers == [sha256(LAYER)[7:]]


@pytest.mark.parametrize("layer,match", [("../../etc/passwd", "points outside the archive"),
                                         ("/etc/passwd", "is an absolute path"),
                                         ("missing.tar", "no file 'missing.tar'")])
def test_manifest_naming_a_layer_outside_the_archive(refused, layer, match):
    files = docker_files()
    manifest = json.loads(files["manifest.json"])
    manifest[0]["Layers"] = [layer]
    refused(archive(files | {"manifest.json": json.dumps(manifest).encode()}), match)


@pytest.mark.parametrize("entry,match", [(("file", "../../escape.txt", b"x"), "points outside the archive"),
                                         (("file", "/tmp/escape.txt", b"x"), "is an absolute path"),
                                         (("sym", "evil.tar", "/etc/passwd"), "is an absolute path"),
                                         (("sym", "sub/evil.tar", "../../etc/passwd"), "points outside"),
                                         (("hard", "evil.tar", "../etc/passwd"), "points outside"),
                                         (("file", "d/" * 40 + "deep", b"x"), "deeper than 32 directories")])
def test_members_that_leave_the_archive_are_refused(refused, tmp_path, entry, match):
    refused(archive(docker_files(), entry), match)
    # every test's directory of this worker: os.walk, unlike rglob, passes over entries it cannot
    # stat (another test leaves a symlink whose 300-byte target is too long a name)
    assert not [d for d, _, files in os.walk(tmp_path.parent) if "escape.txt" in files]


def test_a_symlinked_layer_inside_the_archive_is_followed(rt, tmp_path):
    """Older Docker archives link `<id>/layer.tar` to a shared layer file: that is fine."""
    files = docker_files()
    manifest = json.loads(files["manifest.json"])
    manifest[0]["Layers"] = ["abc/layer.tar"]
    files["manifest.json"] = json.dumps(manifest).encode()
    (tmp_path / "a.tar").write_bytes(archive(files, ("sym", "abc/layer.tar", f"../{sha256(LAYER)[7:]}.tar")))
    assert load(rt, str(tmp_path / "a.tar"))[0].layers == [sha256(LAYER)[7:]]


def test_a_layer_whose_diff_id_does_not_match_the_config(refused):
    config = config_for([sha256(OTHER_LAYER)])
    files = docker_files(config=config)
    manifest = json.loads(files["manifest.json"])
    files[manifest[0]["Layers"][0]] = LAYER
    refused(archive(files), "layer content has digest " + sha256(LAYER))


def test_a_config_whose_digest_does_not_match_its_name(refused):
    files = docker_files()
    manifest = json.loads(files["manifest.json"])
    files[manifest[0]["Config"]] = config_for([sha256(LAYER)], author="mallory")
    refused(archive(files), "not the one its name says")


def test_a_second_bad_image_leaves_the_first_unregistered(refused):
    good = docker_files(tags=("good:1",))
    bad = docker_files((OTHER_LAYER,), config=config_for([sha256(LAYER)]), tags=("bad:1",))
    manifest = json.loads(good.pop("manifest.json")) + json.loads(bad.pop("manifest.json"))
    refused(archive(good | bad | {"manifest.json": json.dumps(manifest).encode()}), "layer content has digest")


def test_an_oci_layer_blob_that_does_not_match_its_descriptor(refused):
    """Same uncompressed content (so the diff_id matches) in a gzip stream other than the one the
    manifest names: the layer is unpacked, then refused and removed."""
    named, other = gzip.compress(LAYER, mtime=0), gzip.compress(LAYER, mtime=1)
    assert len(named) == len(other) and named != other
    files = oci_files((named,), media_type=LAYER_GZIP, diff_ids=[sha256(LAYER)])
    refused(archive(files | {"blobs/sha256/" + sha256(named)[7:]: other}), f"layer {sha256(named)} has digest")


def test_an_oci_layer_of_another_size_than_its_descriptor(refused):
    layers = [descriptor(LAYER_TAR, LAYER) | {"size": len(LAYER) - 512}]
    refused(archive(oci_files(layers=layers)), "its manifest says")


def test_an_oci_config_that_does_not_match_its_digest(refused):
    files = oci_files()
    config_name = next(n for n, data in files.items() if b'"rootfs"' in data)
    refused(archive(files | {config_name: files[config_name].replace(b"amd64", b"arm64")}),
            "does not match its digest or size")


@pytest.mark.parametrize("digest", ["sha256:../../../../etc/passwd", "sha512:" + "0" * 128, "sha256:" + "A" * 64])
def test_an_index_digest_that_is_not_a_sha256_is_never_a_path(refused, digest):
    files = oci_files()
    index = json.loads(files["index.json"])
    index["manifests"][0]["digest"] = digest
    refused(archive(files | {"index.json": json.dumps(index).encode()}), "invalid digest")


def test_a_foreign_layer_is_not_fetched(refused):
    layers = [descriptor(LAYER_TAR, LAYER, urls=["http://127.0.0.1:1/layer"])]
    refused(archive(oci_files(layers=layers)), "foreign layer")


@pytest.mark.parametrize("where", ["in a layer", "in a header", "after a header", "before the end marker"])
def test_a_truncated_archive(refused, where):
    data = archive(docker_files())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        first, last = tar.getmembers()[0], tar.getmembers()[-1]
    cut = {"in a layer": first.offset_data + first.size // 2, "in a header": last.offset + 100,
           "after a header": last.offset_data, "before the end marker": last.offset_data + 512}[where]
    refused(data[:cut], "unexpected end of data|truncated")


def test_a_truncated_gzip_archive(refused):
    data = gzip.compress(archive(docker_files()))
    refused(data[:len(data) // 2], "corrupt or unreadable gzip stream")


@pytest.mark.parametrize("data,match", [(b"", "empty|truncated"), (os.urandom(4096), "corrupt tar header|invalid"),
                                        (tar_of(("file", "README", b"hi")), "not an image archive")])
def test_what_is_not_an_image_archive(refused, data, match):
    refused(data, match)


def test_duplicate_entries_are_refused(refused):
    refused(archive(docker_files(), ("file", "manifest.json", b"[]")), "two entries named 'manifest.json'")


def test_manifest_json_and_config_sizes_are_capped(refused):
    files = docker_files()
    refused(archive(files | {"manifest.json": b" " * (5 * MiB)}), "manifest.json is 5242880 bytes, more than the limit")
    big = config_for([sha256(LAYER)], padding="x" * (5 * MiB))
    refused(archive(docker_files(config=big)), "bytes, more than the limit of 4194304")


def test_the_entry_count_is_capped(refused):
    extra = [("file", f"junk/{i}", b"") for i in range(100)]
    refused(archive(docker_files(), *extra), "more than 50 entries", LoadLimits(max_entries=50))


def gzip_bomb(expanded: int, chunk: int = 16 * MiB) -> bytes:
    """A gzip stream of `expanded` zero bytes, made fast as concatenated members of one chunk."""
    member = gzip.compress(b"\0" * chunk, compresslevel=9, mtime=0)
    return member * (expanded // chunk)


def test_a_gzip_bomb_layer_is_stopped_at_the_layer_cap(refused):
    files = docker_files()
    layer_name = json.loads(files["manifest.json"])[0]["Layers"][0]
    bomb = gzip_bomb(1 << 30)  # about 1 MiB that expands to 1 GiB
    assert len(bomb) < 2 * MiB
    started = time.monotonic()
    refused(archive(files | {layer_name: bomb}), "exceeds the limit of 16777216", LoadLimits(max_layer_bytes=16 * MiB))
    assert time.monotonic() - started < 10


def test_a_gzip_bomb_archive_is_stopped_at_the_archive_cap(refused):
    """A gzipped archive whose one member claims 1 GiB of zeros: the spool stops at the cap."""
    header = tarfile.TarInfo("huge.bin")
    header.size = 1 << 30
    bomb = gzip.compress(header.tobuf(tarfile.PAX_FORMAT)) + gzip_bomb(1 << 30)
    started = time.monotonic()
    refused(bomb, "exceeds the limit of 16777216 uncompressed bytes", LoadLimits(max_bytes=16 * MiB))
    assert time.monotonic() - started < 10


def test_an_oci_layout_dir_with_a_symlinked_blob_is_refused(rt, tmp_path):
    layout = tmp_path / "layout"
    for name, data in oci_files().items():
        (layout / name).parent.mkdir(parents=True, exist_ok=True)
        (layout / name).write_bytes(data)
    blob = layout / "blobs" / "sha256" / sha256(LAYER)[7:]
    outside = tmp_path / "outside.tar"
    blob.rename(outside)
    blob.symlink_to(outside)
    before = state(rt)
    with pytest.raises(ArchiveFormatError, match="symlinks are not followed"):
        load(rt, str(layout))
    assert state(rt) == before
    blob.unlink()
    outside.rename(blob)
    assert load(rt, str(layout))[0].names == ["localhost/hostile:1"]
