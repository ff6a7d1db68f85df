"""Error types raised by the engine, with messages that match Podman 4.3's."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every engine error; `exit_code` is what the CLI exits with."""

    exit_code = 125


class NoSuchContainer(WorkbenchError):
    """No container matches a name, ID or ID prefix."""

    def __init__(self, name_or_id: str):
        super().__init__(f'no container with name or ID "{name_or_id}" found: no such container')
        self.name_or_id = name_or_id


class NoSuchImage(WorkbenchError):
    """No image matches a reference or ID."""

    def __init__(self, reference: str):
        super().__init__(f"{reference}: image not known")
        self.reference = reference


class NoSuchArtifact(WorkbenchError):
    """A container has no artifact of that name."""


class NoSuchExecSession(WorkbenchError):
    """No exec session with that ID."""


class ContainerExists(WorkbenchError):
    """The container name is already taken."""

    def __init__(self, name: str, owner_id: str):
        super().__init__(
            f'the container name "{name}" is already in use by {owner_id}. '
            "You have to remove that container to be able to reuse that name: that name is already in use"
        )


class AmbiguousName(WorkbenchError):
    """An ID prefix matches more than one container or image."""


class ContainerStateError(WorkbenchError):
    """The operation is not legal in the container's current state."""


class ContainerRemoved(WorkbenchError):
    """The container was removed by another process while we held a handle to it."""

    def __init__(self, ctr_id: str):
        super().__init__(f"container {ctr_id} has been removed: no such container")


class ImageInUse(WorkbenchError):
    """An image cannot be removed while containers use it."""


class InvalidArgument(WorkbenchError):
    """Bad user input: a signal name, a --change line, a reference, ..."""


class CannotRun(InvalidArgument):
    """The container's process cannot start as it is configured: a user or group the container
    does not know, a working directory it does not have (Podman's run exits 126 for these)."""

    exit_code = 126


class OCIRuntimeError(WorkbenchError):
    """The OCI runtime (runc/crun) or conmon failed."""

    exit_code = 126


class OCIRuntimePermissionDenied(OCIRuntimeError):
    """The container command cannot be executed (permission denied)."""

    exit_code = 126


class OCIRuntimeNotFound(OCIRuntimeError):
    """The container command does not exist in the image."""

    exit_code = 127


class ConmonDied(OCIRuntimeError):
    """conmon exited without writing an exit file."""

    exit_code = 125


def classify_runtime_error(message: str) -> OCIRuntimeError:
    """Map runtime stderr to the error type Podman would report (126/127 exit codes)."""
    text = message.strip()
    lower = text.lower()
    if "executable file not found" in lower or "no such file or directory" in lower or "open executable" in lower:
        return OCIRuntimeNotFound(f"{text}: OCI runtime attempted to invoke a command that was not found")
    if "permission denied" in lower or "operation not permitted" in lower:
        return OCIRuntimePermissionDenied(f"{text}: OCI permission denied")
    return OCIRuntimeError(f"{text}: OCI runtime error")
