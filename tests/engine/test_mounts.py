"""A container's own mounts (-v, --mount, --tmpfs, --read-only) and capabilities (--cap-add,
--cap-drop), with real containers; Podman 4.3's spellings, options and messages."""

from __future__ import annotations

import os

import pytest

from workbench import InvalidArgument
from workbench.engine import mounts
from workbench.engine.oci.spec import DEFAULT_CAPABILITIES, capabilities


def _run(rt, busybox, script: str, **options) -> str:
    result = rt.run(busybox, ["sh", "-c", script], remove=True, **options)
    return result.stdout.decode() + result.stderr.decode()


def test_a_bind_mount_shares_a_host_directory_both_ways(rt, busybox, tmp_path, monkeypatch):
    (tmp_path / "in.csv").write_text("a,b\n")
    monkeypatch.chdir(tmp_path.parent)
    out = _run(rt, busybox, "cat /data/in.csv; echo result > /data/out.txt; cat /rel/in.csv",
               volumes=[f"{tmp_path}:/data", f"./{tmp_path.name}:/rel:ro"])
    assert out == "a,b\na,b\n"
    assert (tmp_path / "out.txt").read_text() == "result\n"


def test_read_only_binds_refuse_writes_and_nested_mounts_stack(rt, busybox, tmp_path):
    (tmp_path / "outer" / "sub").mkdir(parents=True)  # runc cannot make a mount point in a read-only bind
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "file").write_text("inner\n")
    out = _run(rt, busybox, "echo x > /d/x || echo refused; cat /d/sub/file; echo y > /d/sub/y && echo wrote",
               volumes=[f"{tmp_path}/inner:/d/sub"], mounts=[f"type=bind,source={tmp_path}/outer,destination=/d,ro"])
    assert "refused" in out and "inner\n" in out and "wrote" in out
    assert (tmp_path / "inner" / "y").exists() and not (tmp_path / "outer" / "x").exists()


def test_tmpfs_mounts_take_size_and_mode(rt, busybox):
    out = _run(rt, busybox, "stat -c %a /scratch; df -k /scratch | tail -1; stat -c %a /t",
               tmpfs=["/scratch:size=2m,mode=1777"], mounts=["type=tmpfs,destination=/t,tmpfs-mode=0700"])
    mode, df, mode_t = out.splitlines()
    assert mode == "1777" and df.split()[1] == "2048" and mode_t == "700"


def test_read_only_root_keeps_run_tmp_and_var_tmp_writable(rt, busybox):
    out = _run(rt, busybox, "touch /etc/x 2>/dev/null || echo etc-ro; for d in /run /tmp /var/tmp; do "
                            "touch $d/ok && echo $d-ok; done", read_only=True)
    assert out.split() == ["etc-ro", "/run-ok", "/tmp-ok", "/var/tmp-ok"]


def test_inspect_shows_mounts_as_podman(rt, busybox, tmp_path):
    c = rt.create_container(busybox, ["true"], volumes=[f"{tmp_path}:/data:ro,nosuid"], tmpfs=["/scratch"],
                            read_only=True, cap_add=["net_admin"], cap_drop=["CAP_CHOWN"])
    info = c.inspect()
    assert info["Mounts"] == [{"Type": "bind", "Source": str(tmp_path), "Destination": "/data", "Driver": "",
                               "Mode": "", "Options": ["nosuid", "rbind"], "RW": False, "Propagation": "rprivate"}]
    host = info["HostConfig"]
    assert host["Binds"] == [f"{tmp_path}:/data:ro,nosuid,rprivate,rbind"]
    assert host["Tmpfs"] == {d: "rw,rprivate,nosuid,nodev,tmpcopyup" for d in ("/scratch", "/run", "/tmp", "/var/tmp")}
    assert host["ReadonlyRootfs"] is True
    assert (host["CapAdd"], host["CapDrop"]) == (["CAP_NET_ADMIN"], ["CAP_CHOWN"])
    assert "CAP_NET_ADMIN" in info["BoundingCaps"] and "CAP_CHOWN" not in info["BoundingCaps"]


def test_capabilities_added_and_dropped_reach_the_process(rt, busybox):
    out = _run(rt, busybox, "grep CapBnd /proc/self/status; chown 1 /tmp 2>/dev/null || echo no-chown; "
                            "ip addr add 10.9.9.9/32 dev lo && echo net-admin", cap_add=["NET_ADMIN"], cap_drop=["chown"],
               network="none")
    bounding = int(out.split()[1], 16)
    assert bounding >> 12 & 1 and not bounding & 1  # CAP_NET_ADMIN is bit 12, CAP_CHOWN bit 0
    assert "no-chown" in out and "net-admin" in out
    assert "net-admin" not in _run(rt, busybox, "ip addr add 10.9.9.9/32 dev lo && echo net-admin", network="none")


def test_the_capability_sets_follow_podmans_rules():
    assert capabilities() == sorted(DEFAULT_CAPABILITIES)
    assert capabilities(["ALL"], ["SYS_ADMIN"]) == sorted({f"CAP_{n}" for n in __import__(
        "workbench.engine.oci.spec", fromlist=["CAPABILITY_BITS"]).CAPABILITY_BITS} - {"CAP_SYS_ADMIN"})
    assert capabilities(["NET_RAW"], ["ALL"]) == ["CAP_NET_RAW"]
    with pytest.raises(InvalidArgument, match='unknown capability "FOO"'):
        capabilities(["FOO"])


@pytest.mark.parametrize(("options", "message"), [
    ({"volumes": ["-bad:/data"]}, 'invalid volume name "-bad"'),
    ({"volumes": [":/data"]}, 'incorrect volume format ":/data"'),
    ({"volumes": ["/nonexistent-wb:/x"]}, "statfs /nonexistent-wb: no such file or directory"),
    ({"volumes": ["/tmp:data"]}, 'invalid container path "data", must be an absolute path'),
    ({"volumes": ["/tmp:/x:ro,rw"]}, "cannot set ro or rw options more than once"),
    ({"volumes": ["/tmp:/x:frob"]}, 'invalid option type "frob"'),
    ({"volumes": ["/tmp:/x:U"]}, 'option "U" is not supported yet'),
    ({"volumes": ["/tmp:/x", "/var:/x/"]}, "/x: duplicate mount destination"),
    ({"volumes": ["/tmp:/"]}, "cannot be a mount destination"),
    ({"tmpfs": ["/t:size=lots"]}, 'invalid option "size=lots"'),
    ({"mounts": ["type=image,destination=/v"]}, "type=image is not supported yet"),
    ({"mounts": ["destination=/v"]}, "give type=bind, type=volume or type=tmpfs"),
    ({"mounts": ["type=bind,src=data,dst=/v"]}, "use type=volume for a named volume"),
    ({"mounts": ["type=bind,src=/tmp,dst=/v,frob=1"]}, 'unknown bind option "frob"'),
    ({"cap_drop": ["NOPE"]}, 'unknown capability "NOPE"'),
])
def test_bad_mounts_are_refused_before_anything_is_made(rt, busybox, options, message):
    before = rt.db.query("SELECT id FROM containers")
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        rt.create_container(busybox, ["true"], **options)
    assert rt.db.query("SELECT id FROM containers") == before
    assert os.listdir(os.path.join(rt.root, "containers")) == [c for (c,) in before]


def test_a_user_mount_replaces_the_default_at_its_destination():
    defaults = [{"destination": "/dev/shm", "type": "tmpfs"}, {"destination": "/proc", "type": "proc"}]
    own = mounts.parse(tmpfs=["/dev/shm:size=1g"], volumes=["/tmp:/a/b/c"])
    merged = mounts.merged(defaults, own)
    assert [m["destination"] for m in merged] == ["/proc", "/dev/shm", "/a/b/c"]  # parents first
    assert merged[1]["options"][0] == "size=1g"


def test_cp_goes_through_bind_mounts_to_the_host_directory(rt, busybox, tmp_path):
    shared, out = tmp_path / "shared", tmp_path / "out"
    shared.mkdir()
    out.mkdir()
    (shared / "in.txt").write_text("host\n")
    (tmp_path / "note.txt").write_text("copied in\n")
    c = rt.run(busybox, ["sleep", "100"], detach=True, volumes=[f"{shared}:/data"])
    c.copy_to(str(tmp_path / "note.txt"), "/data/")
    assert (shared / "note.txt").read_text() == "copied in\n"  # in the host directory, not the layer
    assert c.exec(["cat", "/data/note.txt"]).stdout == b"copied in\n"
    c.copy_from("/data/in.txt", str(out / "in-copy.txt"))
    c.copy_from("/data", str(out))
    assert (out / "in-copy.txt").read_text() == "host\n"
    assert sorted(p.name for p in (out / "data").iterdir()) == ["in.txt", "note.txt"]  # the container's name


def test_privileged_lifts_the_confinement_and_the_default_keeps_it(rt, busybox):
    from workbench.engine.oci.spec import host_devices, privileged_capabilities

    device = next(d["path"] for d in host_devices() if d["path"].rsplit("/", 1)[-1] not in
                  ("null", "zero", "full", "random", "urandom", "tty", "ptmx"))
    script = (f"grep Seccomp: /proc/self/status; test -e {device} && echo device; "
              "mount -t tmpfs none /tmp 2>/dev/null && echo mounted; "
              "echo 1 > /proc/sys/net/ipv4/ip_forward 2>/dev/null && echo sysctl")
    privileged = _run(rt, busybox, script, privileged=True, network="none").split("\n")
    assert privileged[:4] == ["Seccomp:\t0", "device", "mounted", "sysctl"]
    confined = _run(rt, busybox, script, network="none").split("\n")
    assert confined[:1] == ["Seccomp:\t2"] and not {"device", "mounted", "sysctl"} & set(confined)
    c = rt.create_container(busybox, ["true"], privileged=True, cap_drop=["SYS_ADMIN"])
    info = c.inspect()
    assert info["HostConfig"]["Privileged"] is True
    assert set(info["BoundingCaps"]) == set(privileged_capabilities()) - {"CAP_SYS_ADMIN"}
