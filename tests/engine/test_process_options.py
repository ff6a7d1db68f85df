"""The process options of run/create on real containers: umask, supplementary groups, sysctls,
no-new-privileges, seccomp profiles, masked paths and time zones, with Podman's refusals."""

from __future__ import annotations

import json

import pytest

from workbench import CannotRun, InvalidArgument


def _out(rt, busybox, script: str, **options) -> str:
    result = rt.run(busybox, ["sh", "-c", script], remove=True, network="none", **options)
    assert result.exit_code == 0, result.stderr
    return result.stdout.decode()


def test_umask_groups_and_time_zone(rt, busybox):
    assert _out(rt, busybox, "umask; touch /tmp/f; stat -c %a /tmp/f", umask="077") == "0077\n600\n"
    assert _out(rt, busybox, "id -G", group_add=["10", "users", "4242"]) == "0 10 100 4242\n"
    assert _out(rt, busybox, "date +%Z", tz="Asia/Tokyo") == "JST\n"
    c = rt.create_container(busybox, ["true"], umask="0027", tz="UTC", group_add=["10"])
    config, host = c.inspect()["Config"], c.inspect()["HostConfig"]
    assert (config["Umask"], config["Timezone"], host["GroupAdd"]) == ("0027", "UTC", ["10"])
    with pytest.raises(CannotRun, match="unable to find group nogroup-here"):
        rt.run(busybox, ["true"], remove=True, group_add=["nogroup-here"])


def test_sysctls_of_the_containers_own_namespaces(rt, busybox):
    assert _out(rt, busybox, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
                sysctl=["net.ipv4.ip_forward=1", "kernel.shmmni=1024"]) == "1\n1024\n"
    for options, message in (({"sysctl": ["kernel.panic=1"]}, 'sysctl "kernel.panic" is not allowed'),
                             ({"sysctl": ["net.ipv4.ip_forward=1"], "network": "host"}, "shares the network"),
                             ({"sysctl": ["kernel.msgmax=1"], "ipc": "host"}, "shares the IPC"),
                             ({"sysctl": ["nonsense"]}, 'invalid --sysctl "nonsense"'),
                             ({"umask": "999"}, 'invalid --umask "999"'), ({"tz": "../etc/passwd"}, "invalid --tz"),
                             ({"tz": "Mars/Olympus"}, "no such time zone")):
        with pytest.raises(InvalidArgument, match=message):
            rt.create_container(busybox, ["true"], **{"network": "none", **options})
    assert rt.containers() == []


def test_no_new_privileges_seccomp_and_masks(rt, busybox, tmp_path):
    assert _out(rt, busybox, "grep NoNewPrivs /proc/self/status",
                security_opt=["no-new-privileges"]) == "NoNewPrivs:\t1\n"
    assert _out(rt, busybox, "grep Seccomp: /proc/self/status") == "Seccomp:\t2\n"  # the default filter
    assert _out(rt, busybox, "grep Seccomp: /proc/self/status", security_opt=["seccomp=unconfined"]) == "Seccomp:\t0\n"
    profile = tmp_path / "profile.json"  # the containers/Docker format: rules for capabilities the container lacks go
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}))
    assert _out(rt, busybox, "mkdir /x 2>&1; chmod 600 /etc/hostname && echo chmod-ok",
                security_opt=[f"seccomp={profile}"]) == "mkdir: can't create directory '/x': Operation not permitted\n" \
                                                          "chmod-ok\n"
    assert _out(rt, busybox, "cat /etc/hostname; ls /proc/acpi | wc -l",
                security_opt=["mask=/etc/hostname"]) == "0\n"  # masked: empty; and /proc/acpi still masked
    assert _out(rt, busybox, "grep -c ' /proc/sys ' /proc/mounts; true") == "1\n"  # read-only by default
    assert _out(rt, busybox, "grep -c ' /proc/sys ' /proc/mounts; true", security_opt=["unmask=ALL"]) == "0\n"
    profile.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": 3}')
    for option, message in ((f"seccomp={profile}", "needs a defaultAction and syscalls"),
                            (f"seccomp={tmp_path}/none.json", "opening seccomp profile"),
                            ("mask=relative", "mask takes absolute paths"), ("apparmor=my-profile", "invalid"),
                            ("no-new-privileges=maybe", "takes true or false")):
        with pytest.raises(InvalidArgument, match=message):
            rt.create_container(busybox, ["true"], security_opt=[option])


def test_devices_with_their_permissions(rt, busybox):
    assert _out(rt, busybox, "test -e /dev/fuse || echo absent") == "absent\n"  # not without --device
    assert _out(rt, busybox, "stat -c '%t:%T %F' /dev/fuse", devices=["/dev/fuse"]) == "a:e5 character special file\n"
    assert _out(rt, busybox, "ls /dev/net; stat -c '%t:%T' /dev/tunnel", devices=["/dev/net", "/dev/net/tun:/dev/tunnel"]
                ) == "tun\na:c8\n"  # a directory of devices, and one under another name
    # read-only: the device cgroup refuses opening it for writing
    assert _out(rt, busybox, "(: > /dev/fuse) 2>/dev/null && echo wrote || echo refused",
                devices=["/dev/fuse:r"]) == "refused\n"
    assert _out(rt, busybox, "(: > /dev/fuse) 2>/dev/null && echo wrote || echo refused",
                devices=["/dev/fuse:rw"]) == "wrote\n"
    for spec, message in (("/etc/passwd", "is not a device"), ("/dev/fuse:rx", "invalid --device"),
                          ("dev/fuse", "invalid --device")):
        with pytest.raises(InvalidArgument, match=message):
            rt.create_container(busybox, ["true"], devices=[spec])
