"""conmon's exit command (`workbench container cleanup ID`) and the clean-up claims that let it
skip the engine.

conmon runs the exit command whenever a container's process exits, so that a detached container
is cleaned up (and removed, with --rm) with no engine process around. Most containers, though,
exit while a process waits for them and then cleans up itself: an attached `run`, `rt.run()`.
Such a waiter holds the container's claim, an flock on `<runroot>/claims/<ID>`, from before the
start until its clean-up (and removal) is done.

The exit command is a few lines of shell in front of the CLI: it waits for the claim (a shared
flock, at most CLAIM_WAIT seconds against a stuck waiter), exits if the container's directory is
gone, and only otherwise runs `workbench container cleanup`, which cleans up under the container
lock as always. A claim therefore only saves work, never decides any: the CLI stays the safety
net. Each container exit so costs a shell and `flock` (~2 ms of CPU) instead of a Python
interpreter (~20 ms, ~70 with the engine), on a machine whose cores the waiter needs just then
(in-process `run --rm` ~9 ms faster here). The waiter also no longer races the exit command:
`rt.run(remove=True)` reads the logs before anything can remove them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self

#: How long the exit command waits for a claimant before cleaning up itself (seconds).
CLAIM_WAIT = 5

# $1 claim file, $2 the container's directory, $3 seconds to wait, then the CLI's argv. The
# claim is opened without creating it (`3<`): a missing one means no waiter. No flock(1): no wait.
_SCRIPT = '{ flock -s -w "$3" 3; } 3<"$1" 2>/dev/null; [ -e "$2" ] || exit 0; shift 3; exec "$@"'


def argv(program: Sequence[str], root: str, runroot: str, runtime: str | None, ctr_id: str,
         wait: int = CLAIM_WAIT) -> list[str]:
    """The exit command for container `ctr_id` of the store (root, runroot); `program` runs the CLI."""
    return ["/bin/sh", "-c", _SCRIPT, "workbench-exit", _claim_path(runroot, ctr_id),
            os.path.join(root, "containers", ctr_id), str(wait), *cli(program, root, runroot, runtime),
            "container", "cleanup", ctr_id]


def cli(program: Sequence[str], root: str, runroot: str, runtime: str | None) -> list[str]:
    """The CLI (`program`) on the store (root, runroot), as the processes the engine leaves
    behind run it: conmon's exit command, a container's health monitor."""
    return [*program, "--root", root, "--runroot", runroot, *(["--runtime", runtime] if runtime else [])]


def _claim_path(runroot: str, ctr_id: str) -> str:
    return os.path.join(runroot, "claims", ctr_id)


class Claim:
    """The container's clean-up claim, held inside `with`: this process will clean it up after
    it exits. The fd is close-on-exec; a child forked meanwhile (ForkedRuntime) holds the claim
    until it exits."""

    def __init__(self, runroot: str, ctr_id: str):
        self.runroot, self.ctr_id = runroot, ctr_id
        self._fd = -1

    def __enter__(self) -> Self:
        os.makedirs(os.path.join(self.runroot, "claims"), mode=0o700, exist_ok=True)
        fd = os.open(_claim_path(self.runroot, self.ctr_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        forget(self.runroot, self.ctr_id)  # before closing: a later exit command finds no claim to wait for
        os.close(self._fd)
        self._fd = -1


def forget(runroot: str, ctr_id: str) -> None:
    """Remove the claim file (a crashed claimant's, when the container is removed)."""
    try:
        os.unlink(_claim_path(runroot, ctr_id))
    except FileNotFoundError:
        pass
