"""Limit parsing and the update document, without containers."""

from __future__ import annotations

import pytest

from workbench import InvalidArgument
from workbench.engine import resources as r


@pytest.mark.parametrize("text, size", [("1024", 1024), ("64m", 64 << 20), ("64MB", 64 << 20), ("1.5g", 3 << 29),
                                        ("2KiB", 2048), ("7 k", 7168), (4096, 4096)])
def test_sizes_are_binary_multiples(text, size):
    assert r.parse_size(text, "memory") == size


@pytest.mark.parametrize("text", ["12zz", "", "-5", "m", "1..2m", -1])
def test_bad_sizes_name_the_flag(text):
    with pytest.raises(InvalidArgument, match="invalid value for memory: invalid size"):
        r.parse_size(text, "memory")


def test_create_defaults_and_podman_swap_rule():
    assert r.resources({}) == {"pids": {"limit": 2048}}
    res = r.resources({"memory": "32m"})
    assert res["memory"] == {"limit": 32 << 20, "swap": 64 << 20}
    assert r.resources({"memory": "32m", "memory_swap": -1})["memory"]["swap"] == -1
    assert r.resources({"pids_limit": 0}) == {"pids": {"limit": -1}}


def test_update_keeps_what_is_not_given_and_moves_a_default_swap_along():
    old = r.resources({"memory": "32m", "cpus": 0.5})
    new = r.resources({"memory": "64m"}, current=old)
    assert new["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert new["cpu"] == {"period": 100000, "quota": 50000}
    explicit = r.resources({"memory": "32m", "memory_swap": "100m"})
    assert r.resources({"memory": "48m"}, current=explicit)["memory"]["swap"] == 100 << 20


def test_lifted_limits_are_sent_as_unlimited():
    old = r.resources({"memory": "32m", "cpus": 0.5, "cpu_shares": 512, "pids_limit": 10})
    new = r.resources({"memory": 0, "cpus": 0, "cpu_shares": 0}, current=old)
    payload = r.update_payload(old, new)
    assert payload["memory"] == {"limit": -1, "swap": -1}
    assert payload["cpu"] == {"quota": -1, "shares": 1024}
    assert payload["pids"] == {"limit": 10}


def test_cpu_lists():
    assert r.parse_cpu_list("0-2,5", "cpuset cpus") == {0, 1, 2, 5}
    for bad in ("x", "3-1", "-1", "1,,2"):
        with pytest.raises(InvalidArgument, match=f"invalid value {bad} for cpuset cpus"):
            r.parse_cpu_list(bad, "cpuset cpus")


def test_ulimits():
    assert r.parse_ulimit("nofile=1024:2048") == {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}
    assert r.parse_ulimit("core=0") == {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}
    assert r.parse_ulimit("nproc=-1")["hard"] == (1 << 64) - 1
    with pytest.raises(InvalidArgument, match="soft limit must be less than or equal to hard limit: 2 > 1"):
        r.parse_ulimit("nofile=2:1")
    with pytest.raises(InvalidArgument, match="invalid ulimit type: foo"):
        r.parse_ulimit("foo=1")


def test_unknown_limit_names_are_refused():
    with pytest.raises(InvalidArgument, match="unknown resource limit: memroy"):
        r.resources({"memroy": "1g"})  # type: ignore[typeddict-unknown-key]
