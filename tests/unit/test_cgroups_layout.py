"""cgroups.py against fake hierarchies: v2 (one unified tree) and v1 (a tree per controller)."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from workbench.engine import cgroups


@pytest.fixture
def v2(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "ROOT", str(tmp_path))
    monkeypatch.setattr(cgroups, "is_v2", lambda: True)
    (tmp_path / "cgroup.procs").write_text("")
    return tmp_path


@pytest.fixture
def v1(tmp_path, monkeypatch):
    mounts = {name: str(tmp_path / name) for name in ("cpu", "memory", "cpuset", "pids")}
    mounts["name=systemd"] = str(tmp_path / "systemd")
    for path in set(mounts.values()):
        os.makedirs(path)
        open(os.path.join(path, "cgroup.procs"), "w").close()
    (tmp_path / "cpuset" / "cpuset.cpus").write_text("0-3\n")
    (tmp_path / "cpuset" / "cpuset.mems").write_text("0\n")
    monkeypatch.setattr(cgroups, "is_v2", lambda: False)
    monkeypatch.setattr(cgroups, "_v1_mounts", lambda: mounts)
    return tmp_path


@pytest.fixture
def kernel_mkdir(monkeypatch):
    """mkdir as in a cgroup file system: the new directory has its control files (empty cpusets)."""
    real_makedirs = os.makedirs

    def makedirs(path, exist_ok=False):
        real_makedirs(path, exist_ok=exist_ok)
        for directory in (os.path.dirname(path), path):
            names = ["cgroup.procs"] + (["cpuset.cpus", "cpuset.mems"] if "/cpuset/" in directory + "/" else [])
            for name in names:
                if not os.path.exists(os.path.join(directory, name)):
                    open(os.path.join(directory, name), "w").close()
    monkeypatch.setattr(cgroups.os, "makedirs", makedirs)


def test_v2_paths_are_in_the_unified_tree(v2):
    cg = cgroups.container_cgroup("abc")
    assert cg == "/workbench_parent/workbench-abc"
    assert cgroups.controller_dir("memory", cg) == str(v2 / "workbench_parent" / "workbench-abc")
    assert cgroups.controller_dir("pids", cg) == cgroups.controller_dir("cpu", cg)
    assert cgroups.v1_controllers() == []


def test_v2_move_creates_the_leaf_and_writes_the_pid(v2, kernel_mkdir):
    cgroups.move_pid(cgroups.conmon_cgroup(), 4242)
    assert (v2 / "workbench_parent" / "conmon" / "cgroup.procs").read_text() == "4242"


def test_v1_paths_are_per_controller(v1):
    cg = cgroups.container_cgroup("abc")
    assert cgroups.controller_dir("memory", cg) == str(v1 / "memory" / "workbench_parent" / "workbench-abc")
    assert cgroups.controller_dir("blkio", cg) is None  # not mounted in this fake


def test_v1_move_fills_a_new_cpuset_from_its_parents(v1, kernel_mkdir):
    cgroups.move_pid(cgroups.conmon_cgroup(), 77)
    for controller in ("cpu", "memory", "cpuset", "pids", "systemd"):
        assert (v1 / controller / "workbench_parent" / "conmon" / "cgroup.procs").read_text() == "77"
    assert (v1 / "cpuset" / "workbench_parent" / "cpuset.cpus").read_text() == "0-3"
    assert (v1 / "cpuset" / "workbench_parent" / "conmon" / "cpuset.mems").read_text() == "0"


def test_layout_of_this_machine_is_known():
    assert cgroups.layout() in ("v1", "v2", "hybrid")


def _own_cgroups() -> dict[str, str]:
    with open("/proc/thread-self/cgroup") as f:
        return {names: path for _, names, path in (line.rstrip("\n").split(":", 2) for line in f)}


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_priming_writes_a_thread_into_its_own_cgroup(layout, request, monkeypatch):
    """prime_attach_lock's write moves nothing: the thread's (v2: the process's) own cgroup; the
    thread blocks every signal, so an interrupt always reaches the main thread."""
    root = request.getfixturevalue(layout)
    written: list[tuple[str, str, int]] = []
    masks: list[set[int]] = []
    monkeypatch.setattr(cgroups, "containers_have_cgroups", lambda: True)
    monkeypatch.setattr(cgroups, "_write", lambda path, text: written.append((path, text, threading.get_native_id()))
                        or masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    own = _own_cgroups()
    cgroups.prime_attach_lock()
    for thread in threading.enumerate():
        if thread.name == "cgroup-prime":
            thread.join(5)
    assert len(written) == 1
    assert {signal.SIGINT, signal.SIGTERM} <= masks[0]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the caller's mask is back
    path, text, writer = written[0]
    if layout == "v2":
        assert (path, text) == (os.path.join(str(root), own[""].lstrip("/"), "cgroup.procs"), str(os.getpid()))
    else:
        mounts = cgroups._v1_mounts()
        names = next(n for n in own if n in mounts)
        assert (path, text) == (os.path.join(mounts[names], own[names].lstrip("/"), "tasks"), str(writer))
        assert writer != threading.get_native_id()  # the priming thread, not the caller


def test_priming_is_skipped_without_cgroups_and_quiet_when_refused(monkeypatch):
    monkeypatch.setattr(cgroups, "containers_have_cgroups", lambda: False)
    monkeypatch.setattr(threading, "Thread", lambda *a, **k: pytest.fail("primed without cgroups"))
    cgroups.prime_attach_lock()
    monkeypatch.undo()
    monkeypatch.setattr(cgroups, "is_v2", lambda: False)
    monkeypatch.setattr(cgroups, "_v1_mounts", lambda: {"pids": "/nonexistent", "name=systemd": "/nonexistent"})
    cgroups._rewrite_own_cgroup()  # /nonexistent/<path>/tasks is refused: no error
