"""conmon's exit command: the argv it is given, and the clean-up claims that let it return at once."""

from __future__ import annotations

import os
import threading
import time

from workbench.engine import exit_command
from workbench.engine.exit_command import Claim, argv, done_already, settled

ID = "0123456789abcdef" * 4


def store(tmp_path, *, container: bool) -> tuple[str, str]:
    root, runroot = str(tmp_path / "root"), str(tmp_path / "run")
    os.makedirs(os.path.join(root, "containers", ID) if container else root)
    os.makedirs(runroot)
    return root, runroot


def test_argv_names_the_store_runtime_and_container():
    assert argv(["wb"], "/r", "/rr", None, ID) == ["wb", "--root", "/r", "--runroot", "/rr", "container", "cleanup", ID]
    assert argv(["py", "-m", "workbench"], "/r", "/rr", "runc", ID) == [
        "py", "-m", "workbench", "--root", "/r", "--runroot", "/rr", "--runtime", "runc", "container", "cleanup", ID]


def test_done_already_only_for_the_exact_shape_of_a_gone_container(tmp_path):
    root, runroot = store(tmp_path, container=False)
    assert done_already(argv([], root, runroot, None, ID))
    assert done_already(argv([], root, runroot, "runc", ID))
    for args in (["--root", root, "--runroot", runroot, "container", "cleanup", "name"],  # a name: look it up
                 ["--root", root, "--runroot", runroot, "container", "cleanup", ID[:12]],
                 ["--root", root, "--runroot", runroot, "container", "cleanup", "--rm", ID],
                 ["--root", root, "--runroot", runroot, "--log-level", "debug", "container", "cleanup", ID],
                 ["--root", root, "container", "cleanup", ID],  # the default run root: not known here
                 ["--root", root, "--root", root, "--runroot", runroot, "container", "cleanup", ID],
                 ["--root", root, "--runroot", runroot, "rm", "-f", ID],
                 ["container", "cleanup"]):
        assert not done_already(args), args


def test_an_existing_container_is_left_to_the_full_command(tmp_path):
    root, runroot = store(tmp_path, container=True)
    assert not done_already(argv([], root, runroot, None, ID))


def test_settled_waits_for_the_claimant_to_finish(tmp_path):
    root, runroot = store(tmp_path, container=True)
    claim = Claim(runroot, ID).__enter__()
    assert os.path.exists(os.path.join(runroot, "claims", ID))

    def finish() -> None:
        time.sleep(0.3)
        os.rmdir(os.path.join(root, "containers", ID))
        claim.__exit__(None, None, None)
    threading.Thread(target=finish).start()
    start = time.monotonic()
    assert settled(root, runroot, ID)  # a separate open file description: the flock conflicts
    assert time.monotonic() - start >= 0.25
    assert not os.path.exists(os.path.join(runroot, "claims", ID))


def test_a_stuck_claimant_delays_the_exit_command_only_so_long(tmp_path):
    root, runroot = store(tmp_path, container=True)
    with Claim(runroot, ID):
        start = time.monotonic()
        assert not settled(root, runroot, ID, wait=0.2)
        assert 0.2 <= time.monotonic() - start < 2


def test_a_crashed_claimants_file_does_not_delay(tmp_path):
    root, runroot = store(tmp_path, container=False)
    Claim(runroot, ID).__enter__().__exit__(None, None, None)
    os.makedirs(os.path.join(runroot, "claims"), exist_ok=True)
    open(os.path.join(runroot, "claims", ID), "w").close()  # left by a killed claimant
    start = time.monotonic()
    assert settled(root, runroot, ID)
    assert time.monotonic() - start < 0.1
    exit_command.forget(runroot, ID)
    exit_command.forget(runroot, ID)  # twice: gone is fine
    assert os.listdir(os.path.join(runroot, "claims")) == []
