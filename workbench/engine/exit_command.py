"""conmon's exit command (`workbench container cleanup ID`) and the clean-up claims that let it
return at once.

conmon runs the exit command whenever a container's process exits, so that a detached container
is cleaned up (and removed, with --rm) with no engine process around. Most containers, though,
exit while a process waits for them and then cleans up itself: an attached `run`, `rt.run()`.
Such a waiter holds the container's claim, an flock on `<runroot>/claims/<ID>`, from before the
start until its clean-up (and removal) is done. The exit command first waits for the claim (at
most CLAIM_WAIT seconds, against a stuck waiter), then returns at once if the container is gone;
otherwise it cleans up under the container lock as always. A claim therefore only saves work,
never decides any: the exit command stays the safety net. The waiter also no longer races the
exit command: `rt.run(remove=True)` reads the logs before anything removes them.

Stdlib only, no `typing`: the exit command runs this before importing the engine, which would
cost each container exit ~70 ms of CPU here (the fast path costs the interpreter's ~20 ms).
"""

from __future__ import annotations

import fcntl
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Sequence

#: How long the exit command waits for a claimant before cleaning up itself.
CLAIM_WAIT = 5.0
_POLL = 0.002
_SUBCOMMAND = ["container", "cleanup"]
_OPTIONS = ("--root", "--runroot", "--runtime")


def argv(program: Sequence[str], root: str, runroot: str, runtime: str | None, ctr_id: str) -> list[str]:
    """The exit command for container `ctr_id` of the store (root, runroot); `program` runs the CLI."""
    args = [*program, "--root", root, "--runroot", runroot]
    if runtime:
        args += ["--runtime", runtime]
    return [*args, *_SUBCOMMAND, ctr_id]


def _claim_path(runroot: str, ctr_id: str) -> str:
    return os.path.join(runroot, "claims", ctr_id)


class Claim:
    """The container's clean-up claim, held inside `with`: this process will clean it up after
    it exits. The fd is close-on-exec; a child forked meanwhile (ForkedRuntime) holds the claim
    until it exits. (A class, not contextlib: the exit command does not pay for importing it.)"""

    def __init__(self, runroot: str, ctr_id: str):
        self.runroot, self.ctr_id = runroot, ctr_id
        self._fd = -1

    def __enter__(self) -> Claim:
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


def settled(root: str, runroot: str, ctr_id: str, wait: float = CLAIM_WAIT) -> bool:
    """Whether the container is gone, once its claimant (if any) has finished or `wait` has passed."""
    try:
        fd = os.open(_claim_path(runroot, ctr_id), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        fd = -1
    if fd >= 0:
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(_POLL)
        finally:
            os.close(fd)
    return not os.path.lexists(os.path.join(root, "containers", ctr_id))


def done_already(args: Sequence[str]) -> bool:
    """For CLI arguments exactly as argv() builds them: whether settled() says there is nothing to
    do. Any other shape (a name, more options, `--rm`) is left to the full command."""
    if len(args) < 3 or list(args[-3:-1]) != _SUBCOMMAND or not _is_full_id(args[-1]):
        return False
    options = args[:-3]
    pairs = dict(zip(options[::2], options[1::2]))
    if len(options) % 2 or len(pairs) * 2 != len(options) or not set(pairs) <= set(_OPTIONS):
        return False
    if "--root" not in pairs or "--runroot" not in pairs:
        return False
    return settled(pairs["--root"], pairs["--runroot"], args[-1])


def _is_full_id(text: str) -> bool:
    return len(text) == 64 and all(ch in "0123456789abcdef" for ch in text)
