"""Restart policies on real containers: who restarts them (the exit command conmon runs, or the
process waiting), how often, and when not (a stop or kill by the user, a clean exit on-failure)."""

from __future__ import annotations

import time

import pytest

from workbench import ContainerState as S
from workbench import InvalidArgument
from workbench.engine import restart_policy


@pytest.mark.parametrize("text, parsed", [(None, ("", 0)), ("no", ("no", 0)), ("always", ("always", 0)),
                                          ("unless-stopped", ("unless-stopped", 0)),
                                          ("on-failure", ("on-failure", 0)), ("on-failure:3", ("on-failure", 3))])
def test_policies_parse(text, parsed):
    assert restart_policy.parse(text) == parsed


@pytest.mark.parametrize("text, message", [
    ("bogus", '"bogus" is not a valid restart policy'), ("ALWAYS", '"ALWAYS" is not a valid restart policy'),
    ("always:3", "retries can only be specified with on-failure"),
    ("on-failure:x", "parsing restart policy retry count"), ("on-failure:-1", "greater than 0"),
    ("on-failure:1:2", "may specify retries at most once")])
def test_bad_policies_are_refused_with_podman_messages(text, message):
    with pytest.raises(InvalidArgument, match=message):
        restart_policy.parse(text)


def test_on_failure_restarts_a_failing_detached_container_up_to_its_limit(rt, busybox, until):
    """Detached: conmon's exit command applies the policy, with no engine process around."""
    c = rt.run(busybox, ["sh", "-c", "echo run; exit 3"], detach=True, restart="on-failure:2")
    assert until(lambda: c.state == S.EXITED and c.inspect()["RestartCount"] == 2 and c.logs().count("run") == 3,
                 timeout=15)
    time.sleep(0.5)  # and no further
    doc = c.inspect()
    assert (doc["State"]["Status"], doc["State"]["ExitCode"], doc["RestartCount"]) == ("exited", 3, 2)
    assert doc["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    assert c.logs().count("run") == 3


def test_on_failure_leaves_a_clean_exit_alone(rt, busybox):
    c = rt.run(busybox, ["true"], detach=True, restart="on-failure")
    assert c.wait() == 0
    assert c.state == S.EXITED and c.inspect()["RestartCount"] == 0


def test_always_restarts_after_a_clean_exit_until_the_user_stops_it(rt, busybox, until):
    c = rt.run(busybox, ["sh", "-c", "echo run; sleep 0.2"], detach=True, restart="always")
    assert until(lambda: c.inspect()["RestartCount"] >= 2 and c.logs().count("run") >= 3, timeout=15)
    c.stop(timeout=0)
    c.cleanup()
    count = c.inspect()["RestartCount"]
    time.sleep(1)
    assert c.state == S.EXITED and c.inspect()["RestartCount"] == count
    c.start()  # a start by the user counts from zero
    assert c.inspect()["RestartCount"] == 0
    c.kill()  # a kill by the user is not an exit to restart after either
    c.wait()
    time.sleep(0.5)
    assert c.state == S.EXITED


def test_the_waiting_process_applies_the_policy_itself(rt, busybox, until):
    """wait() cleans up an exited container at once: it restarts one whose policy says so, and
    returns the exit code of the run that ended."""
    c = rt.create_container(busybox, ["sh", "-c", "exit 4"], restart="on-failure:1")
    with c.claim_cleanup():  # as an attached run: the exit command leaves the clean-up to us
        c.start()
        assert c.wait() == 4
        assert c.inspect()["RestartCount"] == 1 and c.state in (S.RUNNING, S.STOPPED, S.EXITED)
        assert c.wait() == 4
    assert until(lambda: c.state == S.EXITED)
    assert c.inspect()["RestartCount"] == 1


def test_no_policy_means_no_restart(rt, busybox):
    for policy in (None, "no"):
        c = rt.run(busybox, ["sh", "-c", "exit 1"], detach=True, restart=policy)
        assert c.wait() == 1
        time.sleep(0.3)
        assert c.state == S.EXITED and c.inspect()["RestartCount"] == 0


def test_a_policy_conflicts_with_remove(rt, busybox):
    with pytest.raises(InvalidArgument, match="the --rm option conflicts with --restart"):
        rt.create_container(busybox, ["true"], remove=True, restart="always")
    assert rt.containers() == []
    rt.create_container(busybox, ["true"], remove=True, restart="no")
