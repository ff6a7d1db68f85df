"""Workbench: a daemonless container engine for notebooks.

The public face; names load lazily so `import workbench` stays light.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (15-20 ms here): `import workbench` stays light

__version__ = "0.1.0"

_EXPORTS = {
    "Runtime": "workbench.engine.runtime",
    "RunResult": "workbench.engine.runtime",
    "Container": "workbench.engine.container",
    "ContainerState": "workbench.engine.state",
    "ExecResult": "workbench.engine.exec",
    "Session": "workbench.engine.attach",
    "NoSuchExecSession": "workbench.engine.errors",
    "Image": "workbench.engine.images.store",
    "WorkbenchError": "workbench.engine.errors",
    "NoSuchContainer": "workbench.engine.errors",
    "NoSuchImage": "workbench.engine.errors",
    "NoSuchArtifact": "workbench.engine.errors",
    "CannotRun": "workbench.engine.errors",
    "ContainerStateError": "workbench.engine.errors",
    "ContainerExists": "workbench.engine.errors",
    "ContainerRemoved": "workbench.engine.errors",
    "ImageInUse": "workbench.engine.errors",
    "InvalidArgument": "workbench.engine.errors",
    "OCIRuntimeError": "workbench.engine.errors",
    "OCIRuntimeNotFound": "workbench.engine.errors",
    "OCIRuntimePermissionDenied": "workbench.engine.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from .engine.attach import Session
    from .engine.container import Container
    from .engine.exec import ExecResult
    from .engine.errors import *  # noqa: F401,F403
    from .engine.images.store import Image
    from .engine.runtime import Runtime, RunResult
    from .engine.state import ContainerState


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def load_ipython_extension(shell: Any) -> None:
    """`%load_ext workbench`: the `%ctr` / `%%ctr` magics."""
    from .magics import load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    from .magics import unload

    unload(shell)
