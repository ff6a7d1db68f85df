"""conmon's exit command: the shell in front of the CLI, and the clean-up claims it waits for.

The CLI is stood in for by `echo` here, so each test sees whether the exit command would have
started it; tests/engine/test_lifecycle.py runs the real one for real containers.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time

from workbench.engine import exit_command
from workbench.engine.exit_command import Claim, argv

ID = "0123456789abcdef" * 4


def store(tmp_path, *, container: bool) -> tuple[str, str]:
    root, runroot = str(tmp_path / "root"), str(tmp_path / "run")
    os.makedirs(os.path.join(root, "containers", ID) if container else root)
    os.makedirs(runroot)
    return root, runroot


def run(root: str, runroot: str, wait: int = 5) -> tuple[str, float]:
    """The exit command with `echo CLI` as the CLI: (what it printed, seconds it took)."""
    start = time.monotonic()
    done = subprocess.run(argv(["echo", "CLI"], root, runroot, "runc", ID, wait=wait), capture_output=True,
                          text=True, check=True, timeout=30)
    return done.stdout, time.monotonic() - start


def test_the_cli_gets_the_store_runtime_and_container(tmp_path):
    root, runroot = store(tmp_path, container=True)
    out, _ = run(root, runroot)
    assert out.split() == ["CLI", "--root", root, "--runroot", runroot, "--runtime", "runc", "container", "cleanup",
                           ID]
    assert argv(["wb"], root, runroot, None, ID)[-8:] == ["wb", "--root", root, "--runroot", runroot, "container",
                                                          "cleanup", ID]


def test_a_gone_container_needs_no_cli(tmp_path):
    out, took = run(*store(tmp_path, container=False))
    assert out == ""
    assert took < 1


def test_the_exit_command_waits_for_the_claimant_to_finish(tmp_path):
    root, runroot = store(tmp_path, container=True)
    claim = Claim(runroot, ID).__enter__()
    assert os.path.exists(os.path.join(runroot, "claims", ID))

    def finish() -> None:
        time.sleep(0.5)
        os.rmdir(os.path.join(root, "containers", ID))  # the claimant removed the container
        claim.__exit__(None, None, None)
    threading.Thread(target=finish).start()
    out, took = run(root, runroot)
    assert out == "" and took >= 0.4
    assert not os.path.exists(os.path.join(runroot, "claims", ID))


def test_a_claimant_that_only_cleaned_up_leaves_the_rest_to_the_cli(tmp_path):
    root, runroot = store(tmp_path, container=True)
    with Claim(runroot, ID):
        pass  # an attached `run` without --rm: cleaned up, not removed
    out, _ = run(root, runroot)
    assert out.startswith("CLI ")


def test_a_stuck_claimant_delays_the_exit_command_only_so_long(tmp_path):
    root, runroot = store(tmp_path, container=True)
    with Claim(runroot, ID):
        out, took = run(root, runroot, wait=1)
    assert out.startswith("CLI ")  # it went ahead: the CLI cleans up under the container lock
    assert 0.9 <= took < 5


def test_a_crashed_claimants_file_does_not_delay(tmp_path):
    root, runroot = store(tmp_path, container=False)
    os.makedirs(os.path.join(runroot, "claims"))
    open(os.path.join(runroot, "claims", ID), "w").close()  # left by a killed claimant
    out, took = run(root, runroot)
    assert out == "" and took < 1
    exit_command.forget(runroot, ID)
    exit_command.forget(runroot, ID)  # twice: gone is fine
    assert os.listdir(os.path.join(runroot, "claims")) == []


def test_the_exit_command_never_creates_a_claim(tmp_path):
    root, runroot = store(tmp_path, container=False)
    os.makedirs(os.path.join(runroot, "claims"))
    run(root, runroot)
    assert os.listdir(os.path.join(runroot, "claims")) == []
