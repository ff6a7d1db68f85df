"""The notebook views in a real JupyterLab and headless Chromium: inspect tables, the container
table's stop button, the lifecycle diagram after a pause, the stats plot. Screenshots of each go
to tests/browser/artifacts/."""

from __future__ import annotations



WEB = "%ctr run -d --name web --network none --stop-timeout 1 bb sleep 1000"


def container_id(lab, name: str) -> str:
    result = lab.cli("inspect", "--format", "{{.Id}}", name)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def status(lab, name: str) -> str:
    return lab.cli("inspect", "--format", "{{.State.Status}}", name).stdout.strip()


def test_inspect_tables_show_the_id_and_state(page, lab, run_notebook, artifacts):
    run_notebook(page, lab, [lab.setup_cell, WEB, "%ctr inspect web"])
    full = container_id(lab, "web")
    view = page.locator(".wb-inspect-view").first
    view.wait_for()
    ident = view.locator(f".wb-inspect td .wb-id[title='{full}']")  # the State tab's Id row
    assert ident.inner_text() == full[:12]
    state = view.locator(".wb-inspect tr", has=page.locator("th", has_text="Status")).first
    assert state.locator("td").inner_text() == "running"
    assert view.locator(".wb-state.running").inner_text() == "running"  # the header's badge
    view.screenshot(path=str(artifacts / "inspect-view.png"))
    view.locator(".lm-TabBar-tab", has_text="JSON").click()
    page.wait_for_function("(id) => [...document.querySelectorAll('.wb-inspect-view pre')]"
                           ".some((p) => p.offsetParent && p.textContent.includes(id))", arg=full)


def test_container_table_stop_button_stops_the_container(page, lab, run_notebook, artifacts):
    db = "%ctr run -d --name db --network none bb sleep 1000"
    run_notebook(page, lab, [lab.setup_cell, WEB, db, "%ctr ps -a --widget"])
    row = page.locator(".wb-table tr[data-name='web']")
    row.wait_for()
    assert row.locator(".wb-state").inner_text() == "running"
    assert page.locator(".wb-table tr[data-name='db'][data-state='running']").count() == 1
    page.locator(".wb-table").first.screenshot(path=str(artifacts / "container-table.png"))
    row.locator("button[data-action='stop']").click()
    page.wait_for_selector(".wb-table tr[data-name='web'][data-state='exited'], "
                           ".wb-table tr[data-name='web'][data-state='stopped']", timeout=20_000)
    assert status(lab, "web") in ("exited", "stopped")
    assert status(lab, "db") == "running"
    assert row.locator("button[data-action='start']").is_visible()
    assert not row.locator("button[data-action='stop']").is_visible()
    page.locator(".wb-table").first.screenshot(path=str(artifacts / "container-table-stopped.png"))


def test_lifecycle_diagram_highlights_paused_after_a_pause(page, lab, open_notebook, run_cell, wait_for_cells,
                                                           artifacts):
    cells = [lab.setup_cell, WEB,
             "from workbench import Runtime\nfrom workbench.widgets import LifecycleDiagram\n"
             "LifecycleDiagram(Runtime().container('web'))",
             "%ctr unpause web"]
    open_notebook(page, lab, cells)
    for i in range(3):
        run_cell(page, i)
    wait_for_cells(page, [0, 1, 2])
    diagram = page.locator(".wb-lifecycle").first
    diagram.locator(".wb-lc-node.current[data-state='running']").wait_for()
    assert sorted(diagram.locator("button:visible").all_inner_texts()) == ["kill", "pause", "restart", "stop"]
    diagram.locator("button[data-action='pause']").click()
    diagram.locator(".wb-lc-node.current[data-state='paused']").wait_for(timeout=15_000)
    assert diagram.locator(".wb-lc-node.current").count() == 1
    assert sorted(diagram.locator("button:visible").all_inner_texts()) == ["kill", "unpause"]
    assert status(lab, "web") == "paused"
    page.wait_for_timeout(300)  # mid-animation: the taken edge is drawn
    diagram.screenshot(path=str(artifacts / "lifecycle-paused.png"))
    run_cell(page, 3)  # unpaused elsewhere: the diagram follows the events log
    diagram.locator(".wb-lc-node.current[data-state='running']").wait_for(timeout=15_000)


def test_stats_plot_draws_cpu_and_memory(page, lab, run_notebook, artifacts):
    run_notebook(page, lab, [lab.setup_cell, WEB, "%ctr stats --plot web"])
    plot = page.locator(".wb-stats").first
    plot.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('.wb-stats polyline')]"
                           ".filter((p) => (p.getAttribute('points') || '').split(' ').length >= 3).length >= 2",
                           timeout=20_000)  # CPU and memory lines with three points or more
    assert "web" in plot.locator(".wb-stats-legend").inner_text()
    plot.screenshot(path=str(artifacts / "stats-plot.png"))
