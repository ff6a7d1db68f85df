"""Named and anonymous volumes: made on first use, filled from the image once, kept across
containers, refused removal while in use, gone with `rm -v`/`--rm` when anonymous."""

from __future__ import annotations

import os

import pytest

from workbench import InvalidArgument, NoSuchContainer
from workbench.engine.volumes import NoSuchVolume, VolumeInUse


def _out(rt, busybox, script: str, **options) -> str:
    result = rt.run(busybox, ["sh", "-c", script], remove=True, network="none", **options)
    assert result.exit_code == 0, result.stderr
    return result.stdout.decode()


def test_a_named_volume_keeps_data_across_containers(rt, busybox):
    _out(rt, busybox, "echo 42 > /data/answer", volumes=["results:/data"])
    assert _out(rt, busybox, "cat /mnt/answer", volumes=["results:/mnt:ro"]) == "42\n"
    volume = rt.volumes.get("results")
    assert not volume.anonymous and volume.mountpoint == os.path.join(rt.root, "volumes", "results", "_data")
    with open(os.path.join(volume.mountpoint, "answer")) as f:
        assert f.read() == "42\n"


def test_a_new_volume_is_filled_from_the_image_once(rt, busybox):
    assert "passwd" in _out(rt, busybox, "ls /etc; echo mine > /etc/mine; rm /etc/group", volumes=["etc:/etc"]).split()
    listing = _out(rt, busybox, "ls /x", volumes=["etc:/x"]).split()
    assert "passwd" in listing and "mine" in listing and "group" not in listing  # filled once, then its own
    assert not rt.volumes.get("etc").needs_copy_up
    _out(rt, busybox, "true", volumes=["bare:/etc:nocopy"])
    assert "passwd" not in os.listdir(rt.volumes.get("bare").mountpoint)


def test_a_volume_in_use_is_kept_unless_forced(rt, busybox):
    c = rt.create_container(busybox, ["true"], volumes=["kept:/data"])
    with pytest.raises(VolumeInUse, match=f"volume kept is being used by the following container\\(s\\): {c.id}"):
        rt.volumes.remove("kept")
    assert rt.volumes.users("kept") == [c.id]
    c.remove()
    assert rt.volumes.exists("kept")  # a named volume outlives its container
    rt.volumes.remove("kept")
    assert not os.path.exists(os.path.join(rt.root, "volumes", "kept"))
    with pytest.raises(NoSuchVolume, match='no volume with name "kept" found'):
        rt.volumes.get("kept")


def test_anonymous_volumes_go_with_rm_v_and_with_rm(rt, busybox):
    c = rt.create_container(busybox, ["true"], volumes=["/scratch"])
    [mount] = c.inspect()["Mounts"]
    name = mount["Name"]
    assert mount["Type"] == "volume" and rt.volumes.get(name).anonymous and len(name) == 64
    c.remove(volumes=True)
    assert not rt.volumes.exists(name)
    c = rt.create_container(busybox, ["true"], volumes=["/scratch"])
    name = c.inspect()["Mounts"][0]["Name"]
    c.remove()
    assert rt.volumes.exists(name)  # without -v it stays, as with Podman
    rt.run(busybox, ["true"], remove=True, network="none", mounts=["type=volume,destination=/tmp/x"])
    assert [v.name for v in rt.volumes.list() if v.anonymous] == [name]  # --rm took its own


def test_bad_volume_names_and_bad_flags_are_refused_before_any_volume_is_made(rt, busybox):
    with pytest.raises(InvalidArgument, match='invalid volume name "-bad"'):
        rt.create_container(busybox, ["true"], volumes=["-bad:/x"])
    with pytest.raises(InvalidArgument):
        rt.create_container(busybox, ["true"], volumes=["fresh:/x"], workdir="relative")
    assert rt.volumes.list() == []


def test_a_create_that_fails_after_making_volumes_takes_them_back(rt, busybox, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")  # the layer cannot be made (injected: a full disk)
    monkeypatch.setattr(rt.layers, "create", disk_full)
    with pytest.raises(OSError):
        rt.create_container(busybox, ["true"], volumes=["fresh:/x", "/anonymous"])
    assert rt.volumes.list() == [] and not os.listdir(os.path.join(rt.root, "volumes"))


def test_volumes_from_shares_another_containers_volumes_and_bind_mounts(rt, busybox, tmp_path):
    (tmp_path / "f").write_text("host\n")
    source = rt.create_container(busybox, ["true"], network="none", tmpfs=["/scratch"],
                                 volumes=["shared:/data", "/anon", f"{tmp_path}:/host:ro", "own:/mine"])
    anonymous = next(m["volume"] for m in source.config.mounts if m["destination"] == "/anon")
    script = "echo 1 > /data/a && echo 2 > /anon/b && cat /host/f && grep -c ' /scratch ' /proc/mounts"
    result = rt.run(busybox, ["sh", "-c", script], remove=True, network="none", volumes_from=[source.name])
    assert (result.exit_code, result.stdout) == (1, b"host\n0\n")  # the tmpfs is not shared: grep counts 0
    assert rt.volumes.exists(anonymous)  # the borrower's --rm leaves what it borrowed
    # :ro makes every shared mount read-only; the container's own -v wins at its destination
    assert _out(rt, busybox, "cat /data/a /anon/b; cat /mine/* 2>&1; touch /data/c 2>&1 || echo refused",
                volumes_from=[f"{source.name}:ro"], volumes=["other:/mine"]) == (
        "1\n2\ncat: can't open '/mine/*': No such file or directory\ntouch: /data/c: Read-only file system\nrefused\n")
    source.remove(volumes=True)
    assert not rt.volumes.exists(anonymous) and rt.volumes.exists("shared")


def test_volumes_from_refuses_a_missing_container_and_bad_options(rt, busybox):
    with pytest.raises(NoSuchContainer):
        rt.create_container(busybox, ["true"], volumes_from=["nosuch"])
    source = rt.create_container(busybox, ["true"], volumes=["v:/v"])
    for spec, message in ((f"{source.name}:bogus", 'invalid option "bogus"'),
                          (f"{source.name}:ro,rw", "cannot set ro or rw options more than once")):
        with pytest.raises(InvalidArgument, match=message):
            rt.create_container(busybox, ["true"], volumes_from=[spec])
    assert [c.id for c in rt.containers()] == [source.id]
