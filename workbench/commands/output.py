"""Where commands put their results; each face (CLI, notebook) renders them its own way."""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # an interface for type checkers (cli.TextOutput, notebook.NotebookOutput, relay.RelayOutput)
    from typing import Any, Protocol

    class Output(Protocol):
        """What a command may emit: lines of text, raw stream bytes, JSON documents, tables.

        `terminal` is True when our own stdin/stdout/stderr are the user's (the CLI): a command may
        then let a process write to them directly and proxy signals; a notebook gets everything
        through `stream` and stops a process by interrupting the cell.
        """

        terminal: bool

        def line(self, text: str) -> None: ...
        def stream(self, stream: str, data: bytes) -> None: ...
        def document(self, data: Any) -> None: ...
        def table(self, rows: list[dict[str, Any]], fmt: str, headers: dict[str, str] | None = None,
                  *, noheading: bool = False) -> None: ...
        def error(self, message: str) -> None: ...
        def progress(self, done: int, total: int, label: str) -> None:
            """Bytes moved so far of long work, out of `total` (< 0 while unknown); the last call has
            done == total. A notebook draws a bar ending in a summary; a terminal shows nothing."""


def show_traceback(out: Output, log_level: str) -> None:
    """With `--debug` (or `--log-level debug`), the traceback of the error being handled, shown
    before its one-line message; nothing otherwise."""
    if log_level in ("debug", "trace") and sys.exc_info()[1] is not None:
        import traceback

        out.stream("stderr", traceback.format_exc().encode())


#: Fields a table shows as text for people, and the typed field holding the same value for a
#: program (a notebook's DataFrame column: a time in seconds since the epoch, a size in bytes).
TYPED_FIELDS = {"CreatedHuman": "Created", "CreatedAt": "Created", "Size": "SizeBytes", "VirtualSize": "SizeBytes",
                "Time": "Timestamp"}


def to_json(data: Any) -> str:
    """Podman's JSON layout: 4-space indent, no HTML escaping."""
    return json.dumps(data, indent=4, ensure_ascii=False, default=str)


def emit_listing(out: Output, rows: list[dict[str, Any]], args: Any, default: str, headers: dict[str, str]) -> None:
    """A `ls` command's rows: names only with -q (`Name`), else as `emit_table` with --format and
    --noheading."""
    if args.quiet:
        for row in rows:
            out.line(row["Name"])
        return
    emit_table(out, rows, args.format, default, headers, noheading=args.noheading)


def emit_table(out: Output, rows: list[dict[str, Any]], fmt: str | None, default: str,
               headers: dict[str, str] | None = None, *, noheading: bool = False) -> None:
    """Podman's `--format` conventions: absent or `table` -> the default table, `json` -> a JSON array."""
    if fmt == "json":
        out.document(rows)
    else:
        out.table(rows, default if fmt in (None, "", "table") else fmt, headers, noheading=noheading)
