"""Real-browser fixtures: JupyterLab on 127.0.0.1 and headless Debian Chromium driven by Playwright.

Fixtures and helpers for tests in tests/browser/ (recipe: shared/reference/jupyter-notes.md §5.2):

- `lab` (session): a JupyterLab server with a token, a temporary root dir and its own Workbench
  store (the kernels' WORKBENCH_ROOT / WORKBENCH_RUNROOT). A `Lab` with `base_url`, `token`,
  `root` (the notebook dir, a Path), `store` (dict root/runroot), `setup_cell` (loads `%ctr` and
  imports the busybox image as `bb`), `url(path)`, `api(method, path)` and `cli(*args)` (the
  `workbench` CLI on the lab's store). After each test its kernels are shut down and every
  container of the store is removed.
- `browser` (session): Playwright's Chromium, /usr/bin/chromium (never downloaded).
- `page` (per test): a fresh 1280x900 page; `window.__wsLog` holds in-page timestamped WebSocket
  sends and receives for measurements.
- `artifacts`: tests/browser/artifacts/ (git-ignored), for screenshots.
- `run_notebook(page, lab, cells, name=None)`: write a notebook of code cells, open it, run them all
  and wait until every cell has run; raises with the traceback if a cell failed.
  `open_notebook(page, lab, cells, name=None)`, `run_cell(page, index)` and
  `wait_for_cells(page, indices, timeout=60)` do the same step by step. These helpers are fixtures
  that return the function (conftest modules cannot be imported by name).

Nothing is skipped: if chromium or JupyterLab is missing, scripts/setup.sh installs them; a test
that cannot start them fails. Every process started here is ended by its PID at teardown.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = pathlib.Path(__file__).parent / "artifacts"
START_TIMEOUT = 60.0
OPEN_TIMEOUT = 120.0
CELL_TIMEOUT = 120.0

# Timestamps taken inside the page (the sync Playwright API delivers events late, notes §5.2 #4).
_WS_LOG_SCRIPT = """
(() => {
  window.__wsLog = [];
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    const send = ws.send.bind(ws);
    ws.send = (data) => { window.__wsLog.push([performance.now(), "send", data.length || data.byteLength || 0]); send(data); };
    ws.addEventListener("message", (e) => window.__wsLog.push([performance.now(), "recv", e.data.length || e.data.byteLength || e.data.size || 0]));
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();
"""

# Lab settings for a quiet, deterministic page: no news toast, every cell kept in the DOM.
_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@dataclasses.dataclass
class Lab:
    """A running JupyterLab server and the Workbench store its kernels use."""

    base_url: str
    token: str
    root: pathlib.Path
    store: dict
    busybox_tar: str
    pid: int

    @property
    def setup_cell(self) -> str:
        """Load `%ctr` and import the busybox image as `bb` (the first cell of a test notebook)."""
        return f"%load_ext workbench\n%ctr import {self.busybox_tar} bb"

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}token={self.token}"

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        exe = os.path.join(os.path.dirname(sys.executable), "workbench")
        return subprocess.run([exe, "--root", self.store["root"], "--runroot", self.store["runroot"], *args],
                              capture_output=True, text=True, timeout=120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def lab(tmp_path_factory, busybox_tar) -> Lab:
    if os.geteuid() != 0:
        pytest.fail("the browser tests drive real containers, which need root")
    base = tmp_path_factory.mktemp("lab")
    root, settings = base / "notebooks", base / "settings"
    root.mkdir()
    for name, value in _SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    store = {"root": str(base / "store"), "runroot": str(base / "run")}
    token = uuid.uuid4().hex
    port = _free_port()
    env = {**os.environ, "WORKBENCH_ROOT": store["root"], "WORKBENCH_RUNROOT": store["runroot"],
           "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
           "IPYTHONDIR": str(base / "ipython"), "PYTHONUNBUFFERED": "1"}
    log = open(base / "lab.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, store, busybox_tar, proc.pid)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}: {(base / 'lab.log').read_text()[-3000:]}")
            try:
                lab.api("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer within {START_TIMEOUT} s")
                time.sleep(0.2)
        _warm_up(lab)
        yield lab
    finally:
        _shutdown_kernels(lab)
        _stop(proc)
        log.close()
        _remove_containers(lab)
        _kill_conmons(store["runroot"])


def _warm_up(lab: Lab) -> None:
    """Ask the new server once for Lab's page and theme, so that the first test's browser load
    does not meet cold handlers (a theme that failed to load blocked a first test on a loaded CI)."""
    for path in ("/lab", "/lab/api/themes/@jupyterlab/theme-light-extension/index.css"):
        try:
            with urllib.request.urlopen(lab.url(path), timeout=60) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            print(f"lab warm-up: {path}: {exc}", file=sys.stderr)


def _stop(proc: subprocess.Popen) -> None:
    """End the server (and anything in its process group) by its PID: SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(grace)
            break
        except subprocess.TimeoutExpired:
            continue


def _shutdown_kernels(lab: Lab) -> None:
    """Delete every session (its kernel exits; the consoles' atexit ends their exec sessions)."""
    try:
        for session in lab.api("GET", "/api/sessions"):
            lab.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in lab.api("GET", "/api/kernels"):
            lab.api("DELETE", f"/api/kernels/{kernel['id']}")
        deadline = time.monotonic() + 15
        while lab.api("GET", "/api/kernels") and time.monotonic() < deadline:
            time.sleep(0.2)
    except (urllib.error.URLError, OSError) as exc:
        print(f"teardown: shutting kernels down: {exc}", file=sys.stderr)


def _remove_containers(lab: Lab) -> None:
    if os.path.exists(os.path.join(lab.store["root"], "state.db")):
        result = lab.cli("rm", "-a", "-f", "-t", "0")
        if result.returncode != 0:
            print(f"teardown: rm -a -f: {result.stderr}", file=sys.stderr)


def _kill_conmons(runroot: str) -> None:
    out = subprocess.run(["pgrep", "-f", f"conmon.*{runroot}"], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(autouse=True)
def _clean_lab(request):
    """After each browser test: its kernels shut down and the store's containers removed."""
    yield
    if "lab" in request.fixturenames:
        lab = request.getfixturevalue("lab")
        _shutdown_kernels(lab)
        _remove_containers(lab)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs Debian's chromium package")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(_WS_LOG_SCRIPT)
    page = context.new_page()
    page.set_default_timeout(CELL_TIMEOUT * 1000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def artifacts() -> pathlib.Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# -- notebooks ------------------------------------------------------------------------------------
def _write_notebook(lab: Lab, cells: list[str], name: str | None = None) -> str:
    """A notebook of code cells in the lab's root dir; returns its name."""
    name = name or f"test-{uuid.uuid4().hex[:8]}.ipynb"
    notebook = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": uuid.uuid4().hex[:8], "metadata": {},
                   "outputs": [], "source": source} for source in cells],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    (lab.root / name).write_text(json.dumps(notebook))
    return name


def _open_notebook(page, lab: Lab, cells: list[str], name: str | None = None) -> str:
    """Write the notebook, open it in Lab and wait until its kernel is idle; returns its name."""
    name = _write_notebook(lab, cells, name)
    # A workspace of its own: Lab would otherwise restore every earlier test's tab, and the
    # notebook commands could act on one of those.
    page.goto(lab.url(f"/lab/workspaces/{name.removesuffix('.ipynb')}/tree/{name}?reset"))
    # The first open of a session loads Lab's bundles and starts a cold kernel on a loaded machine.
    deadline = time.monotonic() + OPEN_TIMEOUT
    reloads = 0
    while (state := page.evaluate(_NOTEBOOK_STATE)).get("ready") is not True:
        if "Error Loading Theme" in (state.get("dialog") or "") and reloads < 2:
            # A cold server under the suite's load can fail Lab's theme stylesheet request (a network
            # error, nothing in the server log); Lab then shows a modal dialog and no current widget.
            # That is the browser's first load, not Workbench: load the page again.
            print(f"browser: {state['dialog'].splitlines()[0]} on {name}; reloading", file=sys.stderr)
            reloads += 1
            page.reload()
            continue
        if time.monotonic() > deadline:
            raise AssertionError(f"notebook {name} not open with an idle kernel within {OPEN_TIMEOUT} s: "
                                 f"{state}; kernels {lab.api('GET', '/api/kernels')}; "
                                 f"lab log: {_log_tail(lab)}")
        page.wait_for_timeout(200)
    return name


# What the page shows while a notebook opens: enough to tell a slow kernel from a dialog or a wrong tab.
_NOTEBOOK_STATE = """() => { const app = window.jupyterapp;
    if (!app) return { ready: false, app: 'not loaded', url: location.href };
    const w = app.shell.currentWidget, s = w && w.sessionContext;
    const kernel = s && s.session && s.session.kernel;
    const dialog = document.querySelector('.jp-Dialog');
    return { ready: !!(s && s.isReady && kernel && kernel.status === 'idle' && w.content && w.content.widgets.length > 0),
             widget: w ? w.title.label : null, sessionReady: s ? s.isReady : null,
             kernel: kernel ? kernel.status : null, cells: w && w.content && w.content.widgets ? w.content.widgets.length : null,
             dialog: dialog ? dialog.innerText.slice(0, 300) : null, url: location.href }; }"""


def _log_tail(lab: Lab, size: int = 2000) -> str:
    try:
        return (lab.root.parent / "lab.log").read_text(errors="replace")[-size:]
    except OSError as exc:
        return f"(unreadable: {exc})"


def _run_cell(page, index: int) -> None:
    """Start one cell (does not wait for it)."""
    page.evaluate("""(i) => { const nb = window.jupyterapp.shell.currentWidget;
        nb.content.activeCellIndex = i; window.jupyterapp.commands.execute('notebook:run-cell'); }""", index)


_ANY_STARTED = """() => { const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    return !!(nb && nb.content && nb.content.widgets.some((c) => c && c.model
        && (c.model.executionCount !== null || (c.promptNode && c.promptNode.textContent.includes('*'))))); }"""

_CELLS_STATE = """(indices) => { const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    if (!nb || !nb.content) return null;
    const cells = nb.content.widgets;
    return indices.map((i) => { const c = cells[i];
        if (!c || !c.model) return { done: false, error: null };  // not rendered yet
        const prompt = c.promptNode ? c.promptNode.textContent : '';
        const outputs = c.model.outputs ? c.model.outputs.toJSON() : [];
        const error = outputs.find((o) => o.output_type === 'error');
        return { done: c.model.executionCount !== null && !prompt.includes('*'),
                 error: error ? (error.ename + ': ' + error.evalue + '\\n' + (error.traceback || []).join('\\n')) : null }; }); }"""


def _wait_for_cells(page, indices: list[int], timeout: float = CELL_TIMEOUT) -> None:
    """Wait until the cells have run; raises with the traceback of a cell that failed."""
    deadline = time.monotonic() + timeout
    while True:
        state = page.evaluate(_CELLS_STATE, indices)
        if state:
            for i, cell in zip(indices, state):
                if cell["error"]:
                    raise AssertionError(f"cell {i} failed:\n{_strip_ansi(cell['error'])}")
            if all(cell["done"] for cell in state):
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"cells {indices} did not finish within {timeout} s: {state}")
        page.wait_for_timeout(100)


def _run_notebook(page, lab: Lab, cells: list[str], name: str | None = None) -> None:
    """Write a notebook of `cells`, open it, run all cells and wait until each has run."""
    _open_notebook(page, lab, cells, name)
    for _ in range(3):  # on a loaded machine a run-all issued as the panel settles can be lost: reissue it
        # Lab restores the previous test's tab too: make this notebook the one the command acts on.
        page.evaluate("""() => { const app = window.jupyterapp; app.shell.activateById(app.shell.currentWidget.id);
            app.commands.execute('notebook:run-all-cells'); }""")  # not awaited
        try:
            page.wait_for_function(_ANY_STARTED, timeout=20_000)
            break
        except Exception:  # playwright's TimeoutError: nothing started yet
            continue
    _wait_for_cells(page, list(range(len(cells))))


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture
def run_notebook():
    """`run_notebook(page, lab, cells, name=None)`: write, open, run all cells, wait for each."""
    return _run_notebook


@pytest.fixture
def open_notebook():
    """`open_notebook(page, lab, cells, name=None) -> name`: write and open it, kernel idle."""
    return _open_notebook


@pytest.fixture
def run_cell():
    """`run_cell(page, index)`: start one cell of the open notebook."""
    return _run_cell


@pytest.fixture
def wait_for_cells():
    """`wait_for_cells(page, indices, timeout=60)`: wait until those cells have run (raise if one failed)."""
    return _wait_for_cells


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test leaves a screenshot of its page in artifacts/failed-<test>.png."""
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and page is not None:
        ARTIFACTS.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(ARTIFACTS / f"failed-{item.name}.png"), full_page=True)
        except Exception as exc:  # the page may be gone
            print(f"no failure screenshot: {exc}", file=sys.stderr)
