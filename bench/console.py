"""The Console widget in a real browser: keystroke echo latency and a 10 MB `cat`, with the kernel's
responsiveness meanwhile. JupyterLab on 127.0.0.1 + headless Debian Chromium (Playwright); every
time is taken inside the page (performance.now), not by this script.

    .venv/bin/python bench/console.py [--keys 40] [--megabytes 10]

Targets (issue 8): echo p50 <= 30 ms on loopback; 10 MB rendered in <= 3 s; the kernel answers
meanwhile.

An echo reaches the page 6-10 ms after its key here and is drawn at the next 60 Hz frame (~3 ms
into it), so its latency depends on where in a frame the key fell. Keys are pressed at random
points of the frame, as a person's are; pressed at one fixed point, the p50 moves by up to a frame.
A key whose handling asks for a frame (a blinking cursor restarting its blink did) makes Chromium
hold the page's other tasks, the echo's message among them, until that frame is drawn: the echo
then takes a frame more (p50 ~29 ms instead of ~16 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ECHO_TARGET_MS, CAT_TARGET_S = 30.0, 3.0
FRAME_MS = 1000 / 60  # headless Chromium draws at 60 Hz

# In-page probes: a keydown starts a clock, the next change of the terminal's rows stops it.
_PROBES = """() => {
  const rows = document.querySelector('.xterm-rows');
  window.__echo = []; let t0 = null;
  document.addEventListener('keydown', () => { t0 = performance.now(); }, true);
  new MutationObserver(() => { if (t0 !== null) { window.__echo.push(performance.now() - t0); t0 = null; } })
    .observe(rows, { childList: true, subtree: true, characterData: true });
}"""

# Start the clock at Enter, ping the kernel every 100 ms, stop when the marker is on screen.
_CAT = """(marker) => new Promise((resolve) => {
  const rows = document.querySelector('.xterm-rows');
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const pings = []; let t0 = null; let done = false;
  document.addEventListener('keydown', (e) => { if (e.key === 'Enter' && t0 === null) { t0 = performance.now(); ping(); } }, true);
  function ping() {
    if (done) return;
    const start = performance.now();
    kernel.requestExecute({ code: '1+1', silent: true, store_history: false }).done.then(() => {
      pings.push(performance.now() - start); setTimeout(ping, 100); });
  }
  const timer = setInterval(() => {
    if (t0 !== null && rows.textContent.includes(marker)) {
      done = true; clearInterval(timer);
      resolve({ seconds: (performance.now() - t0) / 1000, pings });
    }
  }, 10);
})"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class _Lab:
    """JupyterLab on a free port with a token, a temp root dir and its own Workbench store."""

    def __init__(self, base: str):
        self.base, self.token, self.port = base, uuid.uuid4().hex, _free_port()
        self.root = os.path.join(base, "notebooks")
        self.store = {"root": os.path.join(base, "store"), "runroot": os.path.join(base, "run")}
        settings = os.path.join(base, "settings", "@jupyterlab", "apputils-extension")
        os.makedirs(settings)
        os.makedirs(self.root)
        with open(os.path.join(settings, "notification.jupyterlab-settings"), "w") as f:
            json.dump({"fetchNews": "false", "checkForUpdates": False}, f)
        env = {**os.environ, "WORKBENCH_ROOT": self.store["root"], "WORKBENCH_RUNROOT": self.store["runroot"],
               "JUPYTER_CONFIG_DIR": os.path.join(base, "config"), "JUPYTER_RUNTIME_DIR": os.path.join(base, "rt"),
               "JUPYTERLAB_SETTINGS_DIR": os.path.join(base, "settings"), "IPYTHONDIR": os.path.join(base, "ipy")}
        self.log = open(os.path.join(base, "lab.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
             f"--port={self.port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
             f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.api("GET", "/api/status")
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"jupyter lab did not start; see {base}/lab.log")
                time.sleep(0.2)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}?token={self.token}"

    def api(self, method: str, path: str):
        with urllib.request.urlopen(urllib.request.Request(self.url(path), method=method), timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def notebook(self, cells: list[str]) -> str:
        name = "bench-console.ipynb"
        nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                         "source": src} for i, src in enumerate(cells)],
              "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
              "nbformat": 4, "nbformat_minor": 5}
        with open(os.path.join(self.root, name), "w") as f:
            json.dump(nb, f)
        return name

    def close(self) -> None:
        try:
            for session in self.api("GET", "/api/sessions"):
                self.api("DELETE", f"/api/sessions/{session['id']}")
        except OSError:
            pass
        for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(grace)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()
        if os.path.exists(os.path.join(self.store["root"], "state.db")):
            exe = os.path.join(os.path.dirname(sys.executable), "workbench")
            subprocess.run([exe, "--root", self.store["root"], "--runroot", self.store["runroot"],
                            "rm", "-a", "-f", "-t", "0"], capture_output=True, timeout=120)


def _wait_for_cells(page, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = page.evaluate("""(n) => { const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            if (!nb || !nb.content) return false;
            return nb.content.widgets.slice(0, n).every((c) => c.model.executionCount !== null
                && !(c.promptNode && c.promptNode.textContent.includes('*'))); }""", count)
        if done:
            return
        page.wait_for_timeout(100)
    raise RuntimeError("the notebook's cells did not finish")


def measure(keys: int, megabytes: int) -> dict:
    from playwright.sync_api import sync_playwright

    from workbench.engine.images.bootstrap import write_busybox_rootfs

    base = tempfile.mkdtemp(prefix="wb-bench-console-")
    tar = write_busybox_rootfs(os.path.join(base, "busybox.tar"))
    size = megabytes * 1_000_000
    lab = _Lab(base)
    try:
        name = lab.notebook([
            f"%load_ext workbench\n%ctr import {tar} bb",
            "%ctr run -d --name box --network none bb sleep 1000",
            f"%ctr exec box sh -c \"yes 'the quick brown fox jumps over the lazy dog 0123456789' | head -c {size} > /tmp/big\"",
            "console = %ctr exec -it box sh\nconsole",
        ])
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(lab.url(f"/lab/tree/{name}"))
                page.wait_for_function("""() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                    return !!(w && w.sessionContext && w.sessionContext.isReady && w.sessionContext.session
                      && w.sessionContext.session.kernel && w.sessionContext.session.kernel.status === 'idle'); }""",
                                       timeout=60_000)
                page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
                _wait_for_cells(page, 4)
                page.wait_for_selector(".xterm-rows")
                page.wait_for_function("document.querySelector('.xterm-rows').innerText.includes('/ #')")
                page.click(".xterm")
                page.evaluate(_PROBES)
                pause = random.Random(8)
                for i in range(keys):  # one character at a time, each echoed before the next
                    page.keyboard.press("abcdefghijklmnopqrstuvwxyz"[i % 26])
                    page.wait_for_function("(n) => window.__echo.length >= n", arg=i + 1, timeout=10_000)
                    # wait_for_function returns in an animation frame: a fixed pause would press every
                    # key at the same point of the 60 Hz frame, and the echo always waits for a frame
                    page.wait_for_timeout(30 + pause.uniform(0, FRAME_MS))
                echo = page.evaluate("() => window.__echo")
                page.keyboard.press("Control+U")  # clear the typed line
                page.keyboard.type("clear\n")
                page.wait_for_timeout(300)
                page.keyboard.type("cat /tmp/big; echo END-$((40+2))")
                page.evaluate("(marker) => { window.__cat = (%s)(marker); }" % _CAT, "END-42")  # not awaited
                page.keyboard.press("Enter")
                result = page.evaluate("() => window.__cat")
                page.locator(".wb-console").first.screenshot(path=os.path.join(base, "console-after-cat.png"))
            finally:
                browser.close()
    finally:
        lab.close()
    return {"echo_ms": echo, "cat_seconds": result["seconds"], "pings_ms": result["pings"], "bytes": size,
            "dir": base}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=40, help="keystrokes to time (default 40)")
    parser.add_argument("--megabytes", type=int, default=10, help="size of the cat (default 10 MB)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the lab and its containers are cleaned up
    r = measure(args.keys, args.megabytes)
    echo, pings = r["echo_ms"], r["pings_ms"] or [float("nan")]
    p50 = statistics.median(echo)
    print("console benchmark (headless Chromium, JupyterLab on loopback with workbench.widgets.server; "
          "times measured in the page)")
    print(f"  keystroke echo   n={len(echo)}  p50 {p50:.1f} ms  p90 {_percentile(echo, 0.9):.1f} ms  "
          f"max {max(echo):.1f} ms   target p50 <= {ECHO_TARGET_MS:.0f} ms: {'ok' if p50 <= ECHO_TARGET_MS else 'MISSED'}")
    seconds = r["cat_seconds"]
    print(f"  cat {r['bytes'] / 1e6:.0f} MB         rendered in {seconds:.2f} s ({r['bytes'] / 1e6 / seconds:.1f} MB/s)"
          f"   target <= {CAT_TARGET_S:.0f} s: {'ok' if seconds <= CAT_TARGET_S else 'MISSED'}")
    print(f"  kernel meanwhile  {len(r['pings_ms'])} execute round trips: p50 {statistics.median(pings):.1f} ms, "
          f"max {max(pings):.1f} ms")
    print(f"  screenshot: {r['dir']}/console-after-cat.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
