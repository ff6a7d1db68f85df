"""cgroup and process limits on real containers: enforced, reported, updated, refused when wrong."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

import pytest

from workbench import ContainerStateError, InvalidArgument, OCIRuntimeError
from workbench.engine import cgroups

BUSY_LOOP = ["sh", "-c", "while :; do :; done"]


def _cgroup_file(c, controller: str, name: str) -> str:
    directory = cgroups.controller_dir(controller, cgroups.container_cgroup(c.id))
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()


def _v1_or_v2(v1: str, v2: str) -> str:
    return v2 if cgroups.is_v2() else v1


def test_memory_limit_is_enforced_and_oom_reported(rt, busybox):
    c = rt.create_container(busybox, ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], memory="16m")
    c.start()
    assert c.wait(timeout=30) == 137
    state = c.inspect()["State"]
    assert state["OOMKilled"] is True
    assert state["ExitCode"] == 137


def test_a_process_within_its_limit_is_not_oom_killed(rt, busybox):
    c = rt.create_container(busybox, ["dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=1"], memory="32m")
    c.start()
    assert c.wait(timeout=30) == 0
    assert c.inspect()["State"]["OOMKilled"] is False


def test_limits_reach_the_cgroup_and_inspect(rt, busybox):
    c = rt.create_container(busybox, ["sleep", "100"], memory="32m", memory_reservation="16m", cpus=0.5,
                            cpu_shares=512, pids_limit=100, cpuset_cpus="0")
    c.start()
    if cgroups.is_v2():
        assert _cgroup_file(c, "memory", "memory.max") == str(32 << 20)
        assert _cgroup_file(c, "cpu", "cpu.max") == "50000 100000"
    else:
        assert _cgroup_file(c, "memory", "memory.limit_in_bytes") == str(32 << 20)
        assert _cgroup_file(c, "memory", "memory.memsw.limit_in_bytes") == str(64 << 20)  # twice, as Podman
        assert _cgroup_file(c, "memory", "memory.soft_limit_in_bytes") == str(16 << 20)
        assert _cgroup_file(c, "cpu", "cpu.cfs_quota_us") == "50000"
        assert _cgroup_file(c, "cpu", "cpu.shares") == "512"
    assert _cgroup_file(c, "pids", "pids.max") == "100"
    assert _cgroup_file(c, "cpuset", "cpuset.cpus") == "0"
    host = c.inspect()["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["MemoryReservation"]) == (32 << 20, 64 << 20, 16 << 20)
    assert (host["NanoCpus"], host["CpuQuota"], host["CpuPeriod"], host["CpuShares"]) == (500_000_000, 50000, 100000, 512)
    assert (host["PidsLimit"], host["CpusetCpus"]) == (100, "0")


def test_default_pids_limit_is_podmans(rt, busybox):
    c = rt.create_container(busybox, ["sleep", "100"])
    c.start()
    assert _cgroup_file(c, "pids", "pids.max") == "2048"
    assert c.inspect()["HostConfig"]["PidsLimit"] == 2048


def test_cpu_quota_throttles_a_busy_loop(rt, busybox):
    c = rt.create_container(busybox, BUSY_LOOP, cpus=0.2)
    c.start()
    usage_file = _v1_or_v2("cpuacct.usage", "cpu.stat")
    controller = _v1_or_v2("cpuacct", "cpu")

    def cpu_seconds() -> float:
        text = _cgroup_file(c, controller, usage_file)
        if cgroups.is_v2():
            return int(dict(line.split() for line in text.splitlines())["usage_usec"]) / 1e6
        return int(text) / 1e9
    time.sleep(0.3)
    first, start = cpu_seconds(), time.monotonic()
    time.sleep(1.5)
    used = (cpu_seconds() - first) / (time.monotonic() - start)
    assert 0.05 < used < 0.3, f"a container limited to 0.2 CPUs used {used:.2f}"
    stat = dict(line.split() for line in _cgroup_file(c, "cpu", "cpu.stat").splitlines())
    assert int(stat["nr_throttled"]) > 0


def test_pids_limit_stops_a_fork_bomb(rt, busybox):
    # the bomb runs in a subshell, which dies at its first failed fork; the container's main
    # process then becomes a sleep (exec, no fork), so the container outlives the bomb
    bomb = "(for i in $(seq 60); do sleep 60 & done); exec sleep 60"
    c = rt.create_container(busybox, ["sh", "-c", bomb], pids_limit=20)
    c.start()
    deadline = time.monotonic() + 10
    while "can't fork" not in c.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "can't fork" in c.logs()
    assert c.state.value == "running"
    assert int(_cgroup_file(c, "pids", "pids.current")) <= 20


def test_update_takes_effect_on_a_running_container(rt, busybox):
    c = rt.create_container(busybox, ["sleep", "100"], memory="32m", cpus=0.5)
    c.start()
    c.update(memory="64m", pids_limit=4, cpus=1.5)
    memory_file = _v1_or_v2("memory.limit_in_bytes", "memory.max")
    assert _cgroup_file(c, "memory", memory_file) == str(64 << 20)
    assert _cgroup_file(c, "pids", "pids.max") == "4"
    host = c.inspect()["HostConfig"]
    assert (host["Memory"], host["MemorySwap"], host["PidsLimit"], host["NanoCpus"]) == (
        64 << 20, 128 << 20, 4, 1_500_000_000)
    # The new pids limit is enforced: sleep + sh + 2 more fit, the rest cannot fork (or, when the
    # limit is reached first by the runtime's own helper process, the exec itself cannot start).
    try:
        result = c.exec(["sh", "-c", "for i in 1 2 3 4 5; do sleep 5 & done; wait"])
    except OCIRuntimeError as exc:
        assert "init-p" in str(exc) or "fork" in str(exc) or "resource temporarily unavailable" in str(exc).lower()
    else:  # the shell cannot fork, or runc's own helper could not start a thread in the cgroup
        output = (result.stdout + result.stderr).decode().lower()
        assert "can't fork" in output or "resource temporarily unavailable" in output, output
    c.update(cpus=0)  # lifted: back to no quota
    if not cgroups.is_v2():
        assert _cgroup_file(c, "cpu", "cpu.cfs_quota_us") == "-1"
    assert c.inspect()["HostConfig"]["NanoCpus"] == 0


def test_update_is_checked_whole_and_leaves_limits_alone_when_refused(rt, busybox):
    c = rt.create_container(busybox, ["sleep", "100"], memory="32m")
    c.start()
    with pytest.raises(InvalidArgument, match="memoryswap limit should be larger"):
        c.update(memory="1g", memory_swap="500m")
    with pytest.raises(InvalidArgument, match="no resource limits"):
        c.update()
    assert c.inspect()["HostConfig"]["Memory"] == 32 << 20
    assert _cgroup_file(c, "memory", _v1_or_v2("memory.limit_in_bytes", "memory.max")) == str(32 << 20)


def test_update_of_a_stopped_container_is_refused(rt, busybox):
    c = rt.create_container(busybox, ["true"], memory="32m")
    with pytest.raises(ContainerStateError, match="only a created, running or paused"):
        c.update(memory="64m")
    c.start()
    c.wait()
    with pytest.raises(ContainerStateError, match="is exited|is stopped"):
        c.update(memory="64m")
    assert c.inspect()["HostConfig"]["Memory"] == 32 << 20


def test_process_limits_ulimit_oom_score_adj_and_shm_size(rt, busybox):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    soft = min(512, hard)
    result = rt.run(busybox, ["sh", "-c", "ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj; "
                                          "df -k /dev/shm | tail -1"],
                    remove=True, ulimits=[f"nofile={soft}:{hard}"], oom_score_adj=300, shm_size="10m")
    lines = result.stdout.decode().split("\n")
    assert lines[:3] == [str(soft), str(hard), "300"]
    assert lines[3].split()[1] == str(10 * 1024)


def test_ulimit_above_the_callers_hard_limit_says_so(rt, busybox):
    """Run by a CLI whose hard RLIMIT_NPROC is lowered first (lowering is always allowed), so the
    test means the same where the limit is unlimited."""
    hard = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 50_000)

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NPROC, (min(resource.getrlimit(resource.RLIMIT_NPROC)[0], hard), hard))
    exe = os.path.join(os.path.dirname(sys.executable), "workbench")
    proc = subprocess.run([exe, "--root", rt.root, "--runroot", rt.runroot, "run", "--rm", "--network", "none",
                           "--ulimit", f"nproc={hard + 1000}", busybox, "sh", "-c", "ulimit -Hu"],
                          capture_output=True, text=True, timeout=120, preexec_fn=lower, check=False)
    if proc.returncode == 0:  # a system that lets root raise it (CAP_SYS_RESOURCE): the limit is in place
        assert proc.stdout == f"{hard + 1000}\n"
        return
    assert proc.returncode == 126, proc.stderr
    assert f"caller's hard limit ({hard})" in proc.stderr


@pytest.mark.parametrize("limits, message", [
    ({"memory": "12zz"}, "invalid value for memory: invalid size: '12zz'"),
    ({"memory": "1m"}, "minimum memory limit allowed is 6MB"),
    ({"memory_swap": "64m"}, "you should always set a memory limit"),
    ({"memory": "32m", "memory_reservation": "64m"}, "cannot be less than memory reservation"),
    ({"cpus": os.cpu_count() + 1}, "as there are only"),
    ({"cpus": 0.5, "cpu_period": 50000}, "--cpu-period and --cpus cannot be set together"),
    ({"cpuset_cpus": "999"}, "requested CPUs are not available"),
    ({"cpu_shares": 1}, "cpu-shares must be between 2 and 262144"),
    ({"cpu_quota": 10}, "CPU cfs quota cannot be less than 1ms"),
    ({"memory_swappiness": 101}, "valid memory swappiness range is 0-100"),
])
def test_bad_limits_are_refused_before_anything_is_stored(rt, busybox, limits, message):
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        rt.create_container(busybox, ["true"], **limits)
    assert rt.containers() == []


def test_conmon_lives_outside_the_container_cgroup(rt, busybox):
    c = rt.create_container(busybox, ["sleep", "100"], memory="16m")
    c.start()
    with open(f"/proc/{c.st.conmon_pid}/cgroup") as f:
        conmon = f.read()
    assert f":{cgroups.conmon_cgroup()}\n" in conmon
    assert c.id not in conmon
