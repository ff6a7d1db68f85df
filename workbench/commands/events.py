"""`events` / `system events`: the recorded lifecycle events, printed or followed as Podman does."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable

from .context import Context

if TYPE_CHECKING:
    from ..engine.events import Event


def _renderer(fmt: str | None, truncate: bool) -> Callable[["Event"], str]:
    """Podman's default line, compact JSON per event (`json`), or a Go template per event."""
    if not fmt:
        return lambda e: e.human(truncate)
    if fmt.strip() in ("json", "{{json .}}"):
        return lambda e: json.dumps(e.to_json(), separators=(",", ":"), ensure_ascii=False)
    from .template import compile_template

    body = fmt[len("table "):] if fmt.startswith("table ") else fmt
    tpl = compile_template(body)
    return lambda e: tpl.render(e.template_data()).removesuffix("\n")


#: A notebook's default for events it need not follow: a table (a DataFrame there).
TABLE_FORMAT = "table {{.Time}}\t{{.Type}}\t{{.Status}}\t{{.ID}}\t{{.Name}}\t{{.Image}}"


def events(ctx: Context) -> None:
    from ..engine import events as engine_events

    a = ctx.args
    found = engine_events.read(ctx.rt.runroot, since=a.since, until=a.until, follow=a.stream, filters=a.filter)
    if not ctx.out.terminal and not a.stream and not a.format:
        rows = [{**e.template_data(), "Timestamp": e.time_ns / 1e9} for e in found]
        ctx.out.table(rows, TABLE_FORMAT)
        return
    render = _renderer(a.format, truncate=not a.no_trunc)
    try:
        for event in found:
            text = render(event)
            if a.stream:
                ctx.out.stream("stdout", (text + "\n").encode())  # flushed: a follower sees it at once
            else:
                ctx.out.line(text)
    except KeyboardInterrupt:
        pass  # Ctrl-C ends a stream; Podman exits 0
