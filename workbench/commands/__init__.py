"""One table of commands: the grammar (parser.py) and the implementations, shared by every face.

Implementations are imported when their command runs, so start-up pays for one module only.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

_IMPLEMENTATIONS = {
    "containers": ("create", "run", "init", "start", "stop", "kill", "wait", "pause", "unpause", "restart",
                   "rm", "ps", "logs", "inspect", "container_inspect", "image_inspect", "cleanup",
                   "container_exists", "rename", "healthcheck_run"),
    "images": ("import", "images", "rmi", "image_exists", "tag", "untag", "bootstrap", "history",
               "build"),
    "filesystem": ("commit", "diff", "export", "mount", "unmount", "cp"),
    "system": ("info", "version", "doctor", "unshare", "migrate"),
    "sessions": ("exec", "attach"),
    "registry": ("pull", "push", "login", "logout"),
    "archives": ("save", "load"),
    "networks": ("network_create", "network_ls", "network_inspect", "network_rm", "network_exists",
                 "network_connect", "network_disconnect", "port"),
    "volumes": ("volume_create", "volume_ls", "volume_inspect", "volume_rm", "volume_exists",
                "volume_export", "volume_import"),
    "resources": ("update",),
    "stats": ("stats",),
    "top": ("top",),
    "events": ("events",),
    "secrets": ("secret_create", "secret_ls", "secret_inspect", "secret_rm", "secret_exists"),
    "prune": ("container_prune", "image_prune", "volume_prune", "network_prune", "system_prune", "system_df"),
}
_MODULE_OF = {name: module for module, names in _IMPLEMENTATIONS.items() for name in names}


def handler(name: str) -> Callable:
    """The implementation of command `name` (`import` and `exec` carry a `_`: they are Python names)."""
    module = importlib.import_module(f"{__name__}.{_MODULE_OF[name]}")
    return getattr(module, name + "_" if name in ("import", "exec") else name)
