"""Lifecycle events with real containers: what is recorded, in which order, and following it live."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest


def container_events(rt, c=None, **kw) -> list[dict]:
    filters = {"type": "container", **({"container": c.id} if c is not None else {})}
    return list(rt.events(filters=filters, **kw))


def statuses(found) -> list[str]:
    return [e["Status"] for e in found]


def test_full_lifecycle_in_order_with_exit_codes(rt, busybox):
    c = rt.create_container(busybox, ["sleep", "100"], labels={"team": "ds"}, stop_timeout=1)
    c.start()
    c.pause()
    c.unpause()
    c.stop(timeout=0)
    c.cleanup()
    c.start()
    c.restart(timeout=0)
    c.remove(force=True, timeout=0)
    found = container_events(rt, c)
    assert statuses(found) == ["create", "init", "start", "pause", "unpause", "stop", "died", "cleanup",
                               "init", "start", "stop", "died", "cleanup", "restart", "init", "start",
                               "stop", "died", "cleanup", "remove"]
    died = [e for e in found if e["Status"] == "died"]
    assert [e["ContainerExitCode"] for e in died] == [137, 137, 137]
    assert all("ContainerExitCode" not in e for e in found if e["Status"] in ("create", "start", "stop"))
    first = found[0]
    assert first["ID"] == c.id and first["Name"] == c.name and first["Image"] == "localhost/busybox:latest"
    assert first["Attributes"] == {"team": "ds"}
    times = [e["TimeNano"] for e in found]
    assert times == sorted(times)


def test_run_rm_records_each_step_once(rt, busybox):
    result = rt.run(busybox, ["sh", "-c", "exit 3"], remove=True, name="once")
    assert result.exit_code == 3
    found = container_events(rt)
    assert statuses(found) == ["create", "init", "start", "died", "cleanup", "remove"]
    assert found[3]["ContainerExitCode"] == 3


def test_kill_records_the_signal(rt, busybox):
    c = rt.run(busybox, ["sleep", "100"], detach=True)
    c.kill("SIGKILL")
    c.wait(10)
    found = container_events(rt, c)
    kill = next(e for e in found if e["Status"] == "kill")
    assert kill["Attributes"]["signal"] == "SIGKILL"
    assert statuses(found)[statuses(found).index("kill"):][:2] == ["kill", "died"]


def test_exec_and_exec_died_carry_session_and_exit_code(rt, busybox):
    c = rt.run(busybox, ["sleep", "100"], detach=True)
    assert c.exec(["sh", "-c", "exit 5"]).exit_code == 5
    session = c.exec_detached(["true"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
            e["Attributes"].get("execID") == session for e in rt.events(filters=["event=exec_died"])):
        c.exec_ids()  # notices the detached session ended
        time.sleep(0.05)
    found = [e for e in container_events(rt, c) if e["Status"] in ("exec", "exec_died")]
    assert statuses(found) == ["exec", "exec_died", "exec", "exec_died"]
    first, second = found[0]["Attributes"]["execID"], found[2]["Attributes"]["execID"]
    assert found[1]["Attributes"]["execID"] == first and found[3]["Attributes"]["execID"] == second == session
    assert found[1]["ContainerExitCode"] == 5 and found[3]["ContainerExitCode"] == 0


def test_mount_commit_export_are_container_events(rt, busybox, tmp_path):
    c = rt.create_container(busybox, ["true"])
    c.mount()
    c.unmount()
    with open(tmp_path / "fs.tar", "wb") as out:
        c.export(out)
    image = c.commit("committed")
    assert statuses(container_events(rt, c))[1:] == ["mount", "unmount", "export", "commit"]
    rt.remove_container(c)
    rt.remove_image(image.id)


def test_image_events_for_import_tag_untag_rmi(rt, busybox_tar):
    image = rt.import_image(busybox_tar, "evimg")
    rt.tag_image("evimg", "evimg2")
    rt.untag_image("evimg2", "evimg2")
    rt.remove_image("evimg")
    found = list(rt.events(filters=["type=image"]))
    assert [(e["Status"], e["Name"]) for e in found] == [
        ("import", "localhost/evimg:latest"), ("tag", "localhost/evimg2:latest"),
        ("untag", "localhost/evimg2:latest"), ("untag", "localhost/evimg:latest"), ("remove", "evimg")]
    assert {e["ID"] for e in found} == {image.id}


def test_network_create_and_remove(rt):
    net = rt.networks.create("evnet")
    rt.networks.remove("evnet")
    found = list(rt.events(filters=["network=evnet"]))
    assert [(e["Status"], e["ID"], e["Attributes"]) for e in found] == [
        ("create", net.id, {"driver": "bridge"}), ("remove", net.id, {"driver": "bridge"})]


def test_filters_and_time_window(rt, busybox):
    a = rt.create_container(busybox, ["true"], name="ev-a", labels={"k": "v"})
    middle = time.time()
    b = rt.create_container(busybox, ["true"], name="ev-b")
    a.remove()
    b.remove()
    assert statuses(rt.events(filters=["container=ev-a"])) == ["create", "remove"]
    assert [e["Name"] for e in rt.events(filters=["container=ev-a", "container=ev-b", "event=remove"])] == [
        "ev-a", "ev-b"]
    assert [e["Name"] for e in rt.events(filters={"label": "k=v"})] == ["ev-a", "ev-a"]
    assert [(e["Name"], e["Status"]) for e in rt.events(since=middle, filters=["type=container"])] == [
        ("ev-b", "create"), ("ev-a", "remove"), ("ev-b", "remove")]
    assert [e["Name"] for e in rt.events(until=middle, filters=["type=container"])] == ["ev-a"]


_RUNNER = """
import sys
from workbench import Runtime
rt = Runtime(sys.argv[1], sys.argv[2])
result = rt.run("localhost/busybox:latest", ["sh", "-c", "exit 7"], remove=True, name="live")
sys.exit(0 if result.exit_code == 7 else 1)
"""


def test_follow_sees_another_process_run_a_container(rt, busybox, store):
    stop = threading.Event()
    seen: list[dict] = []
    follower = rt.events(follow=True, filters=["container=live"])

    def consume() -> None:
        for event in follower:
            seen.append(event)
            if event["Status"] == "remove" or stop.is_set():
                return
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    proc = subprocess.run([sys.executable, "-c", _RUNNER, store["root"], store["runroot"]], timeout=60)
    assert proc.returncode == 0
    thread.join(timeout=10)
    stop.set()
    assert not thread.is_alive()
    assert statuses(seen) == ["create", "init", "start", "died", "cleanup", "remove"]
    assert seen[3]["ContainerExitCode"] == 7


# -- the CLI ----------------------------------------------------------------------------------------
def test_cli_run_rm_then_events_default_format(cli, busybox_tar):
    assert cli("import", busybox_tar, "busybox").returncode == 0
    assert cli("run", "--rm", "--network", "none", "--name", "clie", "-l", "a=b", "busybox", "true").returncode == 0
    out = cli("events", "--stream=false", "--filter", "type=container")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line.split()[5] for line in lines] == ["create", "init", "start", "attach", "died", "cleanup", "remove"]
    words = lines[0].split()  # date, time, zone offset, zone name, type, status, full ID, (attributes)
    assert words[4] == "container" and words[1].count(":") == 2 and words[2][0] in "+-"
    assert len(words[6]) == 64 and lines[0].endswith("(image=localhost/busybox:latest, name=clie, a=b)")


def test_cli_json_and_template_formats(cli, busybox_tar):
    cli("import", busybox_tar, "busybox")
    cli("create", "--network", "none", "--name", "fmt", "busybox", "true")
    docs = [json.loads(line) for line in cli("events", "--stream=false", "--format", "json",
                                              "--filter", "event=create").stdout.splitlines()]
    assert [(d["Type"], d["Status"], d["Name"]) for d in docs] == [("container", "create", "fmt")]
    out = cli("events", "--stream=false", "--format", "{{.Type}}/{{.Status}}/{{.Name}}", "--since", "1h",
              "--filter", "type=container")
    assert out.stdout == "container/create/fmt\n"
    cli("rm", "fmt")


@pytest.mark.parametrize("args", [["--filter", "colour=red"], ["--filter", "container"], ["--since", "lately"],
                                  ["--until", "2026-99-99"]])
def test_cli_bad_filter_or_time_exits_125(cli, args):
    out = cli("events", "--stream=false", *args)
    assert out.returncode == 125
    assert out.stderr.startswith("Error: ") and "Traceback" not in out.stderr


def test_cli_stream_follows_until_interrupted(cli, store, busybox_tar):
    import signal

    cli("import", busybox_tar, "busybox")
    exe = os.path.join(os.path.dirname(sys.executable), "workbench")
    follower = subprocess.Popen([exe, "--root", store["root"], "--runroot", store["runroot"], "events",
                                 "--format", "{{.Status}} {{.Name}}"], stdout=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(0.5)  # it streams from now on
        cli("create", "--network", "none", "--name", "streamed", "busybox", "true")
        assert follower.stdout.readline() == "create streamed\n"  # flushed as it happens
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        cli("rm", "-f", "streamed")
