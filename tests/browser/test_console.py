"""The Console widget in a real JupyterLab and headless Chromium: typing, resizing, Ctrl-C, and a
kernel that stays usable while a console streams output."""

from __future__ import annotations

import re

import pytest


BOX = "%ctr run -d --name box --network none bb sleep 1000"
CONSOLE = "console = %ctr exec -it box sh\nconsole"

_ROWS_TEXT = "() => { const r = document.querySelector('.xterm-rows'); return r ? r.innerText : ''; }"


def screen_lines(page) -> list[str]:
    """The console's visible screen, one string per line, trailing blanks removed."""
    return [line.rstrip() for line in page.evaluate(_ROWS_TEXT).replace("\xa0", " ").splitlines()]


def wait_for_line(page, predicate_js: str, timeout: float = 20_000) -> None:
    page.wait_for_function(
        "(test) => { const r = document.querySelector('.xterm-rows'); if (!r) return false;"
        " const lines = r.innerText.replace(/\\u00a0/g, ' ').split('\\n').map((l) => l.trimEnd());"
        " return lines.some((l) => new RegExp(test).test(l)); }", arg=predicate_js, timeout=timeout)


def stty_size(page, marker: str) -> tuple[int, int]:
    """Type `stty size` (tagged so the answer can be found) and return (rows, cols)."""
    page.keyboard.type(f"echo {marker} $(stty size)\n", delay=5)
    wait_for_line(page, f"^{marker} \\d+ \\d+$")
    for line in screen_lines(page):
        if m := re.fullmatch(rf"{marker} (\d+) (\d+)", line):
            return int(m.group(1)), int(m.group(2))
    raise AssertionError(f"no stty answer for {marker}")


@pytest.fixture
def open_console(page, lab, open_notebook, run_cell, wait_for_cells):
    """Open a notebook (setup, a container `box`, `%ctr exec -it box sh`, then `more` cells not run
    yet), run its first three cells and wait for the shell's prompt in the console."""
    def open_(more: list[str] | None = None) -> None:
        open_notebook(page, lab, [lab.setup_cell, BOX, CONSOLE, *(more or [])])
        for i in range(3):
            run_cell(page, i)
        wait_for_cells(page, [0, 1, 2])
        page.wait_for_selector(".xterm-rows")
        wait_for_line(page, r"^/ #")  # the shell's prompt
        page.click(".xterm")
    return open_


def test_typing_echo_hello_console_shows_its_output(page, open_console, artifacts):
    open_console()
    page.keyboard.type("echo hello-console\n", delay=20)
    wait_for_line(page, "^hello-console$")
    assert "/ # echo hello-console" in screen_lines(page)
    page.keyboard.type("printf '\\033[1;32mgreen\\033[0m and \\033[44mblue\\033[0m\\n'\n", delay=5)
    wait_for_line(page, "^green and blue$")
    assert page.locator(".wb-console").get_attribute("data-status") == "running"
    page.locator(".wb-console").first.screenshot(path=str(artifacts / "console.png"))
    page.screenshot(path=str(artifacts / "console-lab.png"), full_page=True)


def test_resizing_the_page_changes_stty_size_in_the_container(page, open_console, artifacts):
    open_console()
    rows, wide = stty_size(page, "size-a")
    assert rows == 24 and wide > 80
    page.set_viewport_size({"width": 800, "height": 900})
    page.click(".xterm")
    for attempt in range(20):  # ResizeObserver -> fit -> resize message -> conmon's ctl fifo: asked until it lands
        page.wait_for_timeout(250)
        rows, narrow = stty_size(page, f"size-b{attempt}")
        if narrow < wide - 20:
            break
    assert rows == 24 and narrow < wide - 20
    page.locator(".wb-console").first.screenshot(path=str(artifacts / "console-narrow.png"))


def test_a_second_cell_runs_while_the_console_is_busy_and_ctrl_c_stops_it(page, open_console, run_cell,
                                                                           wait_for_cells):
    open_console(["answer = 6 * 7\nanswer"])
    page.keyboard.type("while :; do echo busy-$RANDOM; done\n", delay=5)
    wait_for_line(page, r"^busy-\d+$")
    run_cell(page, 3)
    wait_for_cells(page, [3], timeout=20)
    outputs = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[3].model.outputs.toJSON()")
    assert outputs[-1]["data"]["text/plain"] == "42"
    page.click(".xterm")
    page.keyboard.press("Control+C")
    page.keyboard.type("echo stopped-$((1+1))\n", delay=20)
    wait_for_line(page, "^stopped-2$")


def test_removing_the_container_is_shown_in_the_console(page, open_console, run_cell, wait_for_cells):
    open_console(["%ctr rm -f -t 0 box"])
    run_cell(page, 3)
    wait_for_cells(page, [3])
    page.wait_for_function("() => document.querySelector('.wb-console').dataset.status === 'container removed'",
                           timeout=20_000)
    wait_for_line(page, r"^\[container removed\]$")
