"""Healthchecks on real containers: the checks and their record, the start period, timeouts, the
monitor that runs them every interval (and is gone with the container), on-failure actions."""

from __future__ import annotations

import os
import time

import pytest

from workbench import ContainerState as S
from workbench import InvalidArgument, WorkbenchError
from workbench.engine import health

SECOND = health.SECOND


@pytest.mark.parametrize("command, test", [
    ("pg_isready -U postgres", ["CMD-SHELL", "pg_isready -U postgres"]),
    ('["CMD", "true"]', ["CMD", "true"]), ('["CMD-SHELL", "exit 0"]', ["CMD-SHELL", "exit 0"]),
    ('["curl", "-f", "http://localhost/"]', ["CMD", "curl", "-f", "http://localhost/"]), ("none", ["NONE"])])
def test_health_commands_parse(command, test):
    assert health.parse_test(command) == test


def test_the_flags_are_checked_and_fill_in_the_image_check():
    image = {"Test": ["CMD-SHELL", "image-check"], "Interval": 5 * SECOND, "Retries": 7}
    check, action = health.config(image, timeout="2s")
    assert check == {"Test": ["CMD-SHELL", "image-check"], "Interval": 5 * SECOND, "Timeout": 2 * SECOND,
                     "StartPeriod": 0, "Retries": 7} and action == "none"
    assert health.config(image, disabled=True) == ({}, "none")
    assert health.config(image, cmd="none") == ({}, "none")
    assert health.config(None, cmd="true", interval="disable")[0]["Interval"] == 0
    for options, message in (({"cmd": "true", "interval": "soon"}, 'invalid --health-interval "soon"'),
                             ({"cmd": "true", "timeout": "10ms"}, "--health-timeout must be at least 1 second"),
                             ({"cmd": "true", "retries": 0}, "--health-retries must be at least 1"),
                             ({"cmd": "true", "on_failure": "explode"}, 'invalid --health-on-failure "explode"'),
                             ({"interval": "5s"}, "need a healthcheck command"),
                             ({"cmd": "[1, 2]"}, "not a JSON array of strings"),
                             ({"cmd": "true", "disabled": True}, "--no-healthcheck conflicts")):
        with pytest.raises(InvalidArgument, match=message):
            health.config(None, **options)


def test_checks_make_a_container_healthy_or_after_retries_unhealthy(rt, busybox):
    c = rt.run(busybox, ["sleep", "100"], detach=True, network="none", health_cmd="test -e /tmp/ok",
               health_interval="disable", health_retries=2)
    assert c.inspect()["State"]["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert health.run(c) == "starting"  # one failure of two allowed
    assert health.run(c) == "unhealthy"
    c.exec(["sh", "-c", "echo ready > /tmp/ok"])
    assert health.run(c) == "healthy"
    for _ in range(4):
        health.run(c)
    state = c.inspect()["State"]["Health"]
    assert (state["Status"], state["FailingStreak"], len(state["Log"])) == ("healthy", 0, health.LOG_ENTRIES)
    assert [entry["ExitCode"] for entry in state["Log"]] == [0] * 5
    assert c.inspect()["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "test -e /tmp/ok"]


def test_failures_in_the_start_period_do_not_count(rt, busybox):
    c = rt.run(busybox, ["sleep", "100"], detach=True, network="none", health_cmd='["CMD", "false"]',
               health_interval="disable", health_retries=1, health_start_period="1h")
    assert [health.run(c) for _ in range(3)] == ["starting"] * 3
    assert c.inspect()["State"]["Health"]["FailingStreak"] == 0


def test_a_check_that_hangs_is_killed_at_its_timeout(rt, busybox):
    c = rt.run(busybox, ["sleep", "100"], detach=True, network="none", health_cmd="sleep 30; true",
               health_interval="disable", health_timeout="1s", health_retries=1)
    started = time.monotonic()
    assert health.run(c) == "unhealthy"
    assert time.monotonic() - started < 5
    [entry] = c.inspect()["State"]["Health"]["Log"]
    assert entry["ExitCode"] == -1 and "exceeded timeout of 1s" in entry["Output"]
    assert "sleep 30" not in c.exec(["ps", "-o", "args"]).stdout.decode()  # killed in the container too


def _monitors(c) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"workbench-health" in argv and c.id.encode() in argv:
            found.append(int(pid))
    return found


def test_the_monitor_checks_every_interval_and_goes_with_the_container(rt, busybox, until):
    c = rt.run(busybox, ["sh", "-c", "sleep 1.5; touch /tmp/ok; sleep 100"], detach=True, network="none",
               health_cmd="test -e /tmp/ok", health_interval="1s", health_retries=5)
    assert until(lambda: len(_monitors(c)) == 1)  # its command line is there once it runs
    assert until(lambda: health.status(c)["Status"] == "healthy", timeout=10)
    c.pause()
    assert _monitors(c) == []  # no checks of a frozen container
    c.unpause()
    assert until(lambda: len(_monitors(c)) == 1)
    c.stop(timeout=0)
    assert _monitors(c) == [] and c.inspect()["State"]["Health"]["Status"] == "healthy"
    c.start()
    assert health.status(c)["Status"] == "starting" and until(lambda: len(_monitors(c)) == 1)
    c.remove(force=True, timeout=0)
    assert _monitors(c) == []
    brief = rt.run(busybox, ["sleep", "100"], detach=True, network="none", health_cmd="true", health_interval="1s")
    brief.remove(force=True, timeout=0)  # at once: before its monitor has even exec'd its shell
    time.sleep(0.3)
    assert _monitors(brief) == []


def test_an_unhealthy_container_can_be_killed_by_its_on_failure_action(rt, busybox, until):
    c = rt.run(busybox, ["sleep", "100"], detach=True, network="none", health_cmd="false", health_interval="1s",
               health_retries=1, health_on_failure="kill")
    assert until(lambda: c.state == S.EXITED, timeout=15)
    assert c.inspect()["State"]["Health"]["Status"] == "unhealthy" and _monitors(c) == []


@pytest.mark.parametrize("action", ["stop", "restart"])
def test_on_failure_stop_and_restart_run_to_the_end(rt, busybox, until, action):
    """The monitor's own check stops or restarts the container: ending the monitor must not end
    the check that acts."""
    c = rt.run(busybox, ["sh", "-c", "echo run; sleep 100"], detach=True, network="none",
               health_cmd="test ! -e /tmp/bad", health_interval="1s", health_retries=1, health_on_failure=action,
               stop_timeout=0)
    c.exec(["touch", "/tmp/bad"])
    if action == "stop":
        assert until(lambda: c.state == S.EXITED, timeout=15)
        assert _monitors(c) == []
    else:  # a new run of the process (its line again), checked by a new monitor
        assert until(lambda: c.logs().count("run") >= 2, timeout=15)
        assert until(lambda: c.state == S.RUNNING and len(_monitors(c)) == 1, timeout=10)


def test_no_healthcheck(rt, busybox):
    c = rt.run(busybox, ["sleep", "100"], detach=True, network="none")
    assert c.inspect()["State"]["Health"] == {"Status": "", "FailingStreak": 0, "Log": None}
    assert c.inspect()["Config"]["Healthcheck"] is None
    with pytest.raises(WorkbenchError, match="has no defined healthcheck"):
        health.run(c)
    stopped = rt.create_container(busybox, ["true"], health_cmd="true")
    with pytest.raises(WorkbenchError, match="is not running"):
        health.run(stopped)
