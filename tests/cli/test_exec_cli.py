"""`workbench exec`, `attach`, `run -it`, `start -ai`: exit codes, terminals in a real pty, detach keys."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

EXE = os.path.join(os.path.dirname(sys.executable), "workbench")


@pytest.fixture
def box(cli, image):
    proc = cli("run", "-d", "--name", "box", image, "sleep", "1000")
    assert proc.returncode == 0, proc.stderr
    return "box"


class Pty:
    """The CLI on a real terminal: its controlling tty, so raw mode and SIGWINCH are real."""

    def __init__(self, store: dict, *args: str, rows: int = 24, cols: int = 80):
        self.master, slave = os.openpty()
        self.resize(rows, cols)
        self.slave_attrs = termios.tcgetattr(slave)
        self.slave = slave

        def controlling_tty() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        self.proc = subprocess.Popen([EXE, "--root", store["root"], "--runroot", store["runroot"], *args],
                                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                     preexec_fn=controlling_tty)
        self.output = b""

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, marker: bytes, timeout: float = 15.0) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{marker!r} never came; got {self.output!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:
                    break
        assert marker in self.output, self.output
        return self.output

    def wait(self, timeout: float = 15.0) -> int:
        code = self.proc.wait(timeout)
        try:
            while select.select([self.master], [], [], 0.1)[0]:
                self.output += os.read(self.master, 65536)
        except OSError:
            pass
        return code

    def attrs_restored(self) -> bool:
        return termios.tcgetattr(self.slave) == self.slave_attrs

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


#: A shell without line editing: busybox's interactive ash asks the terminal for the cursor position
#: (ESC[6n) and waits for an answer that a test's pty never gives.
REPL = ["sh", "-c", 'while read -r line; do eval "$line"; done']


@pytest.fixture
def pty_cli(store):
    terminals: list[Pty] = []

    def start(*args: str, **size) -> Pty:
        terminals.append(Pty(store, *args, **size))
        return terminals[-1]
    yield start
    for t in terminals:
        t.close()


# -- exec without a terminal ------------------------------------------------------------------
@pytest.mark.parametrize("code", [0, 1, 3])
def test_exec_passes_output_and_exit_code_through(cli, box, code):
    proc = cli("exec", box, "sh", "-c", f"echo out; echo err >&2; exit {code}")
    assert (proc.returncode, proc.stdout, proc.stderr) == (code, "out\n", "err\n")


def test_exec_cannot_run_is_126_not_found_127(cli, box):
    proc = cli("exec", box, "nosuchcmd")
    assert proc.returncode == 127
    assert proc.stdout == ""
    assert proc.stderr.startswith("Error: ") and "executable file not found" in proc.stderr
    assert proc.stderr.count("\n") == 1  # runc's own copy of the message is not repeated
    proc = cli("exec", box, "/etc/passwd")
    assert proc.returncode == 126
    assert "permission denied" in proc.stderr


def test_exec_options_reach_the_process(cli, box):
    proc = cli("exec", "-e", "FOO=bar", "-u", "nobody", "-w", "/etc", box, "sh", "-c", 'echo $FOO; id -u; pwd')
    assert proc.stdout == "bar\n65534\n/etc\n"
    proc = cli("exec", "--privileged", box, "grep", "CapBnd", "/proc/self/status")
    with open("/proc/self/status") as f:
        ours = next(line for line in f if line.startswith("CapBnd"))
    assert proc.stdout == ours


def test_exec_interactive_stdin_from_a_pipe(cli, box):
    data = "line\n" * 50000
    proc = cli("exec", "-i", box, "cat", input=data)
    assert proc.returncode == 0
    assert proc.stdout == data


def test_exec_detached_prints_the_session_id(cli, box):
    proc = cli("exec", "-d", box, "sleep", "30")
    session_id = proc.stdout.strip()
    assert proc.returncode == 0 and len(session_id) == 64
    assert cli("inspect", "--format", "{{.ExecIDs}}", box).stdout.strip() == f"[{session_id}]"


def test_exec_bad_input(cli, image, box):
    proc = cli("exec", "nosuch", "true")
    assert proc.returncode == 125
    assert proc.stderr == 'Error: no container with name or ID "nosuch" found: no such container\n'
    proc = cli("exec", box)
    assert proc.returncode == 125
    assert proc.stderr == "Error: must provide a non-empty command to start an exec session: invalid argument\n"
    proc = cli("exec", "--detach-keys", "ctrl-", box, "true")
    assert proc.returncode == 125 and "invalid detach keys" in proc.stderr
    proc = cli("exec", "-u", "nosuchuser", box, "id")
    # the command cannot be invoked: 126, as podman run (podman exec exits 255 here, an exit code of -1)
    assert proc.returncode == 126 and "unable to find user nosuchuser" in proc.stderr
    proc = cli("exec", "-w", "/nonexistent", box, "pwd")
    assert proc.returncode == 127 and 'workdir "/nonexistent" does not exist' in proc.stderr
    proc = cli("exec", "-w", "/etc/passwd", box, "pwd")
    assert proc.returncode == 126 and "not a usable directory" in proc.stderr
    cli("create", "--name", "idle", image, "true")
    proc = cli("exec", "idle", "true")
    assert proc.returncode == 125
    assert "can only create exec sessions on running containers: container state improper" in proc.stderr
    cli("pause", box)
    proc = cli("exec", box, "true")
    assert proc.returncode == 125 and "container state improper" in proc.stderr


# -- terminals ----------------------------------------------------------------------------------
def test_exec_it_runs_in_a_raw_terminal_and_restores_it(pty_cli, box):
    t = pty_cli("exec", "-it", box, *REPL, rows=31, cols=101)
    t.send(b"tty; stty size\n")
    t.expect(b"31 101")
    t.resize(40, 120)
    t.proc.send_signal(signal.SIGWINCH)  # what the kernel sends the foreground group
    time.sleep(0.3)
    t.send(b"stty size; exit 3\n")
    t.expect(b"40 120")
    assert t.wait() == 3
    assert b"/dev/pts/0" in t.output
    assert t.attrs_restored()


def test_a_burst_of_window_changes_ends_in_the_last_size(pty_cli, box):
    """Signals arriving while a resize is under way (the kernel's and a program's for one change)
    once left the CLI waiting forever on the lock the interrupted resize held."""
    t = pty_cli("exec", "-it", box, *REPL, rows=24, cols=80)
    t.send(b"stty size\n")
    t.expect(b"24 80")
    for rows in range(30, 40):
        t.resize(rows, 100)
        for _ in range(3):
            t.proc.send_signal(signal.SIGWINCH)
    time.sleep(0.5)
    t.send(b"stty size; exit 4\n")
    t.expect(b"39 100")
    assert t.wait() == 4


def test_run_it_and_detach_keys_then_attach(cli, pty_cli, image):
    t = pty_cli("run", "-it", "--name", "shell", image, *REPL)
    t.send(b"echo $((6*7))\n")
    t.expect(b"42\r\n")  # the container's answer: from here on the CLI's terminal is raw
    for key in (b"\x10", b"\x11"):  # ctrl-p, ctrl-q, typed one by one
        t.send(key)
        time.sleep(0.1)
    assert t.wait() == 0
    assert t.attrs_restored()
    assert cli("inspect", "--format", "{{.State.Status}}", "shell").stdout == "running\n"
    a = pty_cli("attach", "--detach-keys", "ctrl-x,x", "shell")
    time.sleep(0.3)
    a.send(b"echo $((6*9)); exit 5\n")
    a.expect(b"54\r\n")
    assert a.wait() == 5
    assert cli("inspect", "--format", "{{.State.ExitCode}}", "shell").stdout == "5\n"


def test_terminal_is_restored_when_the_cli_is_terminated(cli, pty_cli, box):
    t = pty_cli("exec", "-it", box, *REPL)
    t.send(b"echo $((6*7))\n")
    t.expect(b"42\r\n")
    assert not t.attrs_restored()  # raw while the session runs
    t.proc.send_signal(signal.SIGTERM)
    assert t.wait() == 128 + signal.SIGTERM
    assert t.attrs_restored()


def test_start_ai_attaches_stdin_before_starting(cli, pty_cli, image):
    assert cli("create", "-it", "--name", "later", image, "sh", "-c", "read x; echo got $x; exit 4").returncode == 0
    t = pty_cli("start", "-ai", "later")
    time.sleep(0.3)
    t.send(b"value\r")
    t.expect(b"got value")
    assert t.wait() == 4


# -- attach and run without a terminal ----------------------------------------------------------
def test_run_interactive_with_piped_stdin(cli, image):
    proc = cli("run", "-i", "--rm", image, "sh", "-c", "cat; exit 2", input="piped\n")
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "piped\n", "")


def test_run_tty_without_a_terminal_warns_like_podman(cli, image):
    proc = cli("run", "-t", "--rm", image, "tty", input="")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "/dev/pts/0\n", "")  # text mode: \r\n read as \n
    proc = cli("run", "-it", "--rm", image, "sh", "-c", "exit 3", input="")
    assert proc.returncode == 3
    assert "The input device is not a TTY. The --tty and --interactive flags might not work properly" in proc.stderr


def test_run_forwards_signals_to_the_container(store, cli, image):
    proc = subprocess.Popen([EXE, "--root", store["root"], "--runroot", store["runroot"], "run", "--name", "trap",
                             image, "sh", "-c", "trap 'echo caught; exit 7' TERM; echo armed; sleep 100 & wait"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"armed\n"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert out == b"caught\n"
    assert proc.returncode == 7


def test_signals_are_forwarded_one_by_one_in_order(store, image):
    """Through the relay thread: each signal reaches the container, in the order sent."""
    script = "trap 'echo usr1' USR1; trap 'echo usr2' USR2; trap 'echo done; exit 5' TERM; echo armed; " \
             "while :; do sleep 0.05; done"
    proc = subprocess.Popen([EXE, "--root", store["root"], "--runroot", store["runroot"], "run", image, "sh", "-c",
                             script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"armed\n"
    for number in (signal.SIGUSR1, signal.SIGUSR2) * 3:
        proc.send_signal(number)
        time.sleep(0.15)  # the shell runs one trap per wake-up of its loop
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert out == b"usr1\nusr2\n" * 3 + b"done\n" and proc.returncode == 5


def test_attach_no_stdin_streams_output_until_exit(cli, image):
    cli("run", "-d", "--name", "ticker", image, "sh", "-c", "sleep 0.5; echo one; echo two >&2; exit 3")
    proc = cli("attach", "--no-stdin", "ticker")
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "one\n", "two\n")


def test_attach_bad_input(cli, image):
    assert cli("attach", "nosuch").returncode == 125
    cli("run", "--name", "done", image, "true")
    proc = cli("attach", "done")
    assert (proc.returncode, proc.stderr) == (125, "Error: you can only attach to running containers\n")
    cli("create", "--name", "fresh", image, "true")
    assert cli("attach", "fresh").stderr == "Error: you can only attach to running containers\n"
    proc = cli("run", "--detach-keys", "bogus", "--rm", image, "true")
    assert proc.returncode == 125 and "invalid detach keys" in proc.stderr
