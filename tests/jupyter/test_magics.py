"""`%ctr` / `%%ctr` through a real IPython InteractiveShell, with real containers."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from IPython.utils.capture import capture_output


def ctr(ip, line, cell=None):
    """Run a magic, returning (result, captured output)."""
    with capture_output() as captured:
        result = ip.run_line_magic("ctr", line) if cell is None else ip.run_cell_magic("ctr", line, cell)
    return result, captured


def test_run_streams_both_streams_and_keeps_the_exit_code(ip):
    result, out = ctr(ip, "run --rm --network none bb sh -c 'echo hello; echo oops >&2; exit 3'")
    assert out.stdout == "hello\n"
    assert out.stderr == "oops\n"
    assert result.exit_code == 3 and ip.user_ns["_ctr_exit_code"] == 3
    assert "exit code 3" in result._repr_mimebundle_()["text/html"]


def test_values_enter_only_through_double_braces(ip):
    ip.user_ns.update(word="py-value", args=["one", "two"])
    result, out = ctr(ip, "run --rm --network none bb sh -c 'echo $HOME {{word}} ${HOME} {a,b}' ")
    assert out.stdout == "/root py-value /root {a,b}\n"
    result, out = ctr(ip, "run --rm --network none bb echo {{args}} {{len(args) + 1}}")
    assert out.stdout == "one two 3\n"
    result, out = ctr(ip, "run --rm --network none bb awk 'BEGIN {print \"$1\"}'")
    assert out.stdout == "$1\n"
    ctr(ip, "create --name tagged --network none bb true")
    result, out = ctr(ip, "ps -a --format '{{.Names}} {{ word }} {{if .AutoRemove}}rm{{else}}keep{{end}}'")
    assert result.lines == ["tagged py-value keep"]  # Go template actions are left for --format


def test_an_undefined_name_is_one_error_line_not_a_traceback(ip):
    result = ip.run_cell("%ctr run --rm bb echo {{no_such_name}}")
    assert result.success
    assert result.result is None
    assert ip.user_ns["_ctr_exit_code"] == 125


def test_global_flags_alone_configure_the_kernel(ip, tmp_path):
    result, _ = ctr(ip, "--debug")  # tracebacks from now on; the store stays
    assert result.lines[0].endswith("log level debug")
    assert ctr(ip, "images --format '{{.Repository}}'")[0].lines == ["localhost/bb"]
    result, out = ctr(ip, "stop nosuch")
    assert result.exit_code == 125 and "Traceback (most recent call last)" in out.stderr
    ctr(ip, "--log-level warn")
    assert ctr(ip, "stop nosuch")[1].stderr.startswith("Error: ")
    result, _ = ctr(ip, f"--root {tmp_path}/other --runroot {tmp_path}/other-run")
    assert result.lines == [f"workbench: graph root {tmp_path}/other, run root {tmp_path}/other-run, log level warn"]
    assert ctr(ip, "images -q")[0].lines == []  # a new, empty store


def test_failures_are_one_line_and_raise_on_request(ip):
    result, out = ctr(ip, "--debug stop nosuch")  # a traceback only when asked for
    assert result.exit_code == 125 and out.stderr.startswith("Traceback (most recent call last)")
    assert out.stderr.endswith('Error: no container with name or ID "nosuch" found: no such container\n')
    result, out = ctr(ip, "rm nosuch")
    assert result.exit_code == 1
    assert out.stderr == 'Error: no container with name or ID "nosuch" found: no such container\n'
    result, out = ctr(ip, "frobnicate")
    assert result.exit_code == 125 and "unrecognized command" in out.stderr
    from workbench.notebook import CtrError

    with pytest.raises(CtrError) as info:
        ctr(ip, "--raise rm nosuch")
    assert info.value.exit_code == 1
    ip.run_line_magic("config", "CtrMagics.raise_on_error = True")
    with pytest.raises(CtrError):
        ctr(ip, "run --rm --network none bb false")


def test_list_commands_return_typed_dataframes(ip):
    import pandas as pd

    ctr(ip, "run -d --name web --network none bb sleep 100")
    df, _ = ctr(ip, "ps -a")
    assert isinstance(df, pd.DataFrame)
    assert list(df["NAMES"]) == ["web"]
    assert str(df["CREATED"].dtype).startswith("datetime64")
    images, _ = ctr(ip, "images")
    assert images["SIZE"].dtype.kind == "i" and images["SIZE"].iloc[0] > 1_000_000
    assert "MB" in images._repr_html_() or "kB" in images._repr_html_()
    ip.run_cell("frame = %ctr ps -a")
    assert isinstance(ip.user_ns["frame"], pd.DataFrame)
    events, _ = ctr(ip, "events --stream=false --filter event=start")
    assert list(events["STATUS"]) == ["start"] and list(events["NAME"]) == ["web"]
    assert str(events["TIME"].dtype).startswith("datetime64")
    procs, _ = ctr(ip, "top web pid user args")
    assert procs.to_dict("records") == [{"PID": "1", "USER": "root", "COMMAND": "sleep 100"}]
    quiet, out = ctr(ip, "ps -aq")
    assert quiet.lines == [df["CONTAINER ID"].iloc[0]]


def test_inspect_is_a_rich_document(ip):
    ctr(ip, "run -d --name web --network none bb sleep 100")
    doc, _ = ctr(ip, "inspect web")
    assert doc[0]["State"]["Status"] == "running"
    bundle = doc._repr_mimebundle_()
    assert bundle["application/json"][0]["Name"] == "web"
    assert "<details><summary>State</summary>" in bundle["text/html"]
    assert doc.to_frame()["Name"].tolist() == ["web"]


def test_cell_forms_exec_run_and_file(ip):
    ctr(ip, "run -d --name web --network none bb sleep 100")
    ip.user_ns["word"] = "never-expanded"
    result, out = ctr(ip, "exec web", "echo {{word}} $HOME\nexit 4\n")
    assert out.stdout == "{{word}} /root\n" and result.exit_code == 4
    result, out = ctr(ip, "run --rm --network none bb", "echo from a fresh container\n")
    assert out.stdout == "from a fresh container\n" and result.exit_code == 0
    result, out = ctr(ip, "file web:/tmp/notes.txt", "line one\nline two\n")
    assert result.exit_code == 0
    result, out = ctr(ip, "exec web cat /tmp/notes.txt")
    assert out.stdout == "line one\nline two\n"
    result, out = ctr(ip, "file web:relative", "x")
    assert result.exit_code == 125
    result, out = ctr(ip, "exec -i web sh")  # -i without -t (exec -it opens a Console)
    assert result.exit_code == 125 and "a notebook cell has no terminal" in out.stderr


def test_help_and_kernel_configuration(ip, tmp_path):
    result, out = ctr(ip, "--help")
    assert "commands:" in out.stdout and result.exit_code == 0
    result, out = ctr(ip, "run --help")
    assert "--memory" in out.stdout
    report, out = ctr(ip, "doctor")
    assert "OCI runtime" in list(report["CHECK"]) and set(report["STATUS"]) <= {"ok", "warn", "missing"}


def test_completion_of_words_flags_and_names(ip):
    from workbench.magics import complete

    class Event:
        def __init__(self, line):
            self.line, self.symbol = line, line.split(" ")[-1]
    ctr(ip, "create --name webby --network none bb true")
    assert "ps" in complete(ip, Event("%ctr p"))
    assert "prune" in complete(ip, Event("%ctr network p"))
    assert "--memory" in complete(ip, Event("%ctr run --mem"))
    assert "webby" in complete(ip, Event("%ctr start we"))
    assert "localhost/bb:latest" in complete(ip, Event("%ctr run --rm localhost/"))


@pytest.fixture
def kernel_sigint():
    """SIGINT raises KeyboardInterrupt, as in a kernel, however the suite was started (a
    shell's background job starts with SIGINT ignored, and the stop button would do nothing)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_interrupt_escalates_and_returns_quickly(ip, kernel_sigint):
    """The stop button: SIGINT to a PID 1 that ignores it, then SIGTERM (ignored), then SIGKILL."""
    def interrupt_soon():
        time.sleep(1.5)
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt_soon, daemon=True).start()
    start = time.monotonic()
    result, out = ctr(ip, "run --name sleeper --network none bb sleep 60")
    elapsed = time.monotonic() - start
    assert elapsed < 5, f"interrupt took {elapsed:.1f}s"
    assert result.exit_code == 137
    assert "Process was killed" in out.stderr
    state, _ = ctr(ip, "inspect --format '{{.State.Status}}' sleeper")
    assert state.lines == ["exited"]


@pytest.fixture
def bars(monkeypatch) -> list[tuple[str, str]]:
    """What progress bars a cell shows: ("display" | "update", html) in order."""
    from IPython import display as ipd

    shown: list[tuple[str, str]] = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj.data))
    monkeypatch.setattr(ipd, "display", lambda obj, display_id=False: shown.append(("display", obj.data)) or Handle())
    return shown


def test_progress_is_a_bar_redrawn_in_place_ending_in_a_summary(bars):
    from workbench.notebook import NotebookOutput, progress_html

    out = NotebookOutput()
    out.progress(0, 4_000_000, "pulling x")
    out.progress(1_000_000, 4_000_000, "pulling x")  # within 0.2 s: not redrawn
    out.progress(4_000_000, 4_000_000, "pulling x")  # the end is always drawn
    assert [kind for kind, _ in bars] == ["display", "update"]
    assert "<progress" in bars[0][1] and "/ 4 MB" in bars[0][1]
    assert bars[-1][1] == progress_html(4_000_000, 4_000_000, "pulling x")
    assert "&#10003; pulling x" in bars[-1][1]


def test_export_commit_save_load_and_import_draw_one_bar_ending_in_a_summary(ip, bars, tmp_path):
    result, _ = ctr(ip, "run --name box --network none bb sh -c 'head -c 2000000 /dev/urandom > /big'")
    assert result.exit_code == 0
    for line, label in [(f"export -o {tmp_path}/box.tar box", "exporting box"),
                        ("commit box boxed", "committing box"),
                        (f"save -o {tmp_path}/bb.tar bb", "saving bb"),
                        (f"load -i {tmp_path}/bb.tar", f"loading {tmp_path}/bb.tar"),
                        (f"import {tmp_path}/box.tar from-tar", f"importing {tmp_path}/box.tar")]:
        bars.clear()
        result, _ = ctr(ip, line)
        assert result.exit_code == 0, line
        assert bars and bars[0][0] == "display" and {kind for kind, _ in bars[1:]} <= {"update"}, line
        assert bars[-1][1].startswith(f"<span>&#10003; {label}: "), (line, bars[-1])
    bars.clear()
    ctr(ip, f"save -q -o {tmp_path}/quiet.tar bb")
    assert bars == []  # --quiet: no bar


def test_bootstrap_shows_mmdebstraps_steps_then_a_summary_and_the_image_runs(ip, bars):
    """A real Debian image from the mirrors (mmdebstrap, tens of seconds)."""
    result, _ = ctr(ip, "image bootstrap debian deb")
    assert result.exit_code == 0 and len(result.lines[0]) == 64
    stages = [html for _, html in bars[:-1]]
    assert len(stages) >= 3 and any("deb: downloading packages with apt" in html for html in stages), stages
    assert bars[-1][1].startswith("<span>&#10003; bootstrapped deb: ")
    result, out = ctr(ip, "run --rm deb sh -c 'cat /etc/debian_version; command -v apt-get'")
    version, apt = out.stdout.split()
    assert version.startswith("12.") and apt == "/usr/bin/apt-get"
    assert ctr(ip, "inspect --format '{{.Config.Cmd}}' deb")[0].lines == ["[bash]"]


def test_a_host_without_containers_stops_the_notebook_plainly(ip, monkeypatch):
    from workbench.engine import doctor

    monkeypatch.setattr(doctor, "namespaces", lambda: doctor.Check("namespaces", doctor.MISSING, "unshare: denied",
                                                                   "containers cannot run here"))
    monkeypatch.setattr(doctor, "PROBES", (doctor.namespaces,))
    with capture_output() as out:
        result = ip.run_cell("from workbench.notebook import require_containers\nrequire_containers()")
    assert not result.success
    shown = out.stdout + out.stderr
    assert "Containers cannot run on this host (namespaces: unshare: denied)" in shown
    assert "Traceback" not in shown


def test_build_streams_its_steps_into_the_cell(ip, tmp_path):
    (tmp_path / "Containerfile").write_text("FROM bb\nRUN echo built-in-a-notebook\nCMD [\"true\"]\n")
    ip.user_ns["context"] = str(tmp_path)
    result, out = ctr(ip, "build --network none -t nb-built {{context}}")
    assert result.exit_code == 0, out.stderr
    assert "STEP 2/3: RUN echo built-in-a-notebook\nbuilt-in-a-notebook\n" in out.stdout
    assert "Successfully tagged localhost/nb-built:latest" in out.stdout
