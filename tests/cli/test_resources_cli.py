"""Limit flags on the command line: create/run take them, update changes them, bad ones exit 125."""

from __future__ import annotations

import json

import pytest


def test_run_with_limits_and_update(cli, image):
    proc = cli("run", "-d", "--network", "none", "--memory", "48m", "--cpus", "0.5", "--pids-limit", "64",
               "--name", "limited", image, "sleep", "100")
    assert proc.returncode == 0, proc.stderr
    host = json.loads(cli("inspect", "limited").stdout)[0]["HostConfig"]
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"]) == (48 << 20, 500_000_000, 64)
    proc = cli("update", "--memory", "96m", "--pids-limit", "128", "limited")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip()) == 64
    fmt = "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}}"
    assert cli("inspect", "--format", fmt, "limited").stdout.split() == [str(96 << 20), str(192 << 20), "128"]


@pytest.mark.parametrize("flags, message", [
    (["--memory", "12zz"], "Error: invalid value for memory: invalid size: '12zz'"),
    (["--cpus", "64"], "Error: range of CPUs is from 0.01 to"),
    (["--ulimit", "nofile=abc"], 'Error: ulimit option "nofile=abc" requires name=SOFT:HARD'),
    (["--shm-size", "zz"], "Error: invalid value for shm-size: invalid size: 'zz'"),
    (["--oom-score-adj", "2000"], "Error: oom-score-adj must be between -1000 and 1000"),
])
def test_bad_limit_flags_exit_125_and_create_nothing(cli, image, flags, message):
    proc = cli("run", "--rm", "--network", "none", *flags, image, "true")
    assert proc.returncode == 125
    assert proc.stderr.startswith(message), proc.stderr
    assert cli("ps", "-aq").stdout == ""


def test_update_errors(cli, image):
    assert cli("create", "--name", "idle", "--network", "none", image, "true").returncode == 0
    proc = cli("update", "--memory", "64m", "idle")
    assert proc.returncode == 125
    assert "only a created, running or paused container" in proc.stderr
    proc = cli("update", "--memory", "64m", "nosuch")
    assert proc.returncode == 125
    assert 'no container with name or ID "nosuch" found' in proc.stderr
