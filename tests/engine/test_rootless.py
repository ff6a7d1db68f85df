"""An ordinary user gets one clear error: rootless mode (issue 10) is not built yet."""

from __future__ import annotations

import os

from workbench import Runtime, WorkbenchError

NOBODY = 65534


def test_an_ordinary_user_is_told_rootless_mode_is_missing_and_nothing_is_made(tmp_path):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child becomes nobody for real and tries to open a store
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                Runtime(str(tmp_path / "root"), str(tmp_path / "run"))
                answer = "no error"
            except WorkbenchError as exc:
                answer = f"{exc.exit_code} {exc}"
            except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
                answer = f"{type(exc).__name__}: {exc}"
            os.write(write_end, answer.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    assert answer.startswith(f"125 uid {NOBODY}: rootless mode is not supported yet: run Workbench as root"), answer
    assert "workbench doctor" in answer
    assert not (tmp_path / "root").exists() and not (tmp_path / "run").exists()
