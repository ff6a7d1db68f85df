"""The capability probe: real answers here, and the fix when a piece is missing."""

from __future__ import annotations

import os
import subprocess
import sys

from workbench.engine import doctor

EXE = os.path.join(os.path.dirname(sys.executable), "workbench")


def test_this_machine_can_run_containers():
    results = doctor.checks()
    assert [c.name for c in results] == ["privileges", "rootless", "user namespaces", "namespaces", "overlayfs",
                                         "cgroups", "OCI runtime", "conmon", "networking", "base images"]
    assert doctor.containers_can_run(results), results
    by_name = {c.name: c for c in results}
    assert "runc" in by_name["OCI runtime"].detail and "conmon version" in by_name["conmon"].detail


def test_a_missing_tool_is_reported_with_its_fix(monkeypatch):
    monkeypatch.setattr(doctor, "_which", lambda name: None)
    check = doctor.conmon()
    assert (check.status, check.fix) == (doctor.MISSING, "apt-get install conmon")
    assert not doctor.containers_can_run([check])


def test_a_probe_that_breaks_is_a_warning_not_a_crash(monkeypatch):
    def broken():
        raise RuntimeError("boom")
    monkeypatch.setattr(doctor, "PROBES", (broken, doctor.conmon))
    results = doctor.checks()
    assert results[0].status == doctor.WARN and "RuntimeError: boom" in results[0].detail
    assert results[1].name == "conmon"


def test_cli_table_and_exit_codes():
    proc = subprocess.run([EXE, "doctor"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].split()[:3] == ["CHECK", "STATUS", "DETAIL"]
    assert proc.stdout.rstrip().endswith("containers can run here")
    as_nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", EXE, "doctor"],
                               capture_output=True, text=True)
    assert as_nobody.returncode == 0, as_nobody.stderr  # rootless mode, with one mapped id
    rows = {line.split()[0]: line.split()[1] for line in as_nobody.stdout.splitlines()[1:-1]}
    assert (rows["privileges"], rows["rootless"], rows["networking"]) == ("ok", "warn", "ok")
    assert "no subordinate ids: one uid and gid only" in as_nobody.stdout
    assert "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 nobody" in as_nobody.stdout
    no_tools = subprocess.run([EXE, "doctor"], capture_output=True, text=True, env={**os.environ, "PATH": "/nonexistent"})
    assert no_tools.returncode == 1
    assert no_tools.stderr.startswith("Error: containers cannot run here: ")
