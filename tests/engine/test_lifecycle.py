"""The container lifecycle with real containers: runc, conmon, overlay, SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from workbench import (ContainerState, ContainerStateError, InvalidArgument, NoSuchContainer,
                       OCIRuntimeNotFound, OCIRuntimePermissionDenied)

S = ContainerState


@pytest.mark.parametrize("code", [0, 1, 3])
def test_run_returns_exit_code_and_both_streams(rt, busybox, code):
    result = rt.run(busybox, ["sh", "-c", f"echo out; echo err >&2; exit {code}"], remove=True)
    assert result.exit_code == code
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    assert rt.containers() == []


def test_missing_command_is_not_found_and_leaves_container_created(rt, busybox):
    c = rt.create_container(busybox, ["/no/such/binary"])
    with pytest.raises(OCIRuntimeNotFound) as info:
        c.start()
    assert info.value.exit_code == 127
    assert c.state == S.CONFIGURED
    assert not os.path.ismount(rt.layers.merged(c.config.layer_id))


def test_non_executable_command_is_permission_denied(rt, busybox):
    with pytest.raises(OCIRuntimePermissionDenied) as info:
        rt.run(busybox, ["/etc/passwd"], remove=True)
    assert info.value.exit_code == 126
    assert rt.containers() == []


def test_image_without_command_is_refused_before_anything_is_made(rt, busybox):
    with pytest.raises(InvalidArgument, match="no command or entrypoint provided"):
        rt.create_container(busybox)
    assert rt.containers() == []
    assert sorted(os.listdir(os.path.join(rt.root, "containers"))) == []


def test_state_walk_create_init_start_pause_unpause_stop_cleanup(rt, busybox, until):
    c = rt.create_container(busybox, ["sleep", "100"], name="walk")
    assert c.state == S.CONFIGURED
    c.init()
    assert c.state == S.CREATED
    assert c.inspect()["State"]["ConmonPid"] > 0
    c.start()
    assert c.state == S.RUNNING
    pid = c.inspect()["State"]["Pid"]
    assert os.path.exists(f"/proc/{pid}")
    c.pause()
    assert c.state == S.PAUSED and c.inspect()["State"]["Paused"] is True
    c.unpause()
    assert c.state == S.RUNNING
    c.stop(timeout=0)
    assert c.state in (S.STOPPED, S.EXITED)
    assert c.wait() == 137
    assert until(lambda: c.state == S.EXITED)


ILLEGAL = {
    S.CONFIGURED: ["stop", "kill", "pause", "unpause", "cleanup_ok"],
    S.CREATED: ["init", "kill", "pause", "unpause"],
    S.RUNNING: ["init", "start", "unpause", "cleanup", "remove"],
    S.PAUSED: ["init", "start", "pause", "stop", "restart", "cleanup", "remove"],
    S.EXITED: ["kill", "pause", "unpause"],
}


def _make_in_state(rt, image, state, until):
    c = rt.create_container(image, ["sleep", "100"])
    if state == S.CREATED:
        c.init()
    elif state in (S.RUNNING, S.PAUSED):
        c.start()
        if state == S.PAUSED:
            c.pause()
    elif state == S.EXITED:
        c.start()
        c.kill()
        c.wait()
        assert until(lambda: c.state == S.EXITED)
    assert c.state == state
    return c


@pytest.mark.parametrize("state", list(ILLEGAL))
def test_illegal_transitions_raise_and_change_nothing(rt, busybox, state, until):
    c = _make_in_state(rt, busybox, state, until)
    calls = {
        "init": c.init, "start": c.start, "stop": c.stop, "kill": c.kill, "pause": c.pause,
        "unpause": c.unpause, "restart": c.restart, "cleanup": c.cleanup, "remove": c.remove,
    }
    for op in ILLEGAL[state]:
        if op == "cleanup_ok":
            c.cleanup()  # legal and a no-op on a configured container
            continue
        with pytest.raises(ContainerStateError, match="container state improper|already running"):
            calls[op]()
        assert c.state == state, op


def test_stop_of_an_initialized_container_returns_it_to_created_and_unmounts(rt, busybox, until):
    c = _make_in_state(rt, busybox, S.CREATED, until)
    c.stop()
    assert c.state == S.CONFIGURED
    assert not os.path.ismount(rt.layers.merged(c.config.layer_id))
    assert rt.oci.state(c.id) is None


def test_stop_is_idempotent_on_exited(rt, busybox, until):
    c = _make_in_state(rt, busybox, S.EXITED, until)
    c.stop()
    assert c.state == S.EXITED


def test_stop_escalates_to_sigkill_after_timeout(rt, busybox):
    # `sleep` as PID 1 has no SIGTERM handler, so only SIGKILL ends it.
    c = rt.run(busybox, ["sleep", "100"], detach=True)
    start = time.monotonic()
    c.stop(timeout=1)
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 5
    assert c.wait() == 137


def test_stop_with_trapped_sigterm_exits_promptly_with_its_code(rt, busybox, until):
    c = rt.run(busybox, ["sh", "-c", "trap 'exit 42' TERM; echo ready; while true; do sleep 0.05; done"],
               detach=True)
    assert until(lambda: "ready" in c.logs())
    start = time.monotonic()
    c.stop(timeout=10)
    assert time.monotonic() - start < 3
    assert c.wait() == 42


def test_custom_stop_signal(rt, busybox, until):
    c = rt.run(busybox, ["sh", "-c", "trap 'exit 7' USR1; echo ready; while true; do sleep 0.05; done"],
               detach=True, stop_signal="SIGUSR1")
    assert c.inspect()["Config"]["StopSignal"] == 10
    assert until(lambda: "ready" in c.logs())
    c.stop(timeout=10)
    assert c.wait() == 7


@pytest.mark.parametrize("sig,code", [("TERM", 42), ("SIGTERM", 42), ("15", 42), (9, 137), ("KILL", 137)])
def test_kill_accepts_names_and_numbers(rt, busybox, sig, code, until):
    c = rt.run(busybox, ["sh", "-c", "trap 'exit 42' TERM; echo ready; while true; do sleep 0.05; done"],
               detach=True)
    assert until(lambda: "ready" in c.logs())
    c.kill(sig)
    assert c.wait() == code


def test_kill_with_a_bad_signal_name_changes_nothing(rt, busybox):
    c = rt.run(busybox, ["sleep", "100"], detach=True)
    with pytest.raises(InvalidArgument, match="invalid signal: NOPE"):
        c.kill("NOPE")
    assert c.state == S.RUNNING


def test_wait_returns_exit_code_even_after_removal(rt, busybox):
    c = rt.run(busybox, ["sh", "-c", "exit 5"], detach=True)
    assert c.wait() == 5
    ctr_id = c.id
    c.remove(force=True)
    with pytest.raises(NoSuchContainer):
        rt.container(ctr_id)
    assert c.wait() == 5


def test_restart_from_running_and_from_exited(rt, busybox, until):
    c = rt.run(busybox, ["sh", "-c", "echo started; sleep 100"], detach=True)
    first_pid = c.inspect()["State"]["Pid"]
    assert until(lambda: c.logs().count("started") == 1)  # else the restart may kill it before its echo
    c.restart(timeout=0)
    assert c.state == S.RUNNING
    assert c.inspect()["State"]["Pid"] != first_pid
    assert until(lambda: c.logs().count("started") == 2)  # the kill must not beat the second echo
    c.kill()
    c.wait()
    assert until(lambda: c.state == S.EXITED)
    c.restart()
    assert c.state == S.RUNNING
    assert c.inspect()["RestartCount"] == 0  # counts restarts by the restart policy only, as Podman
    assert until(lambda: c.logs().count("started") == 3)


def test_start_again_after_exit(rt, busybox, until):
    c = rt.run(busybox, ["sh", "-c", "echo run"], detach=True)
    assert c.wait() == 0
    c.start()
    assert c.wait() == 0
    assert until(lambda: c.logs() == "run\nrun\n")


def test_auto_remove_container_is_removed_by_the_exit_command(rt, busybox, until):
    c = rt.run(busybox, ["true"], detach=True, remove=True)
    ctr_id = c.id
    assert until(lambda: not rt.db.lookup_container(ctr_id))
    assert not os.path.exists(os.path.join(rt.root, "containers", ctr_id))
    assert c.wait() == 0


def _exit_command(rt, ctr_id, **popen):
    """conmon's exit command for `ctr_id`, started by hand; a Python it starts reports its imports."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    return subprocess.Popen(rt.exit_command(ctr_id), env=env, stderr=subprocess.PIPE, text=True, **popen)


def test_the_exit_command_waits_for_a_waiting_run_then_skips_the_cli(rt, busybox):
    c = rt.create_container(busybox, ["true"], remove=True)
    with c.claim_cleanup():
        c.start()
        assert c.wait() == 0
        command = _exit_command(rt, c.id)
        time.sleep(0.5)
        assert command.poll() is None, "the exit command went ahead while a waiter held the claim"
        c.remove(force=True)
        assert os.path.exists(os.path.join(rt.runroot, "claims", c.id)) is False  # rm forgets it
    _, imports = command.communicate(timeout=5)
    assert command.returncode == 0
    assert "import time" not in imports, "a Python was started for a removed container"


def test_the_exit_command_cleans_up_a_detached_container(rt, busybox, until):
    c = rt.run(busybox, ["true"], detach=True)
    assert until(lambda: c.state == S.EXITED and not os.path.ismount(rt.layers.merged(c.config.layer_id)))
    assert rt.oci.state(c.id) is None


def test_the_exit_command_cleans_up_once_a_claimant_dies(rt, busybox, until):
    c = rt.create_container(busybox, ["true"], remove=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom workbench.engine.exit_command import Claim\n"
         "Claim(sys.argv[1], sys.argv[2]).__enter__(); print('held', flush=True); time.sleep(60)",
         rt.runroot, c.id], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        c.start()  # conmon's own exit command now waits for the holder
        time.sleep(0.5)
        assert rt.db.lookup_container(c.id), "removed while the claim was held"
    finally:
        holder.kill()
        holder.wait()
    assert until(lambda: not rt.db.lookup_container(c.id), timeout=10)
    assert _host_traces(rt, c.id) == []


def test_runs_keep_their_output_and_leave_no_claim(rt, busybox):
    """rt.run holds the claim until its container is removed, so the exit command can no longer
    remove the container (and its logs) first; the claim files go with the containers."""
    results = [rt.run(busybox, ["sh", "-c", f"echo {i}"], remove=True) for i in range(5)]
    assert [r.stdout for r in results] == [f"{i}\n".encode() for i in range(5)]
    assert os.listdir(os.path.join(rt.runroot, "claims")) == []


def _host_traces(rt, ctr_id):
    traces = []
    with open("/proc/self/mountinfo") as f:
        if ctr_id in f.read():
            traces.append("mount")
    ps = subprocess.run(["pgrep", "-f", ctr_id], capture_output=True, text=True).stdout.split()
    if ps:
        traces.append(f"processes {ps}")
    if rt.oci.state(ctr_id) is not None:
        traces.append("runc state")
    for path in (os.path.join(rt.root, "containers", ctr_id), os.path.join(rt.runroot, "containers", ctr_id),
                 os.path.join(rt.exit_dir, ctr_id), rt.layers.dir(ctr_id),
                 os.path.join(rt.runroot, "locks", ctr_id + ".lock"), os.path.join(rt.runroot, "claims", ctr_id)):
        if os.path.exists(path):
            traces.append(path)
    if rt.db.query("SELECT id FROM containers WHERE id = ?", (ctr_id,)):
        traces.append("containers row")
    if rt.db.query("SELECT id FROM layers WHERE id = ?", (ctr_id,)):
        traces.append("layers row")
    for cg in ("memory", "pids", "cpu"):
        if os.path.exists(f"/sys/fs/cgroup/{cg}/workbench_parent/workbench-{ctr_id}"):
            traces.append(f"cgroup {cg}")
    return traces


@pytest.mark.parametrize("state", [S.CONFIGURED, S.CREATED, S.RUNNING, S.PAUSED, S.EXITED])
def test_remove_force_leaves_nothing_behind(rt, busybox, state, until):
    c = _make_in_state(rt, busybox, state, until)
    ctr_id = c.id
    c.remove(force=True, timeout=0)
    assert until(lambda: _host_traces(rt, ctr_id) == [], timeout=5), _host_traces(rt, ctr_id)


def test_logs_keep_partial_lines_and_both_streams(rt, busybox):
    c = rt.run(busybox, ["sh", "-c", "printf a; sleep 0.2; printf 'b\\n'; sleep 0.1; echo e >&2; sleep 0.1; printf tail"], detach=True)
    assert c.wait() == 0
    assert c.logs() == "ab\ne\ntail"
    records = open(c.log_path, "rb").read().splitlines()
    assert any(b" stdout P a" in r for r in records)
    assert c.logs(tail=1) == "tail"


def test_artifacts_round_trip(rt, busybox):
    from workbench import NoSuchArtifact

    c = rt.create_container(busybox, ["true"])
    c.add_artifact("notes.txt", b"hello")
    assert c.get_artifact("notes.txt") == b"hello"
    c.remove_artifact("notes.txt")
    with pytest.raises(NoSuchArtifact):
        c.get_artifact("notes.txt")
    with pytest.raises(InvalidArgument):
        c.add_artifact("../escape", b"x")


def test_batch_holds_the_lock_once(rt, busybox):
    c = rt.create_container(busybox, ["sleep", "100"])

    def steps(ctr):
        ctr.init()
        ctr.start()
        return ctr.st.state

    assert c.batch(steps) == S.RUNNING
    assert c.state == S.RUNNING


def test_name_conflict_and_lookup_by_prefix(rt, busybox):
    from workbench import ContainerExists

    c = rt.create_container(busybox, ["true"], name="dup")
    with pytest.raises(ContainerExists, match='name "dup" is already in use'):
        rt.create_container(busybox, ["true"], name="dup")
    assert rt.container(c.id[:8]).id == c.id
    assert rt.container("dup").id == c.id
    with pytest.raises(NoSuchContainer, match='no container with name or ID "nope" found'):
        rt.container("nope")
    assert len(rt.containers()) == 1


def test_inspect_is_podman_shaped(rt, busybox):
    c = rt.run(busybox, ["sh", "-c", "exit 2"], detach=True, name="shape", env={"A": "1"}, labels={"k": "v"},
               workdir="/tmp", stop_timeout=3)
    c.wait()
    data = c.inspect()
    for key in ("Id", "Name", "Created", "State", "Config", "Image", "ImageName", "HostConfig", "Mounts",
                "LogPath", "OCIRuntime"):
        assert key in data, key
    assert data["Name"] == "shape"
    assert data["State"]["ExitCode"] == 2
    assert data["Config"]["Cmd"] == ["sh", "-c", "exit 2"]
    assert "A=1" in data["Config"]["Env"]
    assert data["Config"]["Labels"] == {"k": "v"}
    assert data["Config"]["WorkingDir"] == "/tmp"
    assert data["Config"]["StopTimeout"] == 3
    assert data["ImageName"] == busybox
    assert data["OCIRuntime"] == "runc"
    assert "CAP_CHOWN" in data["EffectiveCaps"] and len(data["BoundingCaps"]) == 11


def test_containers_can_be_listed_by_id(rt, busybox):
    a, b = (rt.create_container(busybox, ["true"]) for _ in range(2))
    assert [c.id for c in rt.containers(ids=[b.id])] == [b.id]
    assert [c.id for c in rt.containers(ids=[a.id, b.id, "0" * 64])] == [a.id, b.id]
    assert rt.containers(ids=[]) == []
