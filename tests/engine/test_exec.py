"""Exec sessions and attach with real containers: streams, terminals, users, exit codes, no leftovers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time

import pytest

from workbench import (ContainerState, ContainerStateError, InvalidArgument, NoSuchExecSession, OCIRuntimeNotFound,
                       OCIRuntimePermissionDenied)

S = ContainerState


@pytest.fixture
def ctr(rt, busybox):
    """A running busybox container."""
    return rt.run(busybox, ["sleep", "1000"], detach=True, name="box")


def _sessions_left(c) -> list[str]:
    exec_dir = os.path.join(c.run_dir, "exec")
    return os.listdir(exec_dir) if os.path.isdir(exec_dir) else []


def _conmons_of(session_id: str) -> str:
    return subprocess.run(["pgrep", "-f", f"conmon.*{session_id}"], capture_output=True, text=True).stdout


def _read_until(session, marker: bytes, timeout: float = 10.0) -> bytes:
    """Output up to and including `marker` (the terminal has answered before we go on)."""
    out = b""
    deadline = time.monotonic() + timeout
    while marker not in out:
        chunk = session.read(timeout=max(0.0, deadline - time.monotonic()))
        assert chunk is not None, f"{marker!r} never came; got {out!r}"
        out += chunk[1]
    return out


def _wait_until(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- exec(): collected output ------------------------------------------------------------
@pytest.mark.parametrize("code", [0, 1, 3])
def test_exec_keeps_stdout_stderr_apart_and_returns_the_exit_code(ctr, code):
    result = ctr.exec(["sh", "-c", f"echo out; echo err >&2; exit {code}"])
    assert result == (code, b"out\n", b"err\n")


def test_exec_killed_by_a_signal_exits_128_plus_the_signal(ctr):
    assert ctr.exec(["sh", "-c", "kill -9 $$"]).exit_code == 137


def test_exec_stdin_round_trips_1_5_mb_byte_exact(ctr):
    data = os.urandom(1536 * 1024)
    result = ctr.exec(["cat"], stdin=data)
    assert result.exit_code == 0
    assert result.stdout == data


def test_exec_missing_and_non_executable_commands_are_127_and_126(ctr):
    with pytest.raises(OCIRuntimeNotFound) as missing:
        ctr.exec(["/no/such/cmd"])
    assert missing.value.exit_code == 127
    with pytest.raises(OCIRuntimePermissionDenied) as denied:
        ctr.exec(["/etc/passwd"])
    assert denied.value.exit_code == 126
    assert _sessions_left(ctr) == [] and ctr.exec_ids() == []


def test_exec_env_workdir_and_home(ctr):
    result = ctr.exec(["sh", "-c", 'echo "$FOO $BAR $HOME"; pwd'], env={"FOO": "foo", "BAR": "b a r"}, workdir="/etc")
    assert result.stdout == b"foo b a r /root\n/etc\n"
    assert b"TERM=xterm" in ctr.exec(["env"]).stdout


def test_exec_user_from_the_containers_own_account_files(ctr):
    ctr.exec(["sh", "-c", "echo 'alice:x:1000:1000:Alice:/home/alice:/bin/sh' >> /etc/passwd; "
                          "echo 'staff:x:50:alice' >> /etc/group; echo 'alice:x:1000:' >> /etc/group"])
    assert ctr.exec(["id"], user="alice").stdout == b"uid=1000(alice) gid=1000(alice) groups=50(staff),1000(alice)\n"
    assert ctr.exec(["sh", "-c", "echo $HOME"], user="alice").stdout == b"/home/alice\n"
    assert ctr.exec(["id", "-u"], user="1000:50").stdout == b"1000\n"
    assert ctr.exec(["id", "-g"], user="alice:staff").stdout == b"50\n"
    assert ctr.exec(["id", "-u"], user="12345").stdout == b"12345\n"
    assert ctr.exec(["id", "-un"], user="nobody").stdout == b"nobody\n"


def _cap_eff(c, **options) -> int:
    status = c.exec(["cat", "/proc/self/status"], **options).stdout.decode()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)


def test_exec_capabilities_default_non_root_and_privileged(ctr):
    assert _cap_eff(ctr) == 0x800405FB  # Podman's 11 default capabilities
    assert _cap_eff(ctr, user="nobody") == 0
    with open("/proc/self/status") as f:
        ours = int(next(line.split()[1] for line in f if line.startswith("CapBnd:")), 16)
    assert _cap_eff(ctr, privileged=True) == ours


def test_exec_bad_input_is_a_clear_error_and_leaves_nothing(ctr):
    with pytest.raises(InvalidArgument, match="unable to find user nosuchuser"):
        ctr.exec(["id"], user="nosuchuser")
    with pytest.raises(OCIRuntimeNotFound, match='workdir "/nonexistent" does not exist'):
        ctr.exec(["pwd"], workdir="/nonexistent")
    with pytest.raises(InvalidArgument, match="must be an absolute path"):
        ctr.exec(["pwd"], workdir="relative")
    with pytest.raises(InvalidArgument, match="non-empty list"):
        ctr.exec([])
    with pytest.raises(InvalidArgument, match="non-empty list"):
        ctr.exec("echo hi")  # type: ignore[arg-type]
    assert _sessions_left(ctr) == [] and ctr.exec_ids() == []


@pytest.mark.parametrize("pause", [True, False])
def test_exec_needs_a_running_container(rt, busybox, ctr, pause):
    if pause:
        ctr.pause()
    else:
        ctr.stop(timeout=0)
    with pytest.raises(ContainerStateError, match="can only create exec sessions on running containers"):
        ctr.exec(["true"])
    with pytest.raises(ContainerStateError):
        ctr.exec_session(["sh"])
    created = rt.create_container(busybox, ["sleep", "10"])
    with pytest.raises(ContainerStateError):
        created.exec(["true"])


def test_many_concurrent_execs_on_one_container(ctr):
    results: dict[int, object] = {}

    def one(i: int) -> None:
        if i % 2:
            results[i] = ctr.exec(["sh", "-c", f"echo {i}; exit {i % 7}"])
        else:
            with ctr.exec_session(["sh", "-c", f"echo {i}; exit {i % 7}"], tty=False, stdin=False) as s:
                out, _ = s.output()
                results[i] = (s.wait(), out, b"")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert {i: tuple(r) for i, r in results.items()} == {i: (i % 7, f"{i}\n".encode(), b"") for i in range(16)}
    assert _sessions_left(ctr) == [] and ctr.exec_ids() == []


# -- sessions --------------------------------------------------------------------------------
def test_session_without_tty_streams_both_streams_and_stdin(ctr):
    with ctr.exec_session(["sh", "-c", "echo out; echo err >&2; cat; exit 4"], tty=False) as s:
        s.write(b"from stdin\n")
        s.close_stdin()
        chunks = list(s)
        assert s.wait() == 4
    joined = {stream: b"".join(d for st, d in chunks if st == stream) for stream in ("stdout", "stderr")}
    assert joined == {"stdout": b"out\nfrom stdin\n", "stderr": b"err\n"}
    assert s.exit_code == 4


def test_session_stdin_round_trips_1_5_mb(ctr):
    data = os.urandom(1536 * 1024)
    with ctr.exec_session(["cat"], tty=False) as s:
        writer = threading.Thread(target=lambda: (s.write(data), s.close_stdin()))
        writer.start()
        stdout, stderr = s.output()
        writer.join()
        assert s.wait() == 0
    assert stdout == data and stderr == b""


def test_try_write_sends_what_needs_no_wait_and_never_waits(ctr):
    from workbench.engine.attach import STDIN_CHUNK

    with ctr.exec_session(["sh", "-c", "sleep 30"], tty=False) as s:  # a process that reads nothing
        assert s.try_write(b"a small write\n")
        assert not s.try_write(b"x" * (STDIN_CHUNK + 1)), "larger than one message: refused, not split"
        started, results = time.monotonic(), []
        while time.monotonic() - started < 10 and (not results or results[-1]):
            results.append(s.try_write(b"y" * STDIN_CHUNK))  # fills conmon's buffers, then says no
        assert results[-1] is False and time.monotonic() - started < 10
        s.signal(9)


def test_tty_session_has_a_terminal_and_follows_resizes(ctr):
    with ctr.exec_session(["sh"], tty=True, size=(30, 100)) as s:
        s.write(b"tty; stty size\n")
        before = _read_until(s, b"30 100\r\n")
        s.resize(42, 132)
        time.sleep(0.2)  # conmon applies the resize from its own loop
        s.write(b"stty size; exit 3\n")
        out, err = s.output()
        assert s.wait() == 3
    assert err == b""
    assert b"/dev/pts/0\r\n" in before
    assert b"42 132\r\n" in out


def test_tty_exec_collects_output_with_crlf(ctr):
    result = ctr.exec(["sh", "-c", "tty; exit 2"], tty=True)
    assert result == (2, b"/dev/pts/0\r\n", b"")


def test_resize_write_and_signals_on_the_wrong_kind_of_session_are_clear_errors(ctr):
    with ctr.exec_session(["sleep", "30"], tty=False, stdin=False) as s:
        with pytest.raises(InvalidArgument, match="has no terminal"):
            s.resize(24, 80)
        with pytest.raises(InvalidArgument, match="has no stdin"):
            s.write(b"x")
        s.signal("TERM")
        assert s.wait(timeout=10) == 143
    with ctr.exec_session(["sh"], tty=True) as s:
        with pytest.raises(InvalidArgument, match="invalid terminal size"):
            s.resize(0, 80)
        s.signal(9)
        assert s.wait(timeout=10) == 137


def test_slow_reader_still_gets_every_byte(ctr):
    ctr.exec(["sh", "-c", "head -c 3000000 /dev/urandom > /tmp/blob"])
    expected = ctr.exec(["cat", "/tmp/blob"]).stdout
    with ctr.exec_session(["cat", "/tmp/blob"], tty=False, stdin=False) as s:
        time.sleep(1.0)  # the process finishes writing long before we read anything
        assert s.exit_code == 0
        got = b"".join(d for _, d in s)
        assert s.wait() == 0
    assert got == expected


def test_on_output_callback_and_read_timeout(ctr):
    seen: list[tuple[str, bytes]] = []
    with ctr.exec_session(["sh", "-c", "echo a; sleep 0.3; echo b >&2"], tty=False, stdin=False,
                          on_output=lambda stream, data: seen.append((stream, data))) as s:
        assert s.read(timeout=0.05) is None  # callbacks get the chunks, the queue stays empty
        assert s.wait() == 0
    assert seen == [("stdout", b"a\n"), ("stderr", b"b\n")]


def test_async_reading_does_not_block_the_event_loop(ctr):
    async def main() -> tuple[bytes, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1
        task = asyncio.ensure_future(ticker())
        s = ctr.exec_session(["sh", "-c", "sleep 0.3; echo late"], tty=False, stdin=False)
        out = b"".join([data async for _, data in s])
        task.cancel()
        s.wait()
        s.close()
        return out, ticks
    out, ticks = asyncio.run(main())
    assert out == b"late\n"
    assert ticks >= 10  # the loop kept running while the session waited


def test_sessions_leave_no_bundles_processes_or_records(ctr):
    ids = []
    for tty in (False, True):
        with ctr.exec_session(["sh", "-c", "echo hi"], tty=tty, stdin=False) as s:
            assert s.wait() == 0
            ids.append(s.id)
    assert _sessions_left(ctr) == []
    assert ctr.exec_ids() == []
    for session_id in ids:
        assert _conmons_of(session_id) == ""


def test_failed_session_starts_leave_nothing_half_open(ctr):
    for tty in (False, True):
        with pytest.raises(OCIRuntimeNotFound):
            ctr.exec_session(["/no/such/cmd"], tty=tty)
        with pytest.raises(OCIRuntimePermissionDenied):
            ctr.exec_session(["/etc/passwd"], tty=tty)
    with pytest.raises(OCIRuntimeNotFound):
        ctr.exec_detached(["/no/such/cmd"])
    assert _sessions_left(ctr) == [] and ctr.exec_ids() == []


def test_closing_a_session_detaches_and_the_process_goes_on(ctr):
    s = ctr.exec_session(["sh", "-c", "sleep 0.5; touch /tmp/done"], tty=False)
    s.close()
    with pytest.raises(InvalidArgument, match="stdin is closed"):
        s.write(b"too late")
    assert s.id in ctr.exec_ids()
    assert _wait_until(lambda: ctr.exec(["test", "-e", "/tmp/done"]).exit_code == 0)
    assert _wait_until(lambda: ctr.exec_inspect(s.id)["Running"] is False)
    assert _sessions_left(ctr) == []


# -- detached exec ---------------------------------------------------------------------------
def test_detached_exec_is_recorded_and_inspectable(ctr):
    session_id = ctr.exec_detached(["sh", "-c", "sleep 0.3; exit 5"])
    assert session_id in ctr.exec_ids()
    assert session_id in ctr.inspect()["ExecIDs"]
    info = ctr.exec_inspect(session_id[:12])
    assert info["Running"] is True and info["Pid"] > 0
    assert info["ProcessConfig"] == {"arguments": ["-c", "sleep 0.3; exit 5"], "entrypoint": "sh",
                                     "privileged": False, "tty": False, "user": ""}
    assert _wait_until(lambda: not ctr.exec_inspect(session_id)["Running"])
    assert ctr.exec_inspect(session_id)["ExitCode"] == 5
    assert _sessions_left(ctr) == []
    with pytest.raises(NoSuchExecSession):
        ctr.exec_inspect("0123456789ab")


def test_stopping_the_container_ends_and_forgets_its_exec_sessions(ctr):
    session_id = ctr.exec_detached(["sleep", "1000"])
    pid = ctr.exec_inspect(session_id)["Pid"]
    ctr.stop(timeout=0)
    ctr.wait()
    assert not os.path.exists(f"/proc/{pid}")
    assert ctr.inspect()["ExecIDs"] == []
    assert ctr.rt.db.exec_sessions(ctr.id) == []
    assert _sessions_left(ctr) == []
    assert _conmons_of(session_id) == ""


# -- attach to the main process ------------------------------------------------------------------
def test_attach_before_start_loses_no_output(rt, busybox):
    c = rt.create_container(busybox, ["sh", "-c", "echo first; echo second >&2; exit 6"])
    with c.attach_session(start=True) as s:
        out, err = s.output()
        assert s.wait() == 6
    assert (out, err) == (b"first\n", b"second\n")
    assert c.state == S.EXITED


def test_detach_and_reattach_with_output_continuing(rt, busybox):
    c = rt.run(busybox, ["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.05; done"], detach=True)
    first = c.attach_session()
    got1 = first.read(timeout=5)
    first.close()
    assert got1 is not None and got1[0] == "stdout"
    assert c.state == S.RUNNING  # detaching leaves the container running
    second = c.attach_session()
    numbers = []
    while len(numbers) < 3:
        chunk = second.read(timeout=5)
        assert chunk is not None
        numbers += [int(n) for n in chunk[1].split()]
    second.close()
    assert numbers[0] > int(got1[1].split()[0])  # output went on while nobody was attached
    assert numbers == sorted(numbers)


def test_attach_stdin_of_an_interactive_container(rt, busybox):
    c = rt.create_container(busybox, ["sh", "-c", "read line; echo got $line; exit 9"], stdin=True)
    with c.attach_session(start=True) as s:
        assert s.stdin
        s.write(b"hello\n")
        out, _ = s.output()
        assert s.wait() == 9
    assert out == b"got hello\n"


def test_attach_tty_container_and_resize(rt, busybox):
    c = rt.create_container(busybox, ["sh"], tty=True)
    with c.attach_session(start=True, size=(20, 70)) as s:
        assert s.tty and s.stdin
        s.write(b"stty size\n")
        _read_until(s, b"20 70\r\n")
        s.resize(33, 99)
        time.sleep(0.2)
        s.write(b"stty size; exit 4\n")
        out, _ = s.output()
        assert s.wait() == 4
    assert b"33 99\r\n" in out
    assert c.inspect()["Config"]["Tty"] is True


def test_attach_without_open_stdin_refuses_writes(rt, busybox):
    c = rt.run(busybox, ["sleep", "100"], detach=True)
    with c.attach_session() as s:
        assert not s.stdin
        with pytest.raises(InvalidArgument, match="has no stdin"):
            s.write(b"x")


def test_attach_needs_a_created_or_running_container(rt, busybox):
    c = rt.run(busybox, ["true"], detach=True)
    c.wait()
    with pytest.raises(ContainerStateError, match="can only attach to created or running containers"):
        c.attach_session()
