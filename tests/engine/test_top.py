"""`top`: a container's processes from its cgroup and /proc, never by running anything inside it."""

from __future__ import annotations

import os
import time

import pytest

from workbench.engine.errors import ContainerStateError, InvalidArgument
from workbench.engine.top import _cgroup_pids, go_duration, _in_cgroup, _inside, _tty

DEFAULT_HEADERS = ("USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND")


def _wait_for(c, args: str, descriptors=None, timeout: float = 10, want: dict | None = None) -> dict[str, str]:
    """The record of the process whose command line is `args`, once it shows up (with `want`'s values)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in c.top(descriptors or ["pid", "user", "args"]).records()
                 if r["args"] == args and all(r[k] == v for k, v in (want or {}).items())]
        if found or time.monotonic() > deadline:
            assert found, f"no process {args!r} in {c.top().records()}"
            return found[0]
        time.sleep(0.05)


def test_default_columns_are_podmans(rt, busybox):
    c = rt.run(busybox, ["sleep", "1000"], detach=True)
    _wait_for(c, "sleep 1000")  # `runc start` returns before runc init has exec'd the command
    table = c.top()
    assert table.headers == DEFAULT_HEADERS
    assert table.descriptors == ("user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args")
    [init] = table.records()
    assert (init["user"], init["pid"], init["ppid"], init["tty"], init["time"], init["args"]) == (
        "root", "1", "0", "?", "0s", "sleep 1000")
    assert init["etime"].endswith("s") and float(init["pcpu"]) >= 0


def test_exec_processes_appear_with_their_args_and_user(rt, busybox):
    c = rt.run(busybox, ["sleep", "1000"], detach=True)
    c.exec_detached(["sleep", "2000"], user="1000")
    c.exec_detached(["sleep", "3000"], user="nobody")
    assert _wait_for(c, "sleep 2000")["user"] == "1000"  # no passwd entry: the number
    assert _wait_for(c, "sleep 3000")["user"] == "nobody"
    by_args = {r["args"]: r for r in c.top(["args", "ppid", "group", "ruser"]).records()}
    assert by_args["sleep 3000"]["group"] == "nogroup" and by_args["sleep 3000"]["ruser"] == "nobody"
    assert by_args["sleep 2000"]["ppid"] == "0"  # its parent (runc) is outside the container


def test_pids_are_the_containers_and_hpid_the_hosts(rt, busybox):
    c = rt.run(busybox, ["sleep", "1000"], detach=True)
    c.exec_detached(["sleep", "2000"])
    _wait_for(c, "sleep 2000")
    rows = {r["args"]: r for r in c.top(["pid", "hpid", "pgid", "args", "huser"]).records()}
    assert rows["sleep 1000"]["pid"] == "1" and rows["sleep 1000"]["pgid"] == "1"
    assert rows["sleep 1000"]["hpid"] == str(c.inspect()["State"]["Pid"])
    exec_row = rows["sleep 2000"]
    assert exec_row["pid"] != exec_row["hpid"]
    with open(f"/proc/{exec_row['hpid']}/status") as f:
        nspid = next(line.split()[1:] for line in f if line.startswith("NSpid:"))
    assert nspid == [exec_row["hpid"], exec_row["pid"]]
    assert exec_row["huser"] == "root"


def test_descriptors_as_words_commas_spaces_and_aix_codes(rt, busybox):
    c = rt.run(busybox, ["sleep", "1000"], detach=True)
    assert c.top(["pid,user", "comm  args", "%C"]).headers == ("PID", "USER", "COMMAND", "COMMAND", "%CPU")
    assert c.top("pid, vsz,,state").descriptors == ("pid", "vsz", "state")
    _wait_for(c, "sleep 1000", ["args", "state"], want={"state": "S"})  # asleep, not just exec'd
    [row] = c.top(["comm", "state", "nice", "seccomp", "capinh", "capamb", "stime", "uid", "huid"]).rows
    assert row[:6] == ("sleep", "S", "0", "filter", "none", "none")
    assert row[6].startswith(time.strftime("%Y-")) and row[7:] == ("0", "0")


def test_capabilities_are_named(rt, busybox):
    c = rt.run(busybox, ["sleep", "1000"], detach=True)
    [[effective, bounding]] = c.top(["capeff", "capbnd"]).rows
    assert effective == bounding
    assert "CHOWN" in effective.split(",") and "SYS_ADMIN" not in effective.split(",")
    assert effective.split(",") == sorted(effective.split(","))


def test_unknown_descriptor_is_an_error_and_never_runs_ps(rt, busybox):
    c = rt.run(busybox, ["sleep", "1000"], detach=True)
    # a `ps` in the container that leaves a mark if anyone runs it (Podman would, here)
    c.exec(["sh", "-c", "rm /bin/ps; printf '#!/bin/sh\\ntouch /ps-ran\\n' > /bin/ps; chmod 755 /bin/ps"])
    with pytest.raises(InvalidArgument) as err:
        c.top(["pid", "bogus"])
    assert "'bogus': unknown descriptor" in str(err.value)
    assert "args, capamb, capbnd" in str(err.value)  # names the supported ones
    c.top(["pid", "args", "user", "tty", "label"])
    assert c.exec(["test", "-e", "/ps-ran"]).exit_code == 1
    c.exec(["ps"])
    assert c.exec(["test", "-e", "/ps-ran"]).exit_code == 0  # the bait works


@pytest.mark.parametrize("state", ["created", "exited"])
def test_a_container_that_is_not_running_has_no_top(rt, busybox, state):
    c = rt.create_container(busybox, ["true"])
    if state == "exited":
        c.start()
        c.wait()
    with pytest.raises(ContainerStateError,
                       match="^top can only be used on running containers: container state improper$"):
        c.top()


def test_paused_container_is_listed(rt, busybox):
    c = rt.run(busybox, ["sleep", "1000"], detach=True)
    c.exec_detached(["sleep", "2000"])
    _wait_for(c, "sleep 2000")
    c.pause()
    try:
        assert sorted(r["args"] for r in c.top().records()) == ["sleep 1000", "sleep 2000"]
    finally:
        c.unpause()


@pytest.mark.parametrize("relative", [False, True])
def test_symlinked_passwd_is_not_followed_to_the_host(rt, busybox, tmp_path, relative):
    bait = tmp_path / "passwd"  # a host file that would name uid 0 and 65534 if top read it
    bait.write_text("hostroot:x:0:0::/:/bin/sh\nhostnobody:x:65534:65534::/:/bin/sh\n")
    link = "../" * 40 + str(bait).lstrip("/") if relative else str(bait)
    c = rt.run(busybox, ["sleep", "1000"], detach=True)
    c.exec_detached(["sleep", "2000"], user="nobody")  # resolved before the files are replaced
    _wait_for(c, "sleep 2000")
    c.exec(["sh", "-c", f"rm /etc/passwd /etc/group && ln -s {link} /etc/passwd && ln -s {link} /etc/group"])
    with open(os.path.join(c.inspect()["GraphDriver"]["Data"]["MergedDir"], "etc/passwd")) as f:
        assert "hostroot" in f.read()  # a naive host-side open would be fooled
    rows = {r["args"]: r for r in c.top(["user", "group", "huser", "args"]).records()}
    assert (rows["sleep 1000"]["user"], rows["sleep 1000"]["group"]) == ("0", "0")
    assert (rows["sleep 2000"]["user"], rows["sleep 2000"]["group"]) == ("65534", "65534")
    assert rows["sleep 1000"]["huser"] == "root"  # host names come from the host's own files


def test_symlinked_etc_stays_inside_the_container(rt, busybox):
    c = rt.run(busybox, ["sleep", "1000"], detach=True)
    c.exec(["sh", "-c", "mv /etc /etc.real && ln -s ../../../../../../../../etc /etc"])
    [[user]] = c.top(["user"]).rows
    assert user == "0"  # /etc resolves to the container's /, which has no passwd


def test_cli_prints_podmans_table(rt, busybox, cli):
    c = rt.run(busybox, ["sleep", "1000"], detach=True, name="web")
    c.exec_detached(["sleep", "2000"], user="nobody")
    _wait_for(c, "sleep 2000")
    out = cli("top", "web")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["USER", "PID", "PPID", "%CPU", "ELAPSED", "TTY", "TIME", "COMMAND"]
    assert lines[0].startswith("USER        PID         PPID        %CPU        ")  # tabwriter: min 12
    assert [line.split()[:3] for line in lines[1:]] == [["root", "1", "0"], ["nobody", lines[2].split()[1], "0"]]
    assert lines[1].endswith(" sleep 1000") and lines[2].endswith(" sleep 2000")
    starts = [i for i in range(len(lines[0])) if lines[0][i] != " " and (i == 0 or lines[0][i - 1] == " ")]
    for line in lines[1:]:  # every column starts where its header does
        assert all(line[i] != " " and line[i - 1] == " " for i in starts[1:])
    custom = cli("top", "web", "pid,hpid", "args")
    assert custom.stdout.splitlines()[0].split() == ["PID", "HPID", "COMMAND"]


def test_cli_escapes_control_characters_in_command_lines(rt, busybox, cli):
    rt.run(busybox, ["sh", "-c", "sleep 1000; :", "fake\nrow\x1b[2J"], detach=True, name="sly")
    out = cli("top", "sly", "args")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1:2] == ["sh -c sleep 1000; : fake?row?[2J"]
    assert "\x1b" not in out.stdout


def test_cli_errors_exit_125(rt, busybox, cli):
    rt.run(busybox, ["sleep", "1000"], detach=True, name="web")
    rt.create_container(busybox, ["true"], name="idle")
    cases = {("top", "nope"): 'no container with name or ID "nope" found',
             ("top", "web", "pid", "bogus"): "'bogus': unknown descriptor",
             ("top", "idle"): "top can only be used on running containers"}
    for args, message in cases.items():
        out = cli(*args)
        assert (out.returncode, out.stdout) == (125, ""), args
        assert out.stderr.startswith("Error: ") and message in out.stderr, out.stderr


@pytest.mark.parametrize("ns, text", [(0, "0s"), (1_500_000, "1.5ms"), (999, "999ns"), (2_000, "2\u00b5s"),
                                      (1_697_289_061, "1.697289061s"), (61 * 10**9, "1m1s"),
                                      (3600 * 10**9, "1h0m0s"), (3723_500_000_000, "1h2m3.5s")])
def test_durations_print_as_go_does(ns, text):
    assert go_duration(ns) == text


def test_cgroup_membership_on_v1_and_v2():
    cgroup = "/workbench_parent/workbench-abc"
    v1 = f"12:pids:{cgroup}\n11:memory:{cgroup}\n1:name=systemd:/user.slice\n0::/\n"
    v2 = f"0::{cgroup}/inner\n"
    assert _in_cgroup(v1, cgroup) and _in_cgroup(v2, cgroup)
    assert not _in_cgroup("12:pids:/workbench_parent/workbench-abcd\n0::/\n", cgroup)


def test_pids_come_from_the_cgroup_and_its_children(tmp_path):
    (tmp_path / "inner").mkdir()
    (tmp_path / "cgroup.procs").write_text("7\n3\n")
    (tmp_path / "inner" / "cgroup.procs").write_text("9\n")
    assert sorted(_cgroup_pids(str(tmp_path))) == [3, 7, 9]


def test_terminals_and_id_maps_decode():
    assert [_tty(0), _tty(136 << 8 | 3), _tty(4 << 8 | 1), _tty(5 << 8 | 1)] == ["?", "pts/3", "tty1", "console"]
    assert _tty((136 << 8) | ((300 & ~0xFF) << 12) | (300 & 0xFF)) == "pts/300"
    assert _inside(100999, [(0, 100000, 65536)]) == 999 and _inside(5, [(0, 100000, 65536)]) == 65534


def test_nothing_is_left_behind_by_top(rt, busybox):
    c = rt.run(busybox, ["sleep", "1000"], detach=True)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        c.top(["pid", "user", "args", "label"])
    assert len(os.listdir("/proc/self/fd")) == before  # every /proc directory fd closed
