"""`stats` on real containers: the numbers move when a container uses memory, CPU, processes,
the disk and the network; the CLI prints Podman's table, templates and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from workbench.engine import cgroups
from workbench.engine.errors import NoSuchContainer
from workbench.engine.stats import host_memory

MiB = 1 << 20
HEADER = ("ID            NAME        CPU %       MEM USAGE / LIMIT  MEM %       NET IO      BLOCK IO    PIDS"
          "        CPU TIME    AVG CPU %")
KEYS = {"ContainerID", "Name", "SystemNano", "CPUNano", "CPUSystemNano", "CPU", "AvgCPU", "MemUsage", "MemLimit",
        "MemPerc", "NetInput", "NetOutput", "BlockInput", "BlockOutput", "PIDs", "ElapsedNano"}


def _sleeper(rt, busybox, **options):
    return rt.run(busybox, ["sleep", "1000"], detach=True, network=options.pop("network", "none"), **options)


def _until(c, check, timeout: float = 10.0) -> dict:
    """The first record of `c` for which `check(record)` holds (counters settle asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        record = c.stats()
        if check(record) or time.monotonic() > deadline:
            return record
        time.sleep(0.1)


def test_a_record_is_plain_numbers_under_podmans_names(rt, busybox):
    c = _sleeper(rt, busybox)
    record = _until(c, lambda r: r["PIDs"] == 1)  # `runc start` returns before runc init has exec'd sleep
    assert set(record) == KEYS
    assert (record["ContainerID"], record["Name"]) == (c.id, c.name)
    assert all(isinstance(record[k], int) for k in KEYS - {"ContainerID", "Name", "CPU", "AvgCPU", "MemPerc"})
    assert all(isinstance(record[k], float) for k in ("CPU", "AvgCPU", "MemPerc"))
    assert record["PIDs"] == 1 and record["MemUsage"] > 0 and record["CPUNano"] > 0
    json.dumps(record)


def test_memory_use_grows_with_what_the_container_allocates(rt, busybox):
    c = _sleeper(rt, busybox)
    before = c.stats()["MemUsage"]
    assert c.exec(["dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=64"]).exit_code == 0
    after = c.stats()
    assert after["MemUsage"] - before >= 60 * MiB  # /dev/shm pages are charged to the container
    assert after["MemPerc"] == pytest.approx(after["MemUsage"] / after["MemLimit"] * 100)


def test_unlimited_memory_shows_the_hosts_ram_and_a_limit_shows_itself(rt, busybox):
    assert _sleeper(rt, busybox).stats()["MemLimit"] == host_memory()
    assert _sleeper(rt, busybox, memory="64m").stats()["MemLimit"] == 64 * MiB


def test_a_busy_loop_adds_cpu_time_and_a_stream_measures_it_per_interval(rt, busybox):
    c = rt.run(busybox, ["sh", "-c", "while :; do :; done"], detach=True, network="none")
    first, second = (r for r, _ in zip(rt.stats([c], stream=True, interval=0.5), range(2)))
    assert second["CPUNano"] - first["CPUNano"] >= 0.1 * 0.5e9
    expected = (second["CPUNano"] - first["CPUNano"]) / (second["SystemNano"] - first["SystemNano"]) * 100
    assert second["CPU"] == pytest.approx(expected)
    assert second["CPU"] > 10 and second["AvgCPU"] > 10
    assert second["ElapsedNano"] > first["ElapsedNano"]


def test_pids_follow_exec_sessions(rt, busybox):
    c = _sleeper(rt, busybox)
    assert _until(c, lambda r: r["PIDs"] == 1)["PIDs"] == 1  # runc's exiting helpers may still count a moment
    c.exec_detached(["sleep", "1000"])
    c.exec_detached(["sleep", "1000"])
    assert _until(c, lambda r: r["PIDs"] == 3)["PIDs"] == 3


def _enable_v1_block_accounting(c) -> None:
    """Recent kernels fill v1's blkio.throttle counters only for devices the cgroup has a throttle
    rule on (Podman shows 0 B here too): give the container's disk a rule that never throttles."""
    if cgroups.is_v2():
        return  # io.stat counts without rules
    dev = os.stat(c.rt.root).st_dev
    if os.major(dev) == 0:
        pytest.skip("the store is not on a block device (tmpfs?): no block I/O to count")
    sys_dev = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"
    if os.path.exists(os.path.join(sys_dev, "partition")):  # rules apply to whole disks
        with open(os.path.join(sys_dev, "..", "dev")) as f:
            disk = f.read().strip()
    else:
        disk = f"{os.major(dev)}:{os.minor(dev)}"
    directory = cgroups.controller_dir("blkio", cgroups.container_cgroup(c.id))
    for name in ("blkio.throttle.write_bps_device", "blkio.throttle.read_bps_device"):
        with open(os.path.join(directory, name), "w") as f:
            f.write(f"{disk} {1 << 40}")


def test_block_io_counts_direct_writes_and_reads(rt, busybox):
    c = _sleeper(rt, busybox)
    _enable_v1_block_accounting(c)
    before = c.stats()
    assert c.exec(["dd", "if=/dev/zero", "of=/data", "bs=1M", "count=16", "oflag=direct"]).exit_code == 0
    assert c.exec(["dd", "if=/data", "of=/dev/null", "bs=1M", "iflag=direct"]).exit_code == 0
    after = c.stats()
    assert after["BlockOutput"] - before["BlockOutput"] >= 16 * MiB
    assert after["BlockInput"] - before["BlockInput"] >= 16 * MiB


def test_network_bytes_of_a_bridged_container_move_with_traffic(rt, busybox):
    server = rt.run(busybox, ["sh", "-c", "mkdir /www && head -c 200000 /dev/zero > /www/big && "
                                          "exec httpd -f -p 8080 -h /www"], detach=True, network="bridge")
    client = _sleeper(rt, busybox, network="bridge")
    address = next(iter(server.inspect()["NetworkSettings"]["Networks"].values()))["IPAddress"]
    before = client.stats()
    deadline = time.monotonic() + 10
    while client.exec(["wget", "-qO", "/dev/null", f"http://{address}:8080/big"]).exit_code != 0:
        assert time.monotonic() < deadline, "httpd did not answer"
        time.sleep(0.2)
    after = client.stats()
    assert after["NetInput"] - before["NetInput"] >= 200000  # received the file
    assert after["NetOutput"] > before["NetOutput"]  # sent the request
    assert server.stats()["NetOutput"] >= 200000


def test_host_and_none_networks_show_no_network_bytes(rt, busybox):
    assert _sleeper(rt, busybox, network="host").stats()["NetInput"] == 0
    assert _sleeper(rt, busybox, network="none").stats()["NetOutput"] == 0


def test_a_paused_container_still_has_stats(rt, busybox):
    c = _sleeper(rt, busybox)
    c.pause()
    try:
        record = c.stats()
        assert record["PIDs"] == 1 and record["MemUsage"] > 0 and record["CPUNano"] > 0
    finally:
        c.unpause()


def test_stopped_containers_have_zeros_and_are_listed_only_with_all(rt, busybox):
    running = _sleeper(rt, busybox)
    stopped = rt.create_container(busybox, ["true"], network="none", name="idle")
    stopped.start()
    stopped.wait()
    record = stopped.stats()
    assert record == {**record, "ContainerID": stopped.id, "Name": "idle", "PIDs": 0, "MemUsage": 0, "MemLimit": 0,
                      "CPUNano": 0, "CPU": 0.0, "NetInput": 0, "BlockOutput": 0}
    assert [r["ContainerID"] for r in rt.stats()] == [running.id]
    assert {r["ContainerID"] for r in rt.stats(all=True)} == {running.id, stopped.id}


def test_an_unknown_container_is_an_error(rt, busybox):
    with pytest.raises(NoSuchContainer, match='no container with name or ID "nosuch" found'):
        list(rt.stats(["nosuch"]))


# -- the CLI ------------------------------------------------------------------------------------
def test_cli_prints_podmans_table(rt, busybox, cli):
    c = _sleeper(rt, busybox, name="web")
    _sleeper(rt, busybox, name="other")
    result = cli("stats", "--no-stream", "web")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == HEADER.split()
    cells = row.split()
    assert cells[:2] == [c.id[:12], "web"] and cells[2].endswith("%")
    assert cells[4] == "/" and cells[5].endswith("GB")  # "647.2kB / 25.28GB"
    assert cells[-3] == "1" and cells[-2].endswith("s")  # PIDS, CPU TIME ("45.8ms")
    assert len(cli("stats", "--no-stream").stdout.splitlines()) == 3


def test_cli_templates_and_json(rt, busybox, cli):
    c = _sleeper(rt, busybox, name="web")
    result = cli("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}} {{.Name}} {{.PIDs}} {{.MemLimit}}", "web")
    assert result.stdout == f"{c.id} web 1 {host_memory()}\n"
    [item] = json.loads(cli("stats", "--no-stream", "--format", "json", "web").stdout)
    assert list(item) == ["id", "name", "cpu_time", "cpu_percent", "avg_cpu", "mem_usage", "mem_percent", "net_io",
                          "block_io", "pids"]
    assert item["id"] == c.id[:12] and item["pids"] == "1" and item["net_io"] == "0B / 0B"


def test_cli_errors_are_podmans(rt, busybox, cli):
    _sleeper(rt, busybox, name="web")
    result = cli("stats", "--no-stream", "web", "nosuch")
    assert (result.returncode, result.stdout) == (125, "")
    assert result.stderr == ('Error: unable to get list of containers: unable to look up container nosuch: '
                             'no container with name or ID "nosuch" found: no such container\n')
    result = cli("stats", "--no-stream", "-a", "web")
    assert result.returncode == 125
    assert result.stderr == "Error: --all, --latest and containers cannot be used together\n"


def test_cli_stream_prints_a_table_per_interval(rt, busybox, cli, store):
    _sleeper(rt, busybox, name="web")
    exe = os.path.join(os.path.dirname(sys.executable), "workbench")
    proc = subprocess.Popen([exe, "--root", store["root"], "--runroot", store["runroot"], "stats", "-i", "1", "web"],
                            stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(4)]  # header, row, header, row: flushed as they come
    finally:
        proc.kill()
        proc.wait()
    assert [line.split()[0] for line in lines] == ["ID", lines[1].split()[0], "ID", lines[1].split()[0]]
    assert "\033" not in "".join(lines)  # no screen clearing on a pipe
