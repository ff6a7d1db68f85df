"""Loggers that import `logging` on first use: most commands never log, and importing and
configuring logging costs every CLI start several milliseconds."""

from __future__ import annotations

from typing import Any, Callable

_setup: Callable[[], None] | None = None


def on_first_use(setup: Callable[[], None]) -> None:
    """Run `setup` (say, the CLI's handler and level) when some logger is first used."""
    global _setup
    _setup = setup


class LazyLogger:
    """Stands for `logging.getLogger(name)` until a method is first called."""

    __slots__ = ("name", "_logger")

    def __init__(self, name: str):
        self.name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            global _setup
            import logging

            if _setup is not None:
                setup, _setup = _setup, None
                setup()
            self._logger = logging.getLogger(self.name)
        return getattr(self._logger, attr)


def get(name: str) -> LazyLogger:
    return LazyLogger(name)
