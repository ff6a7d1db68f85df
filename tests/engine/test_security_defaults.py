"""Podman 4.3's default confinement, checked from inside a real container."""

from __future__ import annotations

import pytest


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


def _static_elf(code: bytes) -> bytes:
    """A minimal static x86-64 ELF executable that runs `code` (no libc, no sections)."""
    import struct

    base, headers = 0x400000, 64 + 56
    size = headers + len(code)
    elf = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 2, 0x3E, 1, base + headers, 64, 0, 0,
                      64, 56, 1, 0, 0, 0)
    program = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return elf + program + code


# mov eax, NR; <call>; mov edi, eax; mov eax, 60 (exit); syscall: exits with the call's result
_EXIT_WITH_RESULT = bytes.fromhex("89c7b83c0000000f05")
I386_GETPID = bytes.fromhex("b814000000cd80") + _EXIT_WITH_RESULT  # int 0x80, i386 getpid (20)
X32_GETPID = bytes.fromhex("b8270000400f05") + _EXIT_WITH_RESULT  # syscall, 0x40000000 | getpid (39)


def test_the_filter_lets_32_bit_programs_run_and_leaves_x32_out_where_the_kernel_has_none(rt, busybox, tmp_path):
    import os
    import platform

    from workbench.engine.oci.seccomp import _x32_syscalls_run, default_seccomp

    if platform.machine() != "x86_64":
        pytest.skip(f"i386 and x32 system calls are x86-64 ABIs; this machine is {platform.machine()}")
    for name, code in (("i386", I386_GETPID), ("x32", X32_GETPID)):
        (tmp_path / name).write_bytes(_static_elf(code))
        os.chmod(tmp_path / name, 0o755)
    i386 = rt.run(busybox, ["/t/i386"], remove=True, volumes=[f"{tmp_path}:/t:ro"])
    assert i386.exit_code == 1, "an i386 getpid in the container should return its pid, 1"
    x32 = rt.run(busybox, ["/t/x32"], remove=True, volumes=[f"{tmp_path}:/t:ro"])
    arches = default_seccomp(["CAP_CHOWN"])["architectures"]
    if _x32_syscalls_run():
        assert "SCMP_ARCH_X32" in arches and x32.exit_code == 1
    else:  # no x32 on this kernel: the filter leaves it out, and a process that tries is killed
        assert arches == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
        assert x32.exit_code == 128 + 31, "an x32 call should be killed with SIGSYS by the filter"
