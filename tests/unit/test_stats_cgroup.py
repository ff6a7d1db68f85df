"""stats readers against fake cgroup trees (v2 unified, v1 per controller) and Podman's text columns."""

from __future__ import annotations

import pytest

from workbench.commands.stats import _binary_size, _decimal_size, template_row
from workbench.engine.top import go_duration
from workbench.engine import cgroups, stats
from workbench.engine.stats import Counters, read_net_dev, read_v1, read_v2

V2_FILES = {
    "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\n",
    "memory.current": "73400320\n",
    "memory.max": "max\n",
    "memory.stat": "anon 50331648\nfile 20971520\nshmem 1048576\nactive_file 8388608\ninactive_file 12582912\n",
    "io.stat": ("254:0 rbytes=4096 wbytes=20971520 rios=1 wios=20 dbytes=0 dios=0\n"
                "8:16 rbytes=1000 wbytes=24 rios=1 wios=1 dbytes=0 dios=0\n"),
    "pids.current": "3\n",
}


def _tree(root, files: dict[str, str]) -> str:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return str(root)


def test_v2_counters_follow_podmans_definitions(tmp_path):
    counters = read_v2(_tree(tmp_path / "workbench_parent" / "workbench-abc", V2_FILES))
    assert counters == Counters(cpu_ns=2_500_000_000, cpu_system_ns=500_000_000,
                                mem_usage=73400320 - 12582912,  # memory.current - inactive_file
                                mem_limit=None, pids=3, block_read=5096, block_write=20971544)


def test_v2_memory_limit_is_read_when_set(tmp_path):
    counters = read_v2(_tree(tmp_path, {**V2_FILES, "memory.max": "67108864\n"}))
    assert counters.mem_limit == 64 << 20


def test_v2_reader_is_reached_through_the_cgroup_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "ROOT", str(tmp_path))
    monkeypatch.setattr(cgroups, "is_v2", lambda: True)
    _tree(tmp_path / cgroups.container_cgroup("abc").lstrip("/"), V2_FILES)
    from types import SimpleNamespace

    assert stats.container_counters(SimpleNamespace(id="abc")).pids == 3


def test_a_vanished_cgroup_reads_as_zeros(tmp_path):
    assert read_v2(str(tmp_path / "gone")) == Counters(0, 0, 0, None, 0, 0, 0)
    assert read_v1({name: str(tmp_path / "gone") for name in stats.V1_CONTROLLERS}) == Counters(0, 0, 0, None, 0, 0, 0)


def test_v1_counters_from_separate_hierarchies(tmp_path):
    dirs = {
        "cpuacct": _tree(tmp_path / "cpuacct", {"cpuacct.usage": "123456789\n", "cpuacct.usage_sys": "23456789\n"}),
        "memory": _tree(tmp_path / "memory", {"memory.usage_in_bytes": "10485760\n",
                                              "memory.limit_in_bytes": "9223372036854771712\n",
                                              "memory.stat": "cache 4096\ninactive_file 0\n"
                                                             "total_inactive_file 2097152\n"}),
        "pids": _tree(tmp_path / "pids", {"pids.current": "2\n"}),
        "blkio": _tree(tmp_path / "blkio", {"blkio.throttle.io_service_bytes_recursive":
                                            "254:0 Read 8192\n254:0 Write 1048576\n254:0 Sync 1048576\n"
                                            "254:0 Async 0\n254:0 Discard 0\n254:0 Total 1056768\nTotal 1056768\n"}),
    }
    counters = read_v1(dirs)
    assert counters == Counters(cpu_ns=123456789, cpu_system_ns=23456789, mem_usage=10485760 - 2097152,
                                mem_limit=9223372036854771712, pids=2, block_read=8192, block_write=1048576)


def test_net_dev_sums_every_interface_but_lo(tmp_path):
    path = tmp_path / "dev"
    path.write_text(
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls "
        "carrier compressed\n"
        "    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0 "
        "      0          0\n"
        "  eth0:     340       4    0    0    0     0          0         0       90       1    0    0    0     0 "
        "      0          0\n"
        "  eth1:      60       1    0    0    0     0          0         0       10       1    0    0    0     0 "
        "      0          0\n")
    assert read_net_dev(str(path)) == (400, 100)
    assert read_net_dev(str(tmp_path / "no-such-pid")) == (0, 0)


@pytest.mark.parametrize("ns, text", [(0, "0s"), (850, "850ns"), (1500, "1.5µs"), (38_499_019, "38.499019ms"),
                                      (123_500_000_000, "2m3.5s"), (3_600_000_000_000, "1h0m0s")])
def test_cpu_time_is_a_go_duration(ns, text):
    assert go_duration(ns) == text


@pytest.mark.parametrize("n, decimal, binary", [(0, "0B", "0B"), (348160, "348.2kB", "340KiB"),
                                                (25276510208, "25.28GB", "23.54GiB"), (999, "999B", "999B")])
def test_sizes_are_go_units(n, decimal, binary):
    assert (_decimal_size(n), _binary_size(n)) == (decimal, binary)


def test_template_row_has_podmans_text_columns_and_the_numbers():
    record = {"ContainerID": "ee7675ba1f4b" + "0" * 52, "Name": "a", "SystemNano": 1, "CPUNano": 38_499_019,
              "CPUSystemNano": 0, "CPU": 0.4138707, "AvgCPU": 6.789, "MemUsage": 348160, "MemLimit": 25276510208,
              "MemPerc": 0.0013774, "NetInput": 340, "NetOutput": 90, "BlockInput": 0, "BlockOutput": 20971520,
              "PIDs": 1, "ElapsedNano": 5}
    row = template_row(record)
    assert {k: row[k] for k in ("ID", "CPUPerc", "AVGCPU", "MemUsage", "MemUsageBytes", "MemPerc", "NetIO",
                                "BlockIO", "PIDS", "UpTime")} == {
        "ID": "ee7675ba1f4b", "CPUPerc": "0.41%", "AVGCPU": "6.79%", "MemUsage": "348.2kB / 25.28GB",
        "MemUsageBytes": "340KiB / 23.54GiB", "MemPerc": "0.00%", "NetIO": "340B / 90B", "BlockIO": "0B / 20.97MB",
        "PIDS": "1", "UpTime": "38.499019ms"}
    assert row["CPU"] == 0.4138707 and row["MemLimit"] == 25276510208
    assert template_row(record, no_trunc=True)["ID"] == record["ContainerID"]


@pytest.fixture
def fake_container(monkeypatch):
    """A running container started at t=100 s that has used 2 s of CPU by t=104 s."""
    from types import SimpleNamespace

    from workbench.engine.state import ContainerState

    monkeypatch.setattr(stats, "container_counters", lambda _id: Counters(2 * 10**9, 0, 100, None, 1, 0, 0))
    monkeypatch.setattr(stats.time, "time_ns", lambda: 104 * 10**9)
    return SimpleNamespace(id="abc", name="x", config=SimpleNamespace(network="none"),
                           st=SimpleNamespace(state=ContainerState.RUNNING, started_at=100.0, pid=0))


def test_one_snapshot_gives_the_average_since_start(fake_container):
    record = stats.sample(fake_container)
    assert record["CPU"] == record["AvgCPU"] == 50.0  # 2 s of CPU in 4 s, not divided by the CPUs
    assert record["ElapsedNano"] == 4 * 10**9
    assert record["MemLimit"] == stats.host_memory()  # no cgroup limit: the host's RAM


def test_a_stream_measures_cpu_since_the_previous_sample(fake_container):
    record = stats.sample(fake_container, {"CPUNano": 18 * 10**8, "SystemNano": 103 * 10**9})
    assert (round(record["CPU"], 6), record["AvgCPU"]) == (20.0, 50.0)
    # a previous sample from before a restart (more CPU than now) counts from the start again
    assert stats.sample(fake_container, {"CPUNano": 9 * 10**9, "SystemNano": 103 * 10**9})["CPU"] == 50.0


def test_a_container_without_processes_has_zeros(fake_container):
    from workbench.engine.state import ContainerState

    fake_container.st.state = ContainerState.EXITED
    record = stats.sample(fake_container)
    assert record["Name"] == "x" and record["MemLimit"] == record["PIDs"] == record["CPUNano"] == 0
