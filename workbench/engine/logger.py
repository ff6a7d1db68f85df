"""Loggers that import `logging` on first use: most commands never log, and importing and
configuring logging costs every CLI start several milliseconds."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable


_setup: Callable[[], None] | None = None
_threshold = 0  # records below this level are dropped without importing logging


def on_first_use(setup: Callable[[], None], level: int = 0) -> None:
    """Run `setup` (say, the CLI's handler) when a record of at least `level` is first logged."""
    global _setup, _threshold
    _setup, _threshold = setup, level


class LazyLogger:
    """Stands for `logging.getLogger(name)` until a record that will be shown is logged."""

    __slots__ = ("name", "_logger")

    def __init__(self, name: str):
        self.name = name
        self._logger: Any = None

    def _real(self) -> Any:
        if self._logger is None:
            global _setup
            import logging

            if _setup is not None:
                setup, _setup = _setup, None
                setup()
            self._logger = logging.getLogger(self.name)
        return self._logger

    def _log(self, level: int, method: str, args: tuple, kwargs: dict) -> None:
        if level >= _threshold:
            getattr(self._real(), method)(*args, **kwargs)

    def debug(self, *args: Any, **kwargs: Any) -> None:
        self._log(10, "debug", args, kwargs)

    def info(self, *args: Any, **kwargs: Any) -> None:
        self._log(20, "info", args, kwargs)

    def warning(self, *args: Any, **kwargs: Any) -> None:
        self._log(30, "warning", args, kwargs)

    def error(self, *args: Any, **kwargs: Any) -> None:
        self._log(40, "error", args, kwargs)

    def exception(self, *args: Any, **kwargs: Any) -> None:
        self._log(40, "exception", args, kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._real(), attr)


def get(name: str) -> LazyLogger:
    return LazyLogger(name)
