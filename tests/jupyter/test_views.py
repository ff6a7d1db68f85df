"""The notebook views (InspectView, ContainerTable, StatsPlot, LifecycleDiagram) on real containers,
driven from Python as their buttons drive them; the browser half is tests/browser/test_views.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from workbench.engine.state import ContainerState, is_legal
from workbench.widgets import ContainerTable, InspectView, LifecycleDiagram, StatsPlot
from workbench.widgets._live import THREAD_PREFIX
from workbench.widgets.inspect import value_html
from workbench.widgets.table import console_class


def until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def widget_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


@pytest.fixture
def sleeper(rt, busybox):
    """A running busybox container ("web"); sleep ignores SIGTERM as PID 1, so stop waits 1 s."""
    c = rt.create_container(busybox, ["sleep", "1000"], name="web", network="none", stop_timeout=1)
    c.start()
    return c


@pytest.fixture
def views():
    """Widgets made by a test, closed at its end even when it fails."""
    made: list = []
    yield made
    for widget in made:
        widget.close()


# -- InspectView ----------------------------------------------------------------------------------
def test_inspect_view_has_the_sections_with_id_and_state(sleeper, views):
    view = InspectView(sleeper)
    views.append(view)
    assert list(view.sections) == ["State", "Config", "Image", "Mounts", "Network", "Namespaces and process",
                                   "Resources / HostConfig", "Labels and annotations"]
    state = dict(view.sections["State"])
    assert state["Id"] == sleeper.id and state["Status"] == "running"
    assert list(view._tabs.titles) == [*view.sections, "JSON"]
    state_html = view._tabs.children[0].value
    assert f'title="{sleeper.id}">{sleeper.id[:12]}</span>' in state_html  # short ID, full one on hover
    assert ">running<" in state_html
    assert f'"Id": "{sleeper.id}"' in view._tabs.children[-1].value  # the raw JSON tab
    assert dict(view.sections["Namespaces and process"])["State.Pid"] == sleeper.inspect()["State"]["Pid"] > 0


def test_inspect_view_refresh_picks_up_a_state_change(sleeper, views):
    view = InspectView(sleeper)
    views.append(view)
    tabs = list(view._tabs.children)
    sleeper.pause()
    assert dict(view.sections["State"])["Status"] == "running"  # nothing re-read yet
    view._refresh_button.click()
    assert dict(view.sections["State"])["Status"] == "paused"
    assert ">paused<" in view._tabs.children[0].value
    assert list(view._tabs.children) == tabs  # updated in place, not rebuilt
    sleeper.unpause()


def test_inspect_view_of_a_removed_container_says_so(sleeper, views):
    view = InspectView(sleeper)
    views.append(view)
    sleeper.remove(force=True, timeout=0)
    view.refresh()
    assert view.status == "container removed"
    assert "container removed" in view._header.value
    assert view.data["Id"] == sleeper.id  # the last data stays readable


def test_inspect_view_of_an_image(rt, busybox, views):
    view = InspectView(rt.image(busybox))
    views.append(view)
    assert view.kind == "image"
    assert dict(view.sections["Image"])["RepoTags"] == [busybox]


def test_long_values_fold_and_ids_shorten():
    digest = "sha256:" + "ab" * 32
    assert value_html(digest) == f'<span class="wb-id" title="{digest}">{"ab" * 6}</span>'
    long = "x" * 300
    folded = value_html(long)
    assert folded.startswith("<details") and folded.count("x" * 300) == 2 and "<summary>" + "x" * 60 in folded
    many = value_html([f"VAR{i}=1" for i in range(10)])
    assert many.startswith("<details><summary>10 items: VAR0=1, VAR1=1")
    assert value_html("<b>") == "&lt;b&gt;"


# -- ContainerTable -------------------------------------------------------------------------------
def test_table_rows_follow_the_containers(rt, busybox, sleeper, views):
    table = ContainerTable(rt)
    views.append(table)
    row = table.row("web")
    assert row["state"] == "running" and row["image"] == busybox and row["status"].startswith("up ")
    console = ["console"] if console_class() is not None else []
    assert row["actions"] == ["stop", "pause", "restart", *console, "inspect", "remove"]
    other = rt.create_container(busybox, ["true"], name="other", network="none")
    until(lambda: table.row("other") is not None, what="a row for a new container")  # the refresher saw it
    assert table.row("other")["state"] == "created" and "start" in table.row("other")["actions"]
    other.remove()
    until(lambda: table.row("other") is None, what="the removed container's row to go")


def test_table_shows_cpu_and_memory_of_running_containers(sleeper, rt, views):
    table = ContainerTable(rt)
    views.append(table)
    row = table.row("web")
    assert row["mem"].endswith("B") and float(row["cpu"]) >= 0


def test_stop_button_stops_the_container_without_blocking(sleeper, rt, views):
    table = ContainerTable(rt)
    views.append(table)
    started = time.monotonic()
    table._model._handle_custom_msg({"type": "action", "action": "stop", "id": sleeper.id}, [])  # as the view
    assert time.monotonic() - started < 0.5  # the kernel's thread does not wait for the stop
    until(lambda: sleeper.state in (ContainerState.STOPPED, ContainerState.EXITED), what="the stop")
    until(lambda: table.row("web")["state"] in ("stopped", "exited") and not table.row("web")["busy"],
          what="the row to show the stop")
    assert table.row("web")["status"].startswith("exited (137) ")  # sleep ignored SIGTERM: killed
    assert table.message == "web: stopped"
    assert "start" in table.row("web")["actions"] and "stop" not in table.row("web")["actions"]


def test_remove_asks_for_a_confirmation(sleeper, rt, views):
    table = ContainerTable(rt)
    views.append(table)
    assert table.act("remove", "web") is None
    assert table.confirm == sleeper.id and sleeper.state == ContainerState.RUNNING
    table.act("cancel", sleeper.id)
    assert table.confirm == "" and sleeper.state == ContainerState.RUNNING
    table.act("remove", "web")
    table.act("remove", sleeper.id, confirmed=True).join(15)
    assert [c.name for c in rt.containers()] == []
    assert table.row("web") is None and table.confirm == "" and table.message == "web: removed"


def test_action_errors_show_in_the_table(sleeper, rt, views):
    table = ContainerTable(rt)
    views.append(table)
    table.act("unpause", "web").join(10)  # not paused: the engine refuses
    assert "is not paused" in table.message and table._model.level == "error"
    table.act("start", "nothing-like-this")
    assert table.message == "nothing-like-this: container removed"


def test_table_inspect_opens_an_inspect_view(sleeper, rt, views):
    table = ContainerTable(rt)
    views.append(table)
    table.act("inspect", "web")
    assert isinstance(table.detail, InspectView) and table.detail.data["Id"] == sleeper.id
    inspect_view = table.detail
    sleeper.pause()  # the open view follows its row
    until(lambda: dict(inspect_view.sections["State"])["Status"] == "paused", what="the view to follow")
    sleeper.remove(force=True, timeout=0)
    until(lambda: inspect_view.status == "container removed", what="the view to say so")
    table.show_nothing()
    assert table.detail is None and inspect_view.comm is None  # closed, not leaked


def test_a_closed_table_leaves_no_thread(sleeper, rt):
    before = widget_threads()
    table = ContainerTable(rt)
    assert len(widget_threads()) == len(before) + 1
    table.act("pause", "web").join(10)
    table.close()
    assert widget_threads() == before
    assert table._model.comm is None


# -- StatsPlot ------------------------------------------------------------------------------------
def test_stats_plot_samples_a_running_container(sleeper, views):
    plot = StatsPlot(sleeper, interval=0.2)
    views.append(plot)
    until(lambda: len(plot.samples.get("web", [])) >= 3, what="three samples")
    when, cpu, memory = plot.samples["web"][-1]
    assert abs(when - time.time()) < 5 and cpu >= 0 and memory > 0
    assert plot.message == ""


def test_stats_plot_of_a_stopped_container_says_why_it_is_empty(rt, busybox, views):
    c = rt.create_container(busybox, ["true"], name="done", network="none")
    c.start()
    c.wait(10)
    plot = StatsPlot(c, interval=0.2)
    views.append(plot)
    assert plot.samples == {} and plot.message == "done is exited: no processes, no stats"


def test_stats_plot_of_a_runtime_follows_running_containers(rt, sleeper, views):
    plot = StatsPlot(rt, interval=0.2)
    views.append(plot)
    until(lambda: len(plot.samples.get("web", [])) >= 2, what="samples of web")
    sleeper.remove(force=True, timeout=0)
    until(lambda: "web" not in plot.samples, what="web to leave the plot")
    assert plot.message == "no running containers: nothing to measure"


def test_stats_plot_of_a_removed_container(sleeper, views):
    plot = StatsPlot(sleeper, interval=0.2)
    views.append(plot)
    sleeper.remove(force=True, timeout=0)
    until(lambda: plot.message == "container removed", what="the message")


# -- LifecycleDiagram -----------------------------------------------------------------------------
def test_lifecycle_highlights_paused_and_offers_only_legal_operations(sleeper, views):
    diagram = LifecycleDiagram(sleeper)
    views.append(diagram)
    assert diagram.state == "running"
    assert diagram.actions == ["stop", "pause", "restart", "kill"]
    diagram._handle_custom_msg({"type": "action", "action": "pause"}, [])  # as the button does
    until(lambda: diagram.state == "paused" and not diagram.busy, what="paused")
    assert diagram.actions == ["unpause", "kill"]
    assert all(is_legal(op, ContainerState.PAUSED) for op in diagram.actions)
    assert diagram.act("start") is None and "not possible" in diagram.message  # no button, no action
    diagram.act("unpause").join(10)
    assert diagram.state == "running"


def test_lifecycle_follows_changes_made_elsewhere(sleeper, rt, views):
    diagram = LifecycleDiagram(sleeper, interval=30)  # only the events log can tell it quickly
    views.append(diagram)
    rt.container("web").pause()
    until(lambda: diagram.state == "paused", timeout=3, what="the diagram to follow a pause from another handle")
    rt.container("web").unpause()
    until(lambda: diagram.state == "running", timeout=3, what="running again")


def test_lifecycle_of_a_removed_container(sleeper, views):
    diagram = LifecycleDiagram(sleeper)
    views.append(diagram)
    sleeper.remove(force=True, timeout=0)
    until(lambda: diagram.removed, what="removed")
    assert diagram.message == "container removed" and diagram.actions == []
    assert diagram.act("start") is None


def test_every_view_stops_its_threads_when_closed(sleeper, rt):
    before = widget_threads()
    made = [ContainerTable(rt), StatsPlot(sleeper, interval=0.2), StatsPlot(rt, interval=0.2),
            LifecycleDiagram(sleeper), InspectView(sleeper)]
    assert len(widget_threads()) == len(before) + 4  # InspectView has none
    for widget in made:
        widget.close()
    assert widget_threads() == before


# -- %ctr hooks ------------------------------------------------------------------------------------
@pytest.fixture
def kernel(store, rt):
    from workbench import notebook

    k = notebook.Kernel()
    k.root, k.runroot = store["root"], store["runroot"]
    yield k
    k.close()


def test_ctr_ps_widget_and_stats_plot(kernel, sleeper, views):
    from workbench.notebook import ctr

    table = ctr("ps -a --widget", kernel=kernel)
    views.append(table)
    assert isinstance(table, ContainerTable) and table.row("web")["state"] == "running"
    plot = ctr("stats --plot web", kernel=kernel)
    views.append(plot)
    assert isinstance(plot, StatsPlot) and plot.interval == 1.0
    until(lambda: plot.samples.get("web"), what="a sample")
    missing = ctr("stats --plot nothing-like-this", kernel=kernel)
    assert missing.exit_code == 125 and "nothing-like-this" in missing.errors[-1]


def test_ctr_inspect_is_a_document_shown_as_an_inspect_view(kernel, sleeper, views):
    from workbench.notebook import Document, ctr

    doc = ctr("inspect web", kernel=kernel)
    assert isinstance(doc, Document) and doc[0]["State"]["Status"] == "running"
    bundle = doc._repr_mimebundle_()
    views.append(doc.widget)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == doc.widget.model_id
    assert "<details><summary>State</summary>" in bundle["text/html"]  # for hosts without widgets
    assert isinstance(doc.widget, InspectView) and doc.widget.data["Id"] == sleeper.id
    text = ctr("inspect --format '{{.State.Status}}' web", kernel=kernel)
    assert text.lines == ["running"]  # a template stays text
