"""What every command implementation receives: parsed arguments, a lazily opened Runtime, an Output."""

from __future__ import annotations

import argparse
import os

from .output import show_traceback

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .output import Output
    from ..engine.progress import ByteProgress
    from ..engine.runtime import Runtime


class Context:
    """One command's run: its arguments, where its output goes, its exit code."""

    def __init__(self, args: argparse.Namespace, out: Output, *, runtime: "Runtime | None" = None,
                 input: bytes | None = None):
        self.args = args
        self.out = out
        self.exit_code = 0
        self._runtime: Any = runtime
        self.input = input  # what a process's stdin gets, when not the user's terminal (a %%ctr cell)

    @property
    def rt(self) -> "Runtime":
        if self._runtime is None:
            from ..engine.runtime import Runtime

            self._runtime = Runtime(self.args.root, self.args.runroot, oci_runtime=self.args.runtime)
        return self._runtime

    def progress(self, label: str, quiet: bool = False) -> "ByteProgress | None":
        """Byte progress of long work, drawn by the output (a bar in a notebook, nothing on a
        terminal); None with `quiet`."""
        return None if quiet else (lambda done, total: self.out.progress(done, total, label))

    def notebook_only(self, flag: str) -> None:
        """Refuse a flag that only a notebook can honour (a widget) on a terminal."""
        if self.out.terminal:
            from ..engine.errors import InvalidArgument

            raise InvalidArgument(f"{flag} shows a widget: use it in a notebook (%ctr ... {flag})")

    def fail(self, message: str, code: int = 125) -> None:
        """Report one error and remember the exit code (the last failure wins, as in Podman)."""
        show_traceback(self.out, self.args.log_level)
        self.out.error(message)
        self.exit_code = code

    def env_from_flags(self, values: list[str], files: list[str] = ()) -> dict[str, str]:
        """`--env-file` lines (KEY=VALUE, or KEY; `#` comments and blank lines skipped), then
        `-e KEY=VALUE`, or `-e KEY` taking the value from our environment (skipped when unset)."""
        env: dict[str, str] = {}
        for item in [*_file_lines(files, "env file"), *values]:
            if any(ch.isspace() for ch in item.partition("=")[0]):
                from ..engine.errors import InvalidArgument

                raise InvalidArgument(f"environment variable {item.partition('=')[0]!r} contains whitespaces")
            key, sep, value = item.partition("=")
            if not key:
                from ..engine.errors import InvalidArgument

                raise InvalidArgument(f"invalid environment variable: {item!r}")
            if sep:
                env[key] = value
            elif key in os.environ:
                env[key] = os.environ[key]
        return env

    def labels_from_flags(self, values: list[str], files: list[str] = ()) -> dict[str, str]:
        """`--label-file` lines, then `-l KEY=VALUE` (a bare KEY: an empty value)."""
        labels = {}
        for item in [*_file_lines(files, "label file"), *values]:
            key, _, value = item.partition("=")
            labels[key] = value
        return labels


def _file_lines(paths: list[str], what: str) -> list[str]:
    """The lines of files of KEY=VALUE lines, blank lines and `#` comments left out."""
    lines = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                lines += [line.strip() for line in f if line.strip() and not line.strip().startswith("#")]
        except (OSError, UnicodeDecodeError) as exc:
            from ..engine.errors import InvalidArgument

            raise InvalidArgument(f"reading {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return lines
