"""Podman 4.3's default confinement, checked from inside a real container."""

from __future__ import annotations


def _run(rt, image, script: str) -> str:
    result = rt.run(image, ["sh", "-c", script], remove=True)
    assert result.exit_code == 0, result.stderr
    return result.stdout.decode()


def test_capabilities_seccomp_and_no_new_privs_match_podman(rt, busybox):
    status = dict(line.split(":\t", 1) for line in _run(rt, busybox, "cat /proc/self/status").splitlines()
                  if ":\t" in line)
    assert status["CapEff"].strip() == "00000000800405fb"  # the 11 default capabilities
    assert status["CapBnd"].strip() == "00000000800405fb"
    assert status["CapInh"].strip() == "0000000000000000"
    assert status["CapAmb"].strip() == "0000000000000000"
    assert status["Seccomp"].strip() == "2"
    assert status["NoNewPrivs"].strip() == "0"


def test_non_root_user_has_no_effective_capabilities(rt, busybox):
    status = _run(rt, busybox, "grep -E '^(CapEff|CapBnd|Uid)' /proc/self/status")
    assert "CapEff:\t00000000800405fb" in status
    result = rt.run(busybox, ["grep", "-E", "^(CapEff|CapBnd|Uid)", "/proc/self/status"], remove=True,
                    user="nobody")
    text = result.stdout.decode()
    assert "CapEff:\t0000000000000000" in text
    assert "CapBnd:\t00000000800405fb" in text
    assert "Uid:\t65534" in text


def test_masked_and_read_only_paths(rt, busybox):
    out = _run(rt, busybox, "stat -c '%n %t:%T' /proc/keys /proc/timer_list; "
                             "ls /sys/firmware | wc -l; "
                             "echo x > /proc/sys/kernel/hostname 2>/dev/null && echo writable || echo ro; "
                             "touch /sys/x 2>/dev/null && echo sys-writable || echo sys-ro; "
                             "cat /proc/sys/net/ipv4/ping_group_range")
    lines = out.splitlines()
    assert lines[:2] == ["/proc/keys 1:3", "/proc/timer_list 1:3"]  # bound to /dev/null
    assert lines[2] == "0"  # masked directory: an empty read-only tmpfs
    assert lines[3] == "ro" and lines[4] == "sys-ro"
    assert lines[5].split() == ["0", "0"]


def test_minimal_dev_hostname_and_no_network(rt, busybox):
    c = rt.run(busybox, ["sh", "-c", "ls /dev; echo --; hostname; cat /etc/hostname; echo; ls /sys/class/net"],
               detach=True, name="confined")
    assert c.wait() == 0
    devs, rest = c.logs().split("--\n")
    assert set(devs.split()) == {"fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr",
                                 "stdin", "stdout", "tty", "urandom", "zero"}
    assert rest.split() == [c.id[:12], c.id[:12], "lo"]  # own UTS namespace, an empty network namespace


def test_rlimits_are_inherited_not_raised(rt, busybox):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out = _run(rt, busybox, "ulimit -n; ulimit -Hn")
    assert out.split() == [str(soft), str(hard)]


def test_workdir_through_a_symlink_is_created_inside_the_rootfs(rt, busybox_tar, tmp_path):
    import shutil
    import tarfile

    host_dir = tmp_path / "host-owned"
    host_dir.mkdir()
    hostile = tmp_path / "hostile.tar"
    shutil.copy(busybox_tar, hostile)
    with tarfile.open(hostile, "a") as tar:  # an image whose /w points at a host directory
        link = tarfile.TarInfo("w")
        link.type, link.linkname = tarfile.SYMTYPE, str(host_dir)
        tar.addfile(link)
    rt.import_image(str(hostile), "hostile", changes=["WORKDIR /w/new"])
    result = rt.run("hostile", ["pwd"], remove=True)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"{host_dir}/new\n".encode()
    assert list(host_dir.iterdir()) == []  # created inside the rootfs, never on the host
