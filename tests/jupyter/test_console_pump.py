"""The Console widget's kernel half without a browser: a fake view drives it through the custom-message
handler (`_handle_custom_msg`) and a recording `send`, against real containers and exec sessions."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from workbench.widgets import console as console_mod
from workbench.widgets.console import HIGH_WATER, OUT_CHUNK, REPLAY, Console


class View:
    """A fake browser view: records what the kernel sends and acknowledges it (when asked)."""

    def __init__(self, widget: Console, name: str = "view-1", *, auto_ack: bool = True):
        self.widget, self.name, self.auto_ack = widget, name, auto_ack
        self.messages: list[tuple[dict, bytes, float]] = []
        self.lock = threading.Lock()
        widget.send = self._record  # instance attribute: the pump thread calls it

    def _record(self, content: dict, buffers: list | None = None) -> None:
        data = bytes(buffers[0]) if buffers else b""
        with self.lock:
            self.messages.append((content, data, time.monotonic()))
        if self.auto_ack and data and content.get("view") in (None, self.name):
            self.msg({"type": "ack", "n": len(data)})

    def msg(self, content: dict, buffers: list | None = None) -> None:
        self.widget._handle_custom_msg({**content, "view": content.get("view", self.name)}, buffers or [])

    def ready(self, rows: int = 24, cols: int = 80) -> "View":
        self.msg({"type": "ready", "rows": rows, "cols": cols})
        return self

    def type(self, text: str) -> None:
        self.msg({"type": "in"}, [memoryview(text.encode())])

    def output(self) -> bytes:
        with self.lock:
            return b"".join(data for content, data, _ in self.messages
                            if content.get("type") == "out" and content.get("view") in (None, self.name))

    def sent_bytes(self) -> int:
        with self.lock:
            return sum(len(data) for _, data, _ in self.messages)

    def wait_for(self, needle: bytes, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if needle in out:
                return out
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} not in the console's output after {timeout} s:\n{self.output()[-2000:]!r}")

    def size_becomes(self, rows: int, cols: int, timeout: float = 10) -> None:
        """Ask the shell its terminal size until it answers rows x cols: a resize travels to
        conmon on its own (the ctl fifo), apart from the input, and may land a little after it."""
        needle = f"{rows} {cols}\r\n".encode()
        deadline = time.monotonic() + timeout
        while True:
            self.type("stty size\r")
            try:
                self.wait_for(needle, timeout=1)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise


def wait_until(predicate, timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def box(rt, busybox):
    return rt.run(busybox, ["sleep", "1000"], detach=True, name="box")


@pytest.fixture
def consoles():
    """Consoles made by a test; closed afterwards even when the test fails."""
    made: list[Console] = []

    def make(*args, **kwargs) -> Console:
        widget = Console(*args, **kwargs)
        made.append(widget)
        return widget
    yield make
    for widget in made:
        widget.close()


def _conmons_of(session_id: str) -> list[str]:
    return subprocess.run(["pgrep", "-f", f"conmon.*{session_id}"], capture_output=True, text=True).stdout.split()


def test_typed_input_reaches_the_shell_and_its_output_comes_back(box, consoles):
    view = View(consoles(box, "sh")).ready()
    view.type("echo hello-$((6*7))\r")
    view.wait_for(b"hello-42\r\n")


def test_input_to_a_process_not_reading_yet_never_blocks_the_handler_and_keeps_its_order(box, consoles):
    import hashlib

    # raw mode: bytes pass unchanged. The shell reads nothing for a second while 300 KB arrive
    # (more than conmon buffers, so input queues); then it reads while more keeps coming.
    view = View(consoles(box, ["sh", "-c", "stty raw -echo; sleep 1; head -c 600000 | md5sum"])).ready()
    data = b"".join(b"%09d\n" % i for i in range(60000))
    slowest = 0.0
    for start in range(0, len(data), 1000):
        began = time.monotonic()
        view.msg({"type": "in"}, [memoryview(data[start:start + 1000])])
        slowest = max(slowest, time.monotonic() - began)
        if start >= len(data) // 2:
            time.sleep(0.005)
    assert slowest < 0.5, f"a message handler waited {slowest:.2f} s for the process"
    view.wait_for(hashlib.md5(data).hexdigest().encode(), timeout=20)


def test_the_cell_gets_the_console_at_once_and_it_runs(box, consoles):
    started = time.monotonic()
    widget = consoles(box, "sh")
    assert time.monotonic() - started < 5
    assert widget.status == "running" and widget.tty and widget.session is not None
    assert widget.title == "box \u2014 sh"


def test_output_arrives_in_coalesced_binary_messages(box, consoles):
    view = View(consoles(box, "sh")).ready()
    view.type("head -c 3000000 /dev/zero | tr '\\000' x; echo; echo end-$((1+1))\r")
    view.wait_for(b"end-2", timeout=30)
    sizes = [len(data) for content, data, _ in view.messages if content.get("type") == "out" and data]
    # conmon hands over at most 8 KiB at a time; the pump merges them into messages of up to 64 KiB
    assert max(sizes) <= OUT_CHUNK
    assert max(sizes) > 8192
    assert len(sizes) < 3_000_000 / 16384


def test_small_output_is_sent_without_waiting_for_a_batch(box, consoles):
    view = View(consoles(box, "sh")).ready()
    view.wait_for(b"# ")
    time.sleep(0.1)
    before = len(view.messages)
    started = time.monotonic()
    view.type("x")  # the shell echoes one byte
    wait_until(lambda: len(view.messages) > before, 5, "the echo")
    assert time.monotonic() - started < 0.2


def test_a_resize_changes_the_terminal_size_in_the_container(box, consoles):
    view = View(consoles(box, "sh")).ready(rows=30, cols=100)
    view.size_becomes(30, 100)
    view.msg({"type": "resize", "rows": 41, "cols": 133})
    view.size_becomes(41, 133)


def test_the_smallest_of_two_views_sizes_the_terminal(box, consoles):
    view = View(consoles(box, "sh"), "first").ready(rows=30, cols=120)
    view.msg({"type": "ready", "view": "second", "rows": 25, "cols": 90})
    view.size_becomes(25, 90)


def test_without_acks_output_pauses_at_the_high_water_mark_and_resumes(box, consoles, monkeypatch):
    monkeypatch.setattr(console_mod, "ACK_TIMEOUT", 60.0)
    widget = consoles(box, "sh")
    view = View(widget, auto_ack=False).ready()
    view.type("head -c 4000000 /dev/zero | tr '\\000' y; echo; echo end-$((1+1))\r")
    wait_until(lambda: view.sent_bytes() >= HIGH_WATER - OUT_CHUNK, 10, "the first MiB")
    time.sleep(1.0)
    paused_at = view.sent_bytes()
    time.sleep(0.5)
    assert view.sent_bytes() == paused_at, "the pump kept sending without acknowledgements"
    assert paused_at <= HIGH_WATER + OUT_CHUNK
    assert b"end-2" not in view.output()
    view.auto_ack = True
    view.msg({"type": "ack", "n": paused_at})
    view.wait_for(b"end-2", timeout=30)
    assert view.sent_bytes() > 4_000_000


def test_a_view_that_stops_acknowledging_is_dropped_and_the_session_goes_on(box, consoles, monkeypatch):
    monkeypatch.setattr(console_mod, "ACK_TIMEOUT", 0.5)
    widget = consoles(box, "sh")
    view = View(widget, auto_ack=False).ready()
    view.type("head -c 3000000 /dev/zero | tr '\\000' z; echo; echo end-$((1+1))\r")
    # the session finishes although nobody acknowledges; a view that comes back gets a fresh replay
    wait_until(lambda: b"end-2" in widget._ring, 30, "the end of the output in the replay ring")
    latecomer = View(widget, "latecomer").ready()
    replay = latecomer.wait_for(b"end-2")
    # what the ring replayed ends at end-2 (the shell's next prompt may come live after it)
    assert len(replay[:replay.index(b"end-2") + len(b"end-2\r\n")]) <= REPLAY


def test_a_console_without_a_view_never_stalls_and_keeps_bounded_output(box, consoles):
    widget = consoles(box, ["sh", "-c", "head -c 5000000 /dev/zero | tr '\\000' q; echo; echo end-$((1+1)); sleep 100"])
    sent: list = []
    widget.send = lambda content, buffers=None: sent.append(content)
    wait_until(lambda: b"end-2" in widget._ring, 30, "the end of the output without a view")
    assert sent == []  # nobody to send to
    assert len(widget._ring) <= REPLAY and len(widget._pending) <= 4 * REPLAY
    view = View(widget, "late").ready()
    view.wait_for(b"end-2")


def test_closing_the_widget_ends_the_exec_session(box, consoles):
    widget = consoles(box, "sh")
    view = View(widget).ready()
    view.type("echo started\r")
    view.wait_for(b"started")
    session = widget.session
    assert _conmons_of(session.id)
    widget.close()
    assert widget.status == "closed"
    assert not os.path.exists(f"/proc/{session.pid}")
    wait_until(lambda: not _conmons_of(session.id), 5, "the exec session's conmon to exit")
    assert box.exec_ids() == []
    assert box.state.value == "running"  # only the session ended


def test_kernel_exit_ends_every_console_session(box, consoles):
    widgets = [consoles(box, "sh"), consoles(box, ["sh", "-c", "sleep 300"])]
    sessions = [w.session for w in widgets]
    console_mod._close_all()  # what atexit runs when the kernel shuts down
    for session in sessions:
        assert not os.path.exists(f"/proc/{session.pid}")
        wait_until(lambda: not _conmons_of(session.id), 5, "the conmon of an exec session to exit")
    assert box.exec_ids() == []


def test_several_consoles_at_once_keep_their_own_streams(box, consoles):
    views = [View(consoles(box, "sh"), f"view-{i}").ready() for i in range(3)]
    for i, view in enumerate(views):
        view.type(f"echo console-$((100+{i}))\r")
    for i, view in enumerate(views):
        out = view.wait_for(f"console-{100 + i}\r\n".encode())
        assert all(f"console-{100 + j}\r\n".encode() not in out for j in range(3) if j != i)


def test_exit_is_shown_and_reconnect_starts_a_new_session(box, consoles):
    widget = consoles(box, "sh")
    view = View(widget).ready()
    view.type("exit 3\r")
    view.wait_for(b"[session ended (exit code 3)]")
    wait_until(lambda: widget.status == "session ended (exit code 3)", 5, "the status")
    first = widget.session
    view.msg({"type": "reconnect"})
    wait_until(lambda: widget.status == "running" and widget.session is not first, 10, "a new session")
    view.type("echo again-$((2*3))\r")
    view.wait_for(b"again-6")


def test_a_container_removed_while_the_console_is_open_is_reported(box, consoles):
    widget = consoles(box, "sh")
    view = View(widget).ready()
    view.wait_for(b"# ")
    box.remove(force=True, timeout=0)
    view.wait_for(b"[container removed]")
    wait_until(lambda: widget.status == "container removed", 5, "the status")


def test_a_stopped_container_ends_the_session_with_a_plain_message(box, consoles):
    widget = consoles(box, "sh")
    view = View(widget).ready()
    view.wait_for(b"# ")
    box.stop(timeout=0)
    view.wait_for(b"[session ended: container exited]")


def test_attach_console_talks_to_the_main_process_and_close_detaches(rt, busybox, consoles):
    c = rt.run(busybox, ["sh"], detach=True, name="main", tty=True, stdin=True)
    widget = consoles(c)
    assert widget.command is None and widget.title == "main \u2014 attach"
    view = View(widget).ready(rows=20, cols=70)
    view.type("echo main-$((5*5))\r")
    view.wait_for(b"main-25\r\n")
    view.size_becomes(20, 70)
    widget.close()
    assert c.state.value == "running"  # detached, not ended


# -- the magics that open a console ------------------------------------------------------------
def _magic(ip, line):
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = ip.run_line_magic("ctr", line)
    return result, captured


@pytest.mark.parametrize("flags", ["-it", "-t -i", "--interactive --tty"])
def test_exec_it_magic_returns_a_console_at_once(ip, flags):
    _magic(ip, "run -d --name web --network none bb sleep 100")
    started = time.monotonic()
    console, out = _magic(ip, f"exec {flags} -e GREETING=hi web sh")
    assert time.monotonic() - started < 5
    assert isinstance(console, Console), out.stderr
    assert console.status == "running" and ip.user_ns["_ctr_exit_code"] == 0
    view = View(console).ready()
    view.type("echo $GREETING-$TERM\r")
    view.wait_for(b"hi-xterm-256color\r\n")


def test_attach_magic_opens_a_console_on_the_main_process(ip):
    _magic(ip, "run -d -it --name main --network none bb sh")
    console, out = _magic(ip, "attach main")
    assert isinstance(console, Console) and console.command is None, out.stderr
    view = View(console).ready()
    view.type("echo attached-$((3*3))\r")
    view.wait_for(b"attached-9\r\n")


def test_run_it_magic_creates_starts_and_attaches_without_losing_output(ip):
    console, out = _magic(ip, "run -it --rm --name fresh --network none bb sh -c 'echo first-line; exec sh'")
    assert isinstance(console, Console), out.stderr
    view = View(console).ready()
    view.wait_for(b"first-line")
    view.type("exit 5\r")
    view.wait_for(b"[container removed]")  # --rm: gone once its main process exited


def test_console_magics_report_plain_errors(ip):
    result, out = _magic(ip, "exec -it nosuch sh")
    assert result.exit_code == 125 and "nosuch" in out.stderr
    _magic(ip, "create --name idle --network none bb sleep 10")
    result, out = _magic(ip, "attach idle")
    assert result.exit_code == 125 and "only attach to running containers" in out.stderr
