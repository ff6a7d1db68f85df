"""The notebook face: the CLI's commands (commands/) run in a kernel and answered as a notebook does.

`ctr("ps -a")` (what `%ctr ps -a` calls) parses exactly what `workbench ps -a` parses, runs the
same implementation, and renders: tables as DataFrames with typed columns, inspect data as a
rich document, process output streamed live into the cell (stdout and stderr apart), errors as
one line. Usable without IPython's magic machinery: `from workbench.notebook import ctr`.
"""

from __future__ import annotations

import codecs
import functools
import re
import shlex
import sys
from typing import Any, Callable, Mapping

from .commands.output import TYPED_FIELDS, to_json

#: Columns holding seconds since the epoch (shown as datetimes) and bytes (shown human-readably).
TIME_COLUMNS = frozenset({"Created", "StartedAt", "ExitedAt", "FinishedAt", "Timestamp"})
SIZE_COLUMNS = frozenset({"SizeBytes", "MemUsageBytes", "MemLimitBytes", "NetInputBytes", "NetOutputBytes",
                          "BlockInputBytes", "BlockOutputBytes"})
_FIELD = re.compile(r"{{\s*\.(\w+)\s*}}")
_EXPR = re.compile(r"{{(.*?)}}")
_TAIL = 64 * 1024


class CtrError(Exception):
    """A command that failed, raised with `--raise` (or `raise_on_error`); `exit_code` as the CLI's."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class NotebookOutput:
    """The Output of commands/ for a cell: streams written live, the rest collected for the result."""

    terminal = False

    def __init__(self, stdout: Any = None, stderr: Any = None):
        self._out, self._err = stdout or sys.stdout, stderr or sys.stderr
        self._decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in ("stdout", "stderr")}
        self.lines: list[str] = []
        self.documents: list[Any] = []
        self.frames: list[Any] = []
        self.errors: list[str] = []
        self.widgets: list[Any] = []  # a widget the command opened (a Console): the cell's result
        self.tails = {"stdout": "", "stderr": ""}
        self._bar: Any = None
        self._bar_drawn = 0.0

    def line(self, text: str) -> None:
        self.lines.append(text)
        self._write("stdout", text + "\n")

    def stream(self, stream: str, data: bytes) -> None:
        name = "stderr" if stream == "stderr" else "stdout"
        self._write(name, self._decoders[name].decode(data))

    def document(self, data: Any) -> None:
        self.documents.append(data)

    def table(self, rows: list[dict[str, Any]], fmt: str, headers: dict[str, str] | None = None, *,
              noheading: bool = False) -> None:
        from .commands.template import is_table, render_rows

        if is_table(fmt):
            self.frames.append(frame(rows, fmt, headers))
        else:
            for text in render_rows(fmt, rows).splitlines():
                self.line(text)

    def error(self, message: str) -> None:
        self.errors.append(message)
        self._write("stderr", f"Error: {message}\n")

    def progress(self, done: int, total: int, label: str) -> None:
        """A progress bar in the cell, redrawn at most 5 times a second; a summary line at the end."""
        import time

        now = time.monotonic()
        if self._bar is not None and not 0 <= total <= done and now - self._bar_drawn < 0.2:
            return
        from IPython.display import HTML, display

        html = progress_html(done, total, label)
        if self._bar is None:
            self._bar = display(HTML(html), display_id=True)
        else:
            self._bar.update(HTML(html))
        self._bar_drawn = now

    def finish(self) -> None:
        for name, decoder in self._decoders.items():
            rest = decoder.decode(b"", final=True)
            if rest:
                self._write(name, rest)

    def _write(self, name: str, text: str) -> None:
        if not text:
            return
        self.tails[name] = (self.tails[name] + text)[-_TAIL:]
        target = self._err if name == "stderr" else self._out
        target.write(text)
        target.flush()


class CtrResult:
    """What a command that is not a table or a document gives back: exit code, lines, output tails.

    Output was shown live already, so displaying the result adds only a failure badge.
    """

    def __init__(self, argv: list[str], exit_code: int, out: NotebookOutput):
        self.argv, self.exit_code = argv, exit_code
        self.lines, self.errors = list(out.lines), list(out.errors)
        self.stdout, self.stderr = out.tails["stdout"], out.tails["stderr"]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def __repr__(self) -> str:
        return f"<ctr {' '.join(self.argv[:3])}{' ...' if len(self.argv) > 3 else ''}: exit code {self.exit_code}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        text = "\n".join(self.lines) or repr(self)
        return {"text/plain": text, "text/html": _badge(self.exit_code, self.errors) + _pre(text)}

    def _ipython_display_(self) -> None:
        if self.exit_code != 0:
            from IPython.display import HTML, display

            display(HTML(_badge(self.exit_code, self.errors)))


class Document:
    """JSON data from a command (inspect, `--format json`): a readable table, collapsible JSON."""

    def __init__(self, data: Any, exit_code: int = 0):
        self.data, self.exit_code = data, exit_code

    def __getitem__(self, key: Any) -> Any:
        return self.data[key]

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return to_json(self.data)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data = self.data if isinstance(self.data, (dict, list)) else {"value": self.data}
        return {"text/plain": repr(self), "text/html": html_document(self.data), "application/json": data}

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.json_normalize(self.data)


def progress_html(done: int, total: int, label: str) -> str:
    """A bar with the bytes moved (a moving one while the total is unknown, total < 0); at the end
    (done == total), one summary line."""
    import html

    from .commands.humanize import size

    if 0 <= total <= done:
        return f"<span>&#10003; {html.escape(label)}: {size(done)}</span>"
    if total < 0:
        return f'<span>{html.escape(label)} <progress style="width:40%"></progress> {size(done)}</span>'
    return (f'<span>{html.escape(label)} <progress value="{done}" max="{total}" style="width:40%">'
            f"</progress> {size(done)} / {size(total)}</span>")


def html_document(data: Any) -> str:
    """Nested data as HTML: a section per top-level key, nested mappings as rows, long values folded."""
    import html

    items = data if isinstance(data, list) else [data]
    parts = []
    for item in items:
        if not isinstance(item, dict):
            parts.append(_pre(to_json(item)))
            continue
        title = item.get("Name") or item.get("Id") or ""
        parts.append(f"<div><b>{html.escape(str(title)[:64])}</b>")
        scalars = [(k, v) for k, v in item.items() if not isinstance(v, (dict, list))]
        parts.append(_rows(scalars))
        for key, value in item.items():
            if isinstance(value, (dict, list)) and value:
                parts.append(f"<details><summary>{html.escape(str(key))}</summary>{_rows(_flatten(value))}</details>")
        parts.append("</div>")
    return "".join(parts)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    entries = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in entries:
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, (dict, list)) and item:
            out.extend(_flatten(item, name))
        else:
            out.append((name, item))
    return out


def _rows(pairs: list[tuple[str, Any]]) -> str:
    import html

    cells = []
    for key, value in pairs:
        text = value if isinstance(value, str) else to_json(value)
        shown = html.escape(text if len(text) <= 80 else text[:77] + "...")
        cells.append(f'<tr><th style="text-align:left">{html.escape(key)}</th>'
                     f'<td style="text-align:left" title="{html.escape(text)}">{shown}</td></tr>')
    return f"<table>{''.join(cells)}</table>"


def _badge(code: int, errors: list[str]) -> str:
    import html

    if code == 0:
        return '<span style="color:#1a7f37">&#10003; exit code 0</span>'
    why = f": {html.escape(errors[-1])}" if errors else ""
    return f'<span style="color:#cf222e;font-weight:bold">&#10007; exit code {code}</span>{why}'


def _pre(text: str) -> str:
    import html

    return f"<pre>{html.escape(text)}</pre>" if text else ""


def frame(rows: list[dict[str, Any]], fmt: str, headers: dict[str, str] | None = None) -> Any:
    """The table a `table {{.ID}}\\t...` format describes, as a DataFrame with typed columns:
    times as datetimes, sizes as bytes (shown human-readably), numbers as numbers."""
    import pandas as pd

    from .commands.template import field_header

    fields = _FIELD.findall(fmt)
    columns: dict[str, str] = {}  # title -> row key
    for name in fields:
        key = TYPED_FIELDS.get(name, name)
        if rows and key not in rows[0]:
            key = name
        title = (headers or {}).get(name) or field_header(name)
        columns.setdefault(title, key)
    data = {title: [row.get(key) for row in rows] for title, key in columns.items()}
    df = ctr_frame_class()(data, columns=list(columns))
    for title, key in columns.items():
        if key in TIME_COLUMNS and all(isinstance(v, (int, float)) for v in data[title]):
            df[title] = pd.to_datetime(df[title], unit="s", utc=True)
    df.size_columns = [title for title, key in columns.items() if key in SIZE_COLUMNS]
    return df


@functools.lru_cache(maxsize=1)
def ctr_frame_class() -> type:
    """CtrFrame, built on first use: pandas loads only when a table is shown."""
    import pandas as pd

    class CtrFrame(pd.DataFrame):
        """A DataFrame whose size columns (bytes) display human-readably; data stays numeric."""

        _metadata = ["size_columns", "exit_code"]
        size_columns: list[str] = []
        exit_code = 0

        @property
        def _constructor(self) -> type:
            return CtrFrame

        def _repr_html_(self) -> str | None:
            sizes = [c for c in self.size_columns if c in self.columns]
            if not sizes:
                return super()._repr_html_()
            from .commands.humanize import size

            shown = pd.DataFrame(self).copy()
            for column in sizes:
                shown[column] = [size(v) if isinstance(v, (int, float)) else v for v in shown[column]]
            return shown._repr_html_()
    return CtrFrame


# -- running a command -------------------------------------------------------------------------
def split(line: str, namespace: Mapping[str, Any]) -> list[str]:
    """POSIX shell words, then `{{expr}}` in each word evaluated in `namespace`.

    An expression may hold spaces (it is set aside before splitting); a word that is only
    `{{expr}}` of a list or tuple becomes several arguments. `$X`, `${X}`, `{a,b}` and single
    braces stay as they are: they belong to the container's shell.
    """
    held: list[str] = []

    def hold(match: re.Match) -> str:
        held.append(match.group(0))
        return f"\0{len(held) - 1}\0"
    words = shlex.split(_EXPR.sub(hold, line), posix=True)
    return expand([re.sub(r"\0(\d+)\0", lambda m: held[int(m.group(1))], w) for w in words], namespace)


def expand(tokens: list[str], namespace: Mapping[str, Any]) -> list[str]:
    """`{{expr}}` in each token evaluated in `namespace`; a token that is only `{{expr}}` of a list
    or tuple becomes several arguments. Go template actions (`{{.Names}}`, `{{json .}}`, `{{end}}`)
    are left for `--format`."""
    out: list[str] = []
    def substitute(match: re.Match) -> str:
        return match.group(0) if _is_go_action(match.group(1)) else str(_evaluate(match.group(1), namespace))
    for token in tokens:
        whole = _EXPR.fullmatch(token)
        if whole and not _is_go_action(whole.group(1)):
            value = _evaluate(whole.group(1), namespace)
            out.extend(str(v) for v in value) if isinstance(value, (list, tuple)) else out.append(str(value))
        else:
            out.append(_EXPR.sub(substitute, token))
    return out


_GO_KEYWORDS = frozenset({"end", "else", "range", "if", "with", "define", "template", "block", "break", "continue"})


def _is_go_action(expr: str) -> bool:
    """`{{.State.Status}}`, `{{json .}}`, `{{range .Names}}`, `{{end}}`: a --format template, not Python."""
    words = expr.strip().strip("-").split()
    return not words or words[0] in _GO_KEYWORDS or any(w.lstrip("(").startswith((".", "$")) for w in words)


def _evaluate(expr: str, namespace: Mapping[str, Any]) -> Any:
    try:
        return eval(expr.strip(), {}, dict(namespace))  # the user's own notebook namespace, as jupysql
    except Exception as exc:
        raise CtrError(f"cannot expand {{{{{expr.strip()}}}}}: {type(exc).__name__}: {exc}", 125) from None


class Kernel:
    """One Runtime per kernel, made on first use; global flags alone (`%ctr --root DIR`,
    `%ctr --debug`) reconfigure it."""

    def __init__(self) -> None:
        self.root: str | None = None
        self.runroot: str | None = None
        self.log_level = "warn"
        self._runtimes: dict[tuple[str | None, str | None, str | None, bool], Any] = {}

    def runtime(self, root: str | None = None, runroot: str | None = None, oci: str | None = None) -> Any:
        """The Runtime for these flags; in a rootless kernel (threads: it cannot join the user
        namespace) a ForkedRuntime, whose calls run in forked children that do."""
        forked = _forked()  # False in a forked child that is about to join: it gets a real Runtime
        key = (root or self.root, runroot or self.runroot, oci, forked)
        if key not in self._runtimes:
            if forked:
                from .widgets.rootless import ForkedRuntime

                self._runtimes[key] = ForkedRuntime(key[0], key[1], oci)
            else:
                from .engine.runtime import Runtime

                self._runtimes[key] = Runtime(key[0], key[1], oci_runtime=oci)
        return self._runtimes[key]

    def close(self) -> None:
        for rt in self._runtimes.values():
            rt.close()
        self._runtimes.clear()


KERNEL = Kernel()


def ctr(line: str, cell: str | None = None, *, namespace: Mapping[str, Any] | None = None,
        raise_on_error: bool = False, kernel: Kernel = KERNEL,
        on_exit_code: Callable[[int], None] | None = None) -> Any:
    """Run one Workbench command line in the notebook; returns a DataFrame, a Document or a CtrResult.

    `cell`: a `%%ctr` body: the stdin of `exec`/`run` (a script for `sh` when no command is
    given), or the content of `file CONTAINER:/path`.
    """
    tokens = split(line, namespace or {})
    if tokens[:1] == ["--raise"]:
        raise_on_error, tokens = True, tokens[1:]
    if cell is not None and tokens[:1] == ["file"]:
        return _write_file(tokens[1:], cell, kernel)
    if cell is not None:
        tokens = _cell_command(tokens)
    out = NotebookOutput()
    code = _run(tokens, out, kernel, None if cell is None else cell.encode())
    out.finish()
    if on_exit_code is not None:
        on_exit_code(code)
    if code != 0 and raise_on_error:
        raise CtrError(out.errors[-1] if out.errors else f"command exited with code {code}", code)
    if out.widgets and code == 0:
        return out.widgets[-1]
    if out.frames:
        result = out.frames[-1]
        result.exit_code = code
        return result
    if out.documents:
        data = out.documents[-1] if len(out.documents) == 1 else out.documents
        if _inspects(tokens):  # shown as InspectViews where widgets work; still the same Document
            from .widgets.inspect import inspect_document

            return inspect_document(data, code, _runtime_of(tokens, kernel))
        return Document(data, code)
    return CtrResult(tokens, code, out)


def _cell_command(tokens: list[str]) -> list[str]:
    """`%%ctr exec [flags] CONTAINER [CMD]` / `%%ctr run [flags] IMAGE [CMD]`: the body is stdin
    (-i added), run by `sh` when no command is given."""
    from .commands.parser import parse

    if tokens[:1] not in (["exec"], ["run"]):
        raise CtrError("%%ctr takes `exec CONTAINER [COMMAND]`, `run IMAGE [COMMAND]` or "
                       "`file CONTAINER:/path` (the cell is their input)", 125)
    args = parse(tokens)
    command = [] if args.command else ["sh"]
    return [tokens[0], "-i", *tokens[1:], *command]


def _run(tokens: list[str], out: NotebookOutput, kernel: Kernel, stdin: bytes | None) -> int:
    from .commands import handler as find_handler
    from .commands.context import Context
    from .commands.parser import UsageError, parse

    try:
        args = parse(tokens)
    except SystemExit as exc:  # argparse printed a command's --help
        return int(exc.code or 0)
    except UsageError as exc:
        if "missing command" in str(exc) and tokens:  # only global flags: they configure the kernel
            return _configure(tokens, kernel, out)
        out.error(str(exc).splitlines()[0])
        return 125
    if args.help:
        out.line(args.usage)
        return 0
    if args.log_level == "warn":  # not given: the kernel's (`%ctr --debug` alone sets it)
        args.log_level = kernel.log_level
    if stdin is None and _opens_console(args):
        return _open_console(args, out, kernel)
    if _opens_view(args):  # `ps --widget`, `stats --plot`: a live widget is the cell's result
        return _open_view(args, out, kernel)
    if stdin is None and getattr(args, "interactive", False) and not getattr(args, "detach", False):
        out.error("-i needs input, and a notebook cell has no terminal: give the input as a %%ctr cell "
                  "(`%%ctr exec CONTAINER` + the script), or leave out -i")
        return 125
    if args.command_name == "attach":
        args.no_stdin = True  # the cell shows the output; there is no terminal to type into

    def execute(out: Any) -> int:
        def handle() -> int:
            ctx = Context(args=args, out=out, runtime=kernel.runtime(args.root, args.runroot, args.runtime),
                          input=stdin)
            find_handler(args.command_name)(ctx)
            return ctx.exit_code
        return _reported(out, handle, args.log_level)
    try:
        return _in_engine(execute, out)
    except KeyboardInterrupt:
        out.stream("stderr", b"Interrupted\n")
        return 130


def _forked() -> bool:
    """Whether commands run in a forked child: a rootless kernel (threads) cannot join the user
    namespace itself (see commands/relay.py)."""
    from .engine import rootless

    return rootless.is_rootless() and not rootless.in_namespace() and rootless.thread_count() > 1


def _in_engine(work: Callable[[Any], int], out: Any) -> int:
    """`work(out)` here, or in a forked child that joins the user namespace (a rootless kernel)."""
    if _forked():
        from .commands.relay import run_forked

        return run_forked(work, out)
    return work(out)


def _reported(out: NotebookOutput, work: Callable[[], int], log_level: str = "warn") -> int:
    """Run a command's body; its errors become one line in the cell and the CLI's exit code
    (with `--debug`, after the traceback)."""
    from .commands.output import show_traceback
    from .engine.errors import WorkbenchError

    try:
        return work()
    except (WorkbenchError, ValueError, OSError) as exc:
        show_traceback(out, log_level)
        out.error(str(exc))
        return exc.exit_code if isinstance(exc, WorkbenchError) else 125


def _opens_console(args: Any) -> bool:
    """`exec -it`, `run -it` (not detached) and `attach` (with stdin) open a Console widget."""
    if args.command_name in ("exec", "run"):
        return bool(args.interactive and args.tty and not args.detach)
    return args.command_name == "attach" and not args.no_stdin


def _open_console(args: Any, out: NotebookOutput, kernel: Kernel) -> int:
    """A terminal in the cell: the cell returns at once with the Console; a pump moves the bytes."""
    import io

    from .commands.context import Context
    from .engine.errors import ContainerStateError, InvalidArgument
    from .engine.state import ContainerState

    try:
        from .widgets.console import Console
    except ImportError as exc:
        out.error(f"an interactive console needs the notebook extras (pip install 'workbench[jupyter]'): {exc}")
        return 125
    rt = kernel.runtime(args.root, args.runroot, args.runtime)  # a ForkedRuntime in a rootless kernel

    def open_one() -> int:
        if args.command_name == "exec":
            if not args.command:
                raise InvalidArgument("must provide a non-empty command to start an exec session: invalid argument")
            env = Context(args=args, out=out, runtime=None).env_from_flags(args.env, args.env_file)
            console = Console(rt.container(args.container), args.command, env=env,
                              user=args.user, workdir=args.workdir, privileged=args.privileged)
        elif args.command_name == "attach":
            c = rt.container(args.container)
            if c.state != ContainerState.RUNNING:
                raise ContainerStateError("you can only attach to running containers")
            console = Console(c)
        else:  # run -it: create, then attach and start (no output lost)
            quiet = NotebookOutput(io.StringIO(), io.StringIO())
            code = _in_engine(lambda o: _reported(o, lambda: _create(args, o, kernel)), quiet)
            if code or not quiet.lines:
                for message in quiet.errors:
                    out.error(message)
                return code or 125
            c = rt.container(quiet.lines[-1])
            try:
                console = Console(c, start=True)
            except BaseException:
                if args.rm:
                    c.remove(force=True)
                raise
        out.widgets.append(console)
        return 0
    return _reported(out, open_one)


def _create(args: Any, out: Any, kernel: Kernel) -> int:
    """`create` with the parsed `run` flags; the new container's ID is its last line."""
    from .commands import handler as find_handler
    from .commands.context import Context

    ctx = Context(args=args, out=out, runtime=kernel.runtime(args.root, args.runroot, args.runtime))
    find_handler("create")(ctx)
    return ctx.exit_code


def _widgets_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("ipywidgets", "anywidget"))


def _opens_view(args: Any) -> bool:
    return ((args.command_name == "ps" and getattr(args, "widget", False))
            or (args.command_name == "stats" and getattr(args, "plot", False)))


def _open_view(args: Any, out: NotebookOutput, kernel: Kernel) -> int:
    """`ps --widget`: a ContainerTable (every container with -a); `stats --plot`: a StatsPlot of the
    named container (of every running one without a name, one plot per name otherwise), sampled
    every second unless `-i/--interval` says otherwise."""
    from .engine.errors import WorkbenchError

    if not _widgets_available():
        out.error("live widgets need the notebook extras (pip install 'workbench[jupyter]')")
        return 125
    rt = kernel.runtime(args.root, args.runroot, args.runtime)

    def open_one() -> int:
        if args.command_name == "ps":
            from .widgets.table import ContainerTable

            out.widgets.append(ContainerTable(rt, all=args.all))
            return 0
        from .widgets.stats import StatsPlot

        interval = 1.0 if args.interval is None else args.interval
        if interval <= 0:
            raise WorkbenchError("invalid interval, must be a positive number greater zero")
        targets = [rt.container(name) for name in args.containers] or [rt]
        plots = [StatsPlot(target, interval=interval) for target in targets]
        if len(plots) == 1:
            out.widgets.append(plots[0])
        else:
            import ipywidgets

            out.widgets.append(ipywidgets.VBox(plots))
        return 0
    return _reported(out, open_one)


def _inspects(tokens: list[str]) -> bool:
    """An `inspect` whose result is JSON data (no Go template), with widgets installed."""
    from .commands.parser import UsageError, parse

    try:
        args = parse(tokens)
    except (UsageError, SystemExit):
        return False
    return (args.command_name in ("inspect", "container_inspect", "image_inspect")
            and getattr(args, "format", None) in (None, "", "json") and _widgets_available())


def _runtime_of(tokens: list[str], kernel: Kernel) -> Any:
    """The kernel's Runtime for these flags (a ForkedRuntime in a rootless kernel)."""
    from .commands.parser import parse

    args = parse(tokens)
    return kernel.runtime(args.root, args.runroot, args.runtime)


def _configure(tokens: list[str], kernel: Kernel, out: NotebookOutput) -> int:
    from .commands.parser import parse

    args = parse([*tokens, "info"])
    if args.root is not None or args.runroot is not None:
        kernel.close()
        kernel.root, kernel.runroot = args.root, args.runroot
    kernel.log_level = args.log_level
    out.line(f"workbench: graph root {kernel.root or 'default'}, run root {kernel.runroot or 'default'}, "
             f"log level {kernel.log_level}")
    return 0


def _write_file(tokens: list[str], body: str, kernel: Kernel) -> CtrResult:
    """`%%ctr file CONTAINER:/path`: the cell becomes that file in the container (0644)."""
    import io
    import posixpath
    import tarfile

    out = NotebookOutput()
    if len(tokens) != 1 or ":" not in tokens[0]:
        out.error("usage: %%ctr file CONTAINER:/path/in/container")
        return CtrResult(["file", *tokens], 125, out)
    name, _, path = tokens[0].partition(":")
    if not path.startswith("/") or path.endswith("/"):
        out.error(f'"{path}" is not an absolute file path in the container')
        return CtrResult(["file", *tokens], 125, out)
    data = body.encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:  # one regular file we make ourselves
        info = tarfile.TarInfo(posixpath.basename(path))
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    archive.seek(0)

    def write(out: Any) -> int:
        from .engine.errors import WorkbenchError

        try:
            kernel.runtime().container(name).put_archive(archive, posixpath.dirname(path) or "/")
        except (WorkbenchError, OSError) as exc:
            out.error(str(exc))
            return getattr(exc, "exit_code", 125)
        out.line(f"wrote {len(data)} bytes to {name}:{path}")
        return 0
    return CtrResult(["file", *tokens], _in_engine(write, out), out)


class ContainersUnavailable(Exception):
    """This host cannot run containers (a Binder pod, say): shown as its message, no traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m{self}\x1b[0m"]


def require_containers() -> None:
    """Stop a notebook plainly where containers cannot run: what is missing, not a traceback."""
    from .engine import doctor

    results = doctor.checks()
    if not doctor.containers_can_run(results):
        missing = "; ".join(f"{c.name}: {c.detail}" for c in results
                            if c.status == doctor.MISSING or (c.name == "privileges" and c.status != doctor.OK))
        raise ContainersUnavailable(f"Containers cannot run on this host ({missing}). The cells below need "
                                    "them; the doctor's table above says what each missing piece needs.")
