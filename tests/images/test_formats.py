"""save/load of docker-archive, oci-archive and OCI layout directories: round trips that run,
reproducible bytes, names, and the argument errors of save."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile

import pytest

from workbench import InvalidArgument, NoSuchImage, RunResult, Runtime
from workbench.engine.images.formats import ArchiveFormatError, load, save

FORMATS = [("docker-archive", False), ("oci-archive", False), ("oci-archive", True), ("oci-dir", False),
           ("oci-dir", True)]


def members(path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def read_member(path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        return tar.extractfile(name).read()


@pytest.mark.parametrize("fmt,compress", FORMATS)
def test_saved_image_loads_elsewhere_and_runs(rt, busybox, other_rt, tmp_path, fmt, compress):
    out = str(tmp_path / "out")
    save(rt, [busybox], out, format=fmt, compress=compress)
    (image,) = load(other_rt, out)
    original = rt.image(busybox)
    assert (image.id, image.names, image.layers) == (original.id, [busybox], original.layers)
    assert image.inspect()["ManifestType"] == ("application/vnd.docker.distribution.manifest.v2+json"
                                               if fmt == "docker-archive" else "application/vnd.oci.image.manifest.v1+json")
    assert other_rt.run(busybox, ["echo", "hi"], remove=True) == RunResult(0, b"hi\n", b"")


def test_docker_archive_has_podmans_layout(rt, busybox, tmp_path):
    save(rt, [busybox], str(tmp_path / "a.tar"))
    image = rt.image(busybox)
    layer = image.layers[0]
    assert sorted(members(tmp_path / "a.tar")) == sorted([f"{layer}.tar", f"{image.id}.json", "manifest.json",
                                                           "repositories"])
    manifest = json.loads(read_member(tmp_path / "a.tar", "manifest.json"))
    assert manifest == [{"Config": f"{image.id}.json", "RepoTags": [busybox], "Layers": [f"{layer}.tar"]}]
    assert json.loads(read_member(tmp_path / "a.tar", "repositories")) == {"localhost/busybox": {"latest": layer}}
    assert read_member(tmp_path / "a.tar", f"{image.id}.json") == rt.content.read("sha256:" + image.id)


def test_oci_archive_names_the_image_in_index_json(rt, busybox, tmp_path):
    save(rt, [busybox], str(tmp_path / "a.tar"), format="oci-archive")
    index = json.loads(read_member(tmp_path / "a.tar", "index.json"))
    (entry,) = index["manifests"]
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": busybox}
    manifest = json.loads(read_member(tmp_path / "a.tar", "blobs/sha256/" + entry["digest"][7:]))
    assert manifest["config"]["digest"] == "sha256:" + rt.image(busybox).id
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar"]
    assert json.loads(read_member(tmp_path / "a.tar", "oci-layout")) == {"imageLayoutVersion": "1.0.0"}


def test_compressed_oci_layers_are_gzip_with_a_fixed_header(rt, busybox, tmp_path):
    save(rt, [busybox], str(tmp_path / "layout"), format="oci-dir", compress=True)
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    blobs = tmp_path / "layout" / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    (layer,) = manifest["layers"]
    blob = (blobs / layer["digest"][7:]).read_bytes()
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip" and layer["size"] == len(blob)
    assert blob[3] == 0 and blob[4:8] == b"\0\0\0\0"  # FLG: no name; MTIME 0
    stream, size = rt.image_store.open_layer_tar(rt.image(busybox).config["rootfs"]["diff_ids"][0])
    with stream:
        assert gzip.decompress(blob) == stream.read(size + 1)


@pytest.mark.parametrize("fmt,compress", [f for f in FORMATS if f[0] != "oci-dir"])
def test_saving_twice_gives_identical_bytes(rt, busybox, tmp_path, fmt, compress):
    save(rt, [busybox], str(tmp_path / "1.tar"), format=fmt, compress=compress)
    save(rt, [busybox], str(tmp_path / "2.tar"), format=fmt, compress=compress)
    assert (tmp_path / "1.tar").read_bytes() == (tmp_path / "2.tar").read_bytes()
    owners_and_times = {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members(tmp_path / "1.tar").values()}
    assert owners_and_times == {(0, 0, 0, "", "")}
    assert list(members(tmp_path / "1.tar")) == sorted(members(tmp_path / "1.tar"))


def test_timestamp_and_source_date_epoch_set_every_mtime(rt, busybox, tmp_path, monkeypatch):
    save(rt, [busybox], str(tmp_path / "t.tar"), timestamp=1700000000)
    assert {m.mtime for m in members(tmp_path / "t.tar").values()} == {1700000000}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "946684800")
    save(rt, [busybox], str(tmp_path / "e.tar"), format="oci-archive")
    assert {m.mtime for m in members(tmp_path / "e.tar").values()} == {946684800}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(InvalidArgument, match="SOURCE_DATE_EPOCH"):
        save(rt, [busybox], str(tmp_path / "x.tar"))


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_same_archive_loaded_in_two_roots_saves_to_the_same_bytes(rt, busybox, other_rt, tmp_path, fmt):
    save(rt, [busybox], str(tmp_path / "src.tar"), format="oci-archive")
    fresh = Runtime(str(tmp_path / "root3"), str(tmp_path / "run3"))
    try:
        for runtime, out in ((other_rt, "a.tar"), (fresh, "b.tar")):
            load(runtime, str(tmp_path / "src.tar"))
            save(runtime, [busybox], str(tmp_path / out), format=fmt, timestamp=1234567890)
    finally:
        fresh.close()
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_compressed_archives_load_from_paths_and_streams(rt, busybox, other_rt, tmp_path):
    save(rt, [busybox], str(tmp_path / "a.tar"))
    plain = (tmp_path / "a.tar").read_bytes()
    (tmp_path / "a.tar.gz").write_bytes(gzip.compress(plain))
    subprocess.run(["zstd", "-q", "-f", str(tmp_path / "a.tar"), "-o", str(tmp_path / "a.tar.zst")], check=True)
    image_id = rt.image(busybox).id
    assert [i.id for i in load(other_rt, str(tmp_path / "a.tar.gz"))] == [image_id]
    assert [i.id for i in load(other_rt, str(tmp_path / "a.tar.zst"))] == [image_id]
    assert [i.id for i in load(other_rt, io.BytesIO(plain))] == [image_id]
    with open(tmp_path / "a.tar.gz", "rb") as f:
        assert [i.id for i in load(other_rt, f)] == [image_id]
    assert not [n for n in os.listdir(other_rt.content.root) if n.startswith(".tmp-")]


def test_save_writes_to_a_stream(rt, busybox, tmp_path):
    buf = io.BytesIO()
    save(rt, [busybox], buf, format="oci-archive")
    save(rt, [busybox], str(tmp_path / "a.tar"), format="oci-archive")
    assert buf.getvalue() == (tmp_path / "a.tar").read_bytes()


def test_multi_image_docker_archive_keeps_every_name_and_shares_layers(rt, busybox, busybox_tar, other_rt, tmp_path):
    rt.tag_image(busybox, "second:v1")
    other = rt.import_image(busybox_tar, "labelled", changes=["LABEL a=b"])
    save(rt, [busybox, "second:v1", "labelled"], str(tmp_path / "m.tar"))
    assert len([n for n in members(tmp_path / "m.tar") if n.endswith(".tar")]) == 1  # one shared layer
    loaded = load(other_rt, str(tmp_path / "m.tar"))
    assert [(i.id, sorted(i.names)) for i in loaded] == [
        (rt.image(busybox).id, sorted([busybox, "localhost/second:v1"])), (other.id, ["localhost/labelled:latest"])]


def test_an_image_saved_by_id_loads_without_a_name(rt, busybox, other_rt, tmp_path):
    image_id = rt.image(busybox).id
    save(rt, [image_id[:12]], str(tmp_path / "d.tar"))
    save(rt, [image_id], str(tmp_path / "o.tar"), format="oci-archive")
    assert json.loads(read_member(tmp_path / "d.tar", "manifest.json"))[0]["RepoTags"] == []
    assert "annotations" not in json.loads(read_member(tmp_path / "o.tar", "index.json"))["manifests"][0]
    for path in ("d.tar", "o.tar"):
        (image,) = load(other_rt, str(tmp_path / path))
        assert (image.id, image.names) == (image_id, [])


def test_save_and_load_report_progress(rt, busybox, other_rt, tmp_path):
    calls = []
    save(rt, [busybox], str(tmp_path / "a.tar"), progress=lambda done, total: calls.append((done, total)))
    [diff_id] = rt.image(busybox).inspect()["RootFS"]["Layers"]
    layer = rt.image_store.layer_size(diff_id)
    total = calls[0][1]
    assert layer < total < layer + 10_000  # the layer, the config and two small JSON documents
    assert calls[-1] == (total, total) and all(t == total for _, t in calls)
    events = []
    load(other_rt, str(tmp_path / "a.tar"), progress=events.append)
    assert [e.kind for e in events][0] == "blob" and [e.kind for e in events][-2:] == ["blob", "done"]
    assert (events[0].done_bytes, events[0].total_bytes) == (0, layer)  # the total, announced first
    assert (events[-2].done_bytes, events[-2].total_bytes) == (layer, layer)
    assert events[-1].digest == "sha256:" + rt.image(busybox).id


def test_loading_an_image_already_present_keeps_it(rt, busybox, tmp_path):
    save(rt, [busybox], str(tmp_path / "a.tar"))
    before = rt.db.query("SELECT id FROM layers")
    (image,) = load(rt, str(tmp_path / "a.tar"))
    assert image.id == rt.image(busybox).id and rt.db.query("SELECT id FROM layers") == before


def test_save_refuses_bad_arguments(rt, busybox, tmp_path):
    out = str(tmp_path / "x.tar")
    with pytest.raises(InvalidArgument, match='unsupported format "docker-dir"'):
        save(rt, [busybox], out, format="docker-dir")
    with pytest.raises(InvalidArgument, match="use docker-archive to save several"):
        save(rt, [busybox, busybox], out, format="oci-archive")
    with pytest.raises(InvalidArgument, match="compress"):
        save(rt, [busybox], out, compress=True)
    with pytest.raises(InvalidArgument, match="no image"):
        save(rt, [], out)
    with pytest.raises(NoSuchImage):
        save(rt, ["nosuch"], out)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("mine")
    with pytest.raises(InvalidArgument, match="not an empty directory"):
        save(rt, [busybox], str(tmp_path / "full"), format="oci-dir")
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-") or n == "x.tar"]
    assert (tmp_path / "full" / "keep").read_text() == "mine"


def test_a_failed_save_leaves_no_file(rt, busybox, tmp_path):
    with pytest.raises(NoSuchImage):
        save(rt, [busybox, "nosuch"], str(tmp_path / "x.tar"))
    assert not (tmp_path / "x.tar").exists()
    assert not [n for n in os.listdir(rt.root) if n.startswith(".tmp-")]


def test_load_of_a_missing_or_foreign_file_is_a_clear_error(rt, tmp_path):
    from workbench import WorkbenchError

    with pytest.raises(WorkbenchError, match="No such file"):
        load(rt, str(tmp_path / "missing.tar"))
    (tmp_path / "notes.txt").write_text("hello\n" * 200)
    with pytest.raises(ArchiveFormatError, match="notes.txt"):
        load(rt, str(tmp_path / "notes.txt"))


def test_import_reports_the_bytes_of_the_tarball_read(rt, busybox_tar):
    calls = []
    rt.import_image(busybox_tar, "imported", progress=lambda done, total: calls.append((done, total)))
    size = os.path.getsize(busybox_tar)
    assert calls[0][1] == size and calls[-1] == (size, size)


def test_what_a_killed_pull_load_or_save_left_is_swept_by_the_next_one(rt, busybox, busybox_tar, tmp_path):
    """Scratch entries are named after their process: those of a dead one go, a live one's stay."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    leftovers = {os.path.join(rt.layers.root, f"incoming-{gone.pid}-0a"): "dir",
                 os.path.join(rt.content.root, f".tmp-{gone.pid}-0b"): "file",
                 os.path.join(rt.root, f".tmp-save-{gone.pid}-0c"): "dir"}
    alive = [os.path.join(rt.layers.root, "incoming-1-0d"), os.path.join(rt.root, ".tmp-save-1-0e")]  # pid 1 lives
    for path, kind in [*leftovers.items(), *((p, "dir") for p in alive)]:
        if kind == "dir":
            os.makedirs(os.path.join(path, "sub"))
            open(os.path.join(path, "sub", "half-written"), "w").close()
        else:
            open(path, "w").close()
    later = Runtime(rt.root, rt.runroot)  # the next process to use the store
    with open(busybox_tar, "rb") as layer:
        later.image_store.put_layer(layer)  # a new layer: sweeps incoming-*
    with later.content.incoming():  # a new blob: sweeps .tmp-*
        pass
    save(later, [busybox], str(tmp_path / "a.tar"))  # sweeps .tmp-save-*
    later.close()
    assert [p for p in leftovers if os.path.lexists(p)] == []
    assert all(os.path.isdir(p) for p in alive)
