"""No daemon: containers outlive their creator, processes share one store, reboots are detected."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

from workbench import ContainerState, Runtime

S = ContainerState


def _python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


def test_container_outlives_the_process_that_started_it(rt, busybox, store):
    proc = _python(f"""
        from workbench import Runtime
        rt = Runtime({store['root']!r}, {store['runroot']!r})
        c = rt.run({busybox!r}, ["sh", "-c", "echo alive; sleep 100"], detach=True, name="orphan")
        print(c.id)
    """)
    assert proc.returncode == 0, proc.stderr
    ctr_id = proc.stdout.strip()
    fresh = Runtime(store["root"], store["runroot"])
    c = fresh.container("orphan")
    assert c.id == ctr_id
    assert c.state == S.RUNNING
    assert os.path.exists(f"/proc/{c.inspect()['State']['Pid']}")
    deadline = time.monotonic() + 5
    while "alive" not in c.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c.logs() == "alive\n"
    c.stop(timeout=0)
    assert c.wait() == 137


def test_two_processes_on_one_container_keep_a_consistent_state(rt, busybox, store):
    c = rt.run(busybox, ["sh", "-c", "trap 'exit 3' TERM; while true; do sleep 0.05; done"], detach=True)
    # Another process stops the container while this one keeps inspecting it.
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from workbench import Runtime
        rt = Runtime({store['root']!r}, {store['runroot']!r})
        rt.container({c.id!r}).stop(timeout=5)
    """)])
    seen = set()
    while child.poll() is None:
        data = c.inspect()
        seen.add(data["State"]["Status"])
        if data["State"]["Status"] in ("stopped", "exited"):
            assert data["State"]["ExitCode"] == 3
    assert child.returncode == 0
    assert seen <= {"running", "stopping", "stopped", "exited"}
    assert c.wait() == 3
    deadline = time.monotonic() + 5
    while c.state != S.EXITED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c.state == S.EXITED


def test_concurrent_starts_from_two_processes_start_it_once(rt, busybox, store):
    c = rt.create_container(busybox, ["sleep", "100"], name="race")
    code = f"""
        from workbench import Runtime, ContainerStateError
        rt = Runtime({store['root']!r}, {store['runroot']!r})
        try:
            rt.container("race").start()
            print("started")
        except ContainerStateError as exc:
            print("refused", exc)
    """
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = sorted(p.communicate(timeout=60)[0].split()[0] for p in procs)
    assert outputs == ["refused", "started"]
    assert c.state == S.RUNNING
    assert subprocess.run(["pgrep", "-f", f"conmon.*{c.id}"], capture_output=True, text=True).stdout.count("\n") == 1


def test_reboot_is_detected_and_states_are_reset(rt, busybox, store):
    running = rt.run(busybox, ["sleep", "100"], detach=True, name="was-running")
    created = rt.create_container(busybox, ["true"], name="was-created")
    created.init()
    gone = rt.run(busybox, ["sleep", "100"], detach=True, name="auto-rm", remove=True)
    # A reboot kills every process and wipes the tmpfs run root.
    for c in (running, created, gone):
        pid = c.inspect()["State"]["ConmonPid"]
        os.kill(pid, 9)
        rt.oci.kill(c.id, 9, all_processes=True)
    time.sleep(0.3)
    for c in (running, created, gone):
        rt.oci.delete(c.id)
        rt.layers.unmount(c.config.layer_id)
    shutil.rmtree(store["runroot"])
    after = Runtime(store["root"], store["runroot"])
    states = {c.name: (c.st.state, c.st.pid, c.st.conmon_pid) for c in after.containers(sync=False)}
    assert states == {"was-running": (S.EXITED, 0, 0), "was-created": (S.CONFIGURED, 0, 0)}
    again = after.container("was-running")
    again.start()
    assert again.state == S.RUNNING
    for c in after.containers():
        c.remove(force=True, timeout=0)
