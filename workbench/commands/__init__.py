"""One table of commands: the grammar (parser.py) and the implementations, shared by every face."""

from __future__ import annotations

from typing import Callable

from . import containers, images, system

HANDLERS: dict[str, Callable] = {
    "create": containers.create,
    "run": containers.run,
    "init": containers.init,
    "start": containers.start,
    "stop": containers.stop,
    "kill": containers.kill,
    "wait": containers.wait,
    "pause": containers.pause,
    "unpause": containers.unpause,
    "restart": containers.restart,
    "rm": containers.rm,
    "ps": containers.ps,
    "logs": containers.logs,
    "inspect": containers.inspect,
    "container_inspect": containers.container_inspect,
    "image_inspect": containers.image_inspect,
    "cleanup": containers.cleanup,
    "container_exists": containers.container_exists,
    "import": images.import_,
    "images": images.images,
    "rmi": images.rmi,
    "image_exists": images.image_exists,
    "info": system.info,
    "version": system.version,
}
