"""`top CONTAINER [descriptors...]`: a container's processes as Podman prints them."""

from __future__ import annotations

from .context import Context


def top(ctx: Context) -> None:
    a = ctx.args
    table = ctx.rt.container(a.container).top(a.descriptors)
    fmt = "table " + "\t".join("{{." + name + "}}" for name in table.descriptors)
    rows = [{name: _printable(value) for name, value in zip(table.descriptors, row)} for row in table.rows]
    ctx.out.table(rows, fmt, dict(zip(table.descriptors, table.headers)))


def _printable(value: str) -> str:
    """A value with control characters shown as `?`, as ps does: a process names itself, so its
    command line must not be able to add rows or send escape sequences to the terminal."""
    return value if value.isprintable() else "".join(ch if ch.isprintable() else "?" for ch in value)
