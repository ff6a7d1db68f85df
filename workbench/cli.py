"""The `workbench` console script: commands/ rendered as text, with Podman's exit codes."""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # annotations only: typing costs 15-20 ms to import here
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any


class TextOutput:
    """Renders command results on a terminal: lines, raw streams, tables, `Error:` lines."""

    terminal = True

    def __init__(self, stdout=None, stderr=None):
        self._out = stdout or sys.stdout
        self._err = stderr or sys.stderr

    def line(self, text: str) -> None:
        self._out.write(text + "\n")

    def stream(self, stream: str, data: bytes) -> None:
        target = self._err if stream == "stderr" else self._out
        target.flush()
        target.buffer.write(data)
        target.buffer.flush()

    def document(self, data: Any) -> None:
        from .commands.output import to_json

        self.line(to_json(data))

    def table(self, rows, fmt, headers=None, *, noheading=False) -> None:
        from .commands.template import is_table, render_rows, render_table

        if is_table(fmt):
            self._out.write(render_table(fmt, rows, headers, noheading=noheading))
        else:
            self._out.write(render_rows(fmt, rows))

    def progress(self, done: int, total: int, label: str) -> None:
        pass  # the CLI prints Podman's per-blob lines instead

    def error(self, message: str) -> None:
        self._out.flush()
        self._err.write(f"Error: {message}\n")
        self._err.flush()


_LEVELS = {"trace": 10, "debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "fatal": 50, "panic": 50}
def _configure_logging(level: str) -> None:
    """Podman's `WARN[0002] message` lines on stderr, at the level --log-level asks for."""
    import logging

    start = time.monotonic()
    names = {"WARNING": "WARN", "CRITICAL": "FATA", "ERROR": "ERRO", "INFO": "INFO", "DEBUG": "DEBU"}

    class PodmanFormat(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            elapsed = int(time.monotonic() - start)
            text = f"{names.get(record.levelname, record.levelname[:4])}[{elapsed:04d}] {record.getMessage()}"
            return text + "\n" + self.formatException(record.exc_info) if record.exc_info else text

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PodmanFormat())
    logging.basicConfig(level=_LEVELS[level], handlers=[handler])


def main(argv: list[str] | None = None) -> int:
    """Parse, run one command, render, and return the exit code."""
    from .commands import handler as find_handler
    from .commands.context import Context
    from .commands.output import show_traceback
    from .commands.parser import parse
    from .engine.errors import WorkbenchError

    out = TextOutput()
    try:
        args = parse(sys.argv[1:] if argv is None else argv)
    except WorkbenchError as exc:
        out.error(str(exc))
        return 125
    if args.help:
        out.line(args.usage)
        return 0
    handler = find_handler(args.command_name)
    from .engine import logger

    logger.on_first_use(lambda: _configure_logging(args.log_level), _LEVELS[args.log_level])
    ctx = Context(args=args, out=out)
    try:
        handler(ctx)
    except WorkbenchError as exc:
        show_traceback(out, args.log_level)
        out.error(str(exc))
        return exc.exit_code
    except ValueError as exc:  # template errors and other bad input from the command line
        show_traceback(out, args.log_level)
        out.error(str(exc))
        return 125
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a file the user named, a permission, a full disk: say which
        show_traceback(out, args.log_level)
        out.error(f"{os.fsdecode(exc.filename) + ': ' if exc.filename else ''}{exc.strerror or exc}")
        return 125
    except BrokenPipeError:
        return 0
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            pass
    return ctx.exit_code


def run() -> None:
    """The console script: main(), then exit without tearing the interpreter down.

    Finalization (freeing every module and object) costs a short command like `exec` 5-15 ms
    here; the only state to keep is what is buffered in stdout/stderr, flushed first. Logging's
    handlers write through at once, and SQLite has committed every transaction already.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
