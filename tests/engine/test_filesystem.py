"""A container's file system: diff, commit (reproducible), export, mount counting, tag/untag."""

from __future__ import annotations

import io
import os
import tarfile
import time

import pytest

from workbench import ContainerState, InvalidArgument, Runtime

S = ContainerState
CHANGE = "echo new > /newfile; echo more >> /etc/passwd; rm /bin/vi; mkdir -p /d/e; ln -s /etc/shadow /d/link"


def _changed(rt, busybox, script: str = CHANGE):
    c = rt.run(busybox, ["sh", "-c", script], detach=True)
    assert c.wait() == 0
    return c


def test_diff_reports_added_changed_and_deleted(rt, busybox):
    c = _changed(rt, busybox)
    assert c.diff() == [("C", "/bin"), ("D", "/bin/vi"), ("A", "/d"), ("A", "/d/e"), ("A", "/d/link"),
                        ("C", "/etc"), ("C", "/etc/passwd"), ("A", "/newfile")]


def test_commit_makes_a_runnable_image_with_the_changes(rt, busybox):
    c = _changed(rt, busybox)
    image = c.commit("snapshot", changes=["ENV MODE=committed", 'CMD ["cat", "/newfile"]'], message="after",
                     author="Ada")
    assert image.names == ["localhost/snapshot:latest"]
    assert len(image.layers) == 2
    info = image.inspect()
    assert info["Author"] == "Ada" and info["Comment"] == "after"
    assert info["History"][-1]["comment"] == "after"
    assert "MODE=committed" in info["Config"]["Env"]
    assert rt.run("snapshot", remove=True).stdout == b"new\n"
    out = rt.run("snapshot", ["sh", "-c", "tail -1 /etc/passwd; test -e /bin/vi || echo gone; readlink /d/link"],
                 remove=True).stdout
    assert out == b"more\ngone\n/etc/shadow\n"


def test_commit_with_a_timestamp_is_reproducible_across_roots(tmp_path, busybox_tar):
    ids = []
    for n in range(2):
        rt = Runtime(str(tmp_path / f"root{n}"), str(tmp_path / f"run{n}"))
        try:
            base = rt.image_store.put_layer(open(busybox_tar, "rb"))[0]
            config = ('{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},'
                      f'"rootfs":{{"type":"layers","diff_ids":["{base}"]}}}}').encode()
            rt.image_store.register(config, ["localhost/base:latest"])
            c = _changed(rt, "base")
            ids.append(c.commit("snap", timestamp=1_700_000_000).id)
            c.remove()
        finally:
            rt.close()
    assert ids[0] == ids[1]


def _inode_flags(path: str) -> int | None:
    """FS_IOC_GETFLAGS of a directory, None where the file system has no inode flags."""
    import fcntl
    import struct

    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, 0x80086601, bytes(4)))[0]
    except OSError:
        return None
    finally:
        os.close(fd)


def test_layers_are_spread_over_the_file_system(rt, busybox_tar):
    """The layers directory is a `chattr +T` top directory once a layer is unpacked into it, so
    ext4 gives each layer a block group of its own (see LayerStore.spread)."""
    flags = _inode_flags(rt.layers.root)
    if flags is None:
        pytest.skip(f"{rt.layers.root} is on a file system without inode flags (not ext2/3/4 here)")
    assert not flags & 0x00020000  # a store that never unpacked a layer is left alone
    rt.image_store.put_layer(open(busybox_tar, "rb"))
    assert _inode_flags(rt.layers.root) & 0x00020000


def test_a_new_layer_lands_away_from_the_layers_removed_in_the_last_minutes(rt, busybox_tar):
    """On ext4 a top-level directory goes to a group with the fewest directories, often the one a
    removal just emptied, whose freed inodes slow every new file (see LayerStore.create_apart)."""
    from workbench.engine.storage.layers import _FLEX_INODES, _PLACEMENT_TRIES, lands_where_freed

    layers = rt.layers
    layers.spread()
    if not layers._spread:  # create_apart only steers where spread could mark the directory
        pytest.skip(f"{layers.root} takes no top-directory flag (not ext2/3/4 here)")
    made = iter(range(1000))
    before = set(os.listdir(layers.root))
    for _ in range(6):  # each new layer is removed in turn, as `rmi` then `load` does
        tried = []
        layer_id = layers.create_apart(lambda: tried.append(next(made)) or f"incoming-{os.getpid()}-{tried[-1]}")
        ino = os.lstat(layers.dir(layer_id)).st_ino
        # ext4 chooses the group, so a layer lands away within the tries it takes: nearly always
        assert not lands_where_freed(ino, layers._recently_freed()) or len(tried) == _PLACEMENT_TRIES, \
            f"landed where a layer was just removed after {len(tried)} of {_PLACEMENT_TRIES} tries"
        assert set(os.listdir(layers.root)) - before == {layer_id}, "a placeholder was left behind"
        layers.remove(layer_id)
    assert len(layers._recently_freed()) == 6
    writable = next(made)
    layers.create(f"c{writable}", writable=True)  # a container's layer: a few inodes, not noted
    layers.remove(f"c{writable}")
    assert len(layers._recently_freed()) == 6
    assert lands_where_freed(_FLEX_INODES, [1]) and not lands_where_freed(_FLEX_INODES + 1, [1])


@pytest.mark.parametrize("landings_in_freed_groups", [0, 3, 100])
def test_a_layer_made_where_one_was_removed_is_kept_aside_while_the_next_is_made(rt, monkeypatch,
                                                                             landings_in_freed_groups):
    """The retry itself, with ext4's choice of group replaced: each directory that lands where a
    layer was removed stays (so the group fills) until one lands elsewhere or the tries run out;
    then only the layer is left."""
    from workbench.engine.storage import layers as layer_store

    layers = rt.layers
    layers._spread = True  # as spread() sets it on ext2/3/4
    monkeypatch.setattr(layers, "_recently_freed", lambda: [1])
    verdicts = iter([True] * landings_in_freed_groups + [False] * 100)
    present_at_check: list[int] = []

    def lands(ino, freed):
        present_at_check.append(len(os.listdir(layers.root)))
        return next(verdicts)

    monkeypatch.setattr(layer_store, "lands_where_freed", lands)
    before = set(os.listdir(layers.root))
    tried: list[str] = []
    layer_id = layers.create_apart(lambda: tried.append(f"incoming-{len(tried)}") or tried[-1])
    expected = min(landings_in_freed_groups + 1, layer_store._PLACEMENT_TRIES)
    assert tried[-1] == layer_id and len(tried) == expected
    assert present_at_check == [len(before) + n for n in range(1, len(present_at_check) + 1)], \
        "a directory that landed in a freed group was not kept while the next was made"
    assert set(os.listdir(layers.root)) - before == {layer_id}, "a placeholder was left behind"


def test_the_note_of_removed_layers_forgets_old_ones(rt):
    note = rt.layers.root + ".freed"
    now = time.time()
    with open(note, "w") as f:
        f.writelines(f"{1000 + i} {now - 400:.0f}\n" for i in range(100))  # older than 360 s
        f.write(f"7 {now:.0f}\nnot a line\n")
    assert rt.layers._recently_freed() == [7]
    with open(note) as f:
        assert f.read() == f"7 {now:.0f}\n", "the old lines outnumbered the rest: rewritten without them"


def test_commit_pauses_a_running_container_and_resumes_it(rt, busybox):
    c = rt.run(busybox, ["sh", "-c", "echo x > /f; sleep 100"], detach=True)
    image = c.commit("live")
    assert c.state == S.RUNNING
    assert rt.run(image.id, ["cat", "/f"], remove=True).stdout == b"x\n"


def test_export_writes_the_whole_file_system(rt, busybox):
    c = _changed(rt, busybox)
    buf = io.BytesIO()
    c.export(buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        names = set(tar.getnames())
        assert tar.extractfile("newfile").read() == b"new\n"  # reading a member, not extracting to disk
    assert "bin/busybox" in names and "bin/vi" not in names and "d/link" in names
    assert "run/.containerenv" not in names  # the runtime's mount point, not the user's file
    assert not c.inspect()["GraphDriver"]["Data"].get("MergedDir")  # mounted only for the export


def test_export_and_commit_report_the_bytes_they_write(rt, busybox):
    c = rt.run(busybox, ["sh", "-c", "head -c 3000000 /dev/urandom > /big"], detach=True)
    assert c.wait() == 0
    calls = []
    buf = io.BytesIO()
    c.export(buf, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (len(buf.getvalue()), len(buf.getvalue()))  # the end: all of the tar
    assert len(calls) > 5 and all(total == -1 for _, total in calls[:-1])  # walked as written: no total ahead
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    calls.clear()
    image = c.commit("with-big", progress=lambda done, total: calls.append((done, total)))
    size = rt.image_store.layer_size(image.inspect()["RootFS"]["Layers"][-1])
    assert calls[-1] == (size, size) and size > 3_000_000


def test_hard_links_are_kept_by_export_and_commit(rt, busybox):
    c = rt.run(busybox, ["sh", "-c", "mkdir /data && head -c 100000 /dev/urandom > /data/a && ln /data/a /data/b"],
               detach=True)
    c.wait()
    buf = io.BytesIO()
    c.export(buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        first, second = tar.getmember("data/a"), tar.getmember("data/b")
    assert first.isreg() and first.size == 100000
    assert second.islnk() and second.linkname == "data/a" and second.size == 0  # the content once
    image = c.commit("linked")
    result = rt.run(image.id, ["sh", "-c", "stat -c %i /data/a /data/b | uniq | wc -l; stat -c %h /data/a"],
                    remove=True)
    assert result.stdout == b"1\n2\n"  # one inode with two names


def test_mount_is_counted_and_survives_stop(rt, busybox):
    c = rt.run(busybox, ["sleep", "100"], detach=True)
    path = c.mount()
    assert c.mount() == path
    c.stop(timeout=0)
    c.wait()
    assert os.path.ismount(path) and os.path.exists(os.path.join(path, "bin/busybox"))
    c.unmount()
    assert os.path.ismount(path)
    c.unmount()
    assert not os.path.ismount(path)


def test_remove_unmounts_a_mounted_container(rt, busybox):
    c = rt.create_container(busybox, ["true"])
    path = c.mount()
    rt.remove_container(c)
    assert not os.path.exists(path)


def test_tag_and_untag(rt, busybox):
    assert rt.tag_image(busybox, "extra", "docker.io/x/y:v2") == ["localhost/extra:latest", "docker.io/x/y:v2"]
    assert set(rt.image("extra").names) == {busybox, "localhost/extra:latest", "docker.io/x/y:v2"}
    assert rt.untag_image(busybox, "extra") == ["localhost/extra:latest"]
    with pytest.raises(InvalidArgument, match="tag not known"):
        rt.untag_image(busybox, "extra")
    rt.untag_image(busybox)
    assert rt.image_store.get(rt.images()[0].id).names == []


def test_cp_both_ways_with_docker_cp_naming(rt, busybox, tmp_path):
    c = rt.run(busybox, ["sh", "-c", "mkdir -p /data/sub; echo hi > /data/sub/a; ln -s /etc/shadow /data/evil; "
                                     "ln -s / /data/root; sleep 100"], detach=True)
    deadline = time.monotonic() + 20  # the script may not have got to its last line yet under load
    while c.exec(["test", "-e", "/data/root"]).exit_code != 0:
        assert time.monotonic() < deadline, "the container's script did not finish its setup"
        time.sleep(0.05)
    c.copy_from("/data", str(tmp_path))
    assert (tmp_path / "data/sub/a").read_text() == "hi\n"
    assert os.readlink(tmp_path / "data/evil") == "/etc/shadow"  # copied as a link, never followed
    c.copy_from("/data/sub/a", str(tmp_path / "renamed"))
    assert (tmp_path / "renamed").read_text() == "hi\n"
    c.copy_from("/data/root/etc/passwd", str(tmp_path / "pw"))  # resolved inside the container
    assert (tmp_path / "pw").read_text().startswith("root:x:0:0:root:/root:/bin/sh")
    (tmp_path / "host.txt").write_text("from host\n")
    c.copy_to(str(tmp_path / "host.txt"), "/data/root/tmp/")  # the container's /tmp, not the host's
    assert c.exec(["cat", "/tmp/host.txt"]).stdout == b"from host\n"
    assert not os.path.exists("/tmp/host.txt") or open("/tmp/host.txt").read() != "from host\n"
    c.copy_to(str(tmp_path / "data") + "/.", "/contents")
    assert c.exec(["cat", "/contents/sub/a"]).stdout == b"hi\n"
    assert c.state == S.RUNNING  # paused for the copy only
    with pytest.raises(InvalidArgument, match="could not be found"):
        c.copy_from("/nope", str(tmp_path))
    with pytest.raises(InvalidArgument, match="meant to be a directory"):
        c.copy_to(str(tmp_path / "host.txt"), "/data/newdir/")
    with pytest.raises(InvalidArgument, match="could not be found on container"):
        c.copy_to(str(tmp_path / "host.txt"), "/missing/dir/")


def test_cp_into_a_stopped_container_and_from_the_cli(rt, busybox, cli, store, tmp_path):
    c = rt.create_container(busybox, ["cat", "/in.txt"], name="target")
    (tmp_path / "in.txt").write_text("copied in\n")
    proc = cli("cp", str(tmp_path / "in.txt"), "target:/in.txt")
    assert proc.returncode == 0, proc.stderr
    c.start()
    assert c.wait() == 0 and c.logs() == "copied in\n"
    assert cli("cp", "target:/etc/group", str(tmp_path / "g")).returncode == 0
    assert (tmp_path / "g").read_text().startswith("root:x:0:")
    proc = cli("cp", str(tmp_path / "in.txt"), str(tmp_path / "x"))
    assert proc.returncode == 125 and "one of SRC and DEST must be CONTAINER:PATH" in proc.stderr
