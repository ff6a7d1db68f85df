"""`update`: change a running container's cgroup limits."""

from __future__ import annotations

from .containers import limit_flags
from .context import Context


def update(ctx: Context) -> None:
    c = ctx.rt.container(ctx.args.container)
    c.update(**limit_flags(ctx))
    ctx.out.line(c.id)
