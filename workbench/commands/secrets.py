"""Secret commands: secret create, ls, inspect, rm, exists."""

from __future__ import annotations

import os
import sys
import time

from ..engine.errors import WorkbenchError
from . import humanize
from .context import Context
from .output import emit_listing

SECRET_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedHuman}}\t{{.UpdatedHuman}}"
SECRET_HEADERS = {"CreatedHuman": "CREATED", "UpdatedHuman": "UPDATED"}


def secret_create(ctx: Context) -> None:
    """`secret create NAME FILE` (`-` for standard input), or with --env the value of a variable."""
    a = ctx.args
    if a.env:
        if a.source not in os.environ:
            raise WorkbenchError(f"environment variable {a.source} is not set")
        data = os.environ[a.source].encode()
    elif a.source == "-":
        data = sys.stdin.buffer.read(512_001)
    else:
        try:
            with open(a.source, "rb") as f:
                data = f.read(512_001)
        except OSError as exc:
            raise WorkbenchError(f"reading secret data from {a.source}: {exc.strerror or exc}") from None
    labels = dict(item.partition("=")[::2] for item in a.label)
    ctx.out.line(ctx.rt.secrets.create(a.name, data, labels, replace=a.replace).id)


def secret_ls(ctx: Context) -> None:
    now = time.time()
    rows = [{"ID": s.id, "Name": s.name, "Driver": "file", "CreatedHuman": humanize.ago(s.created, now),
             "UpdatedHuman": humanize.ago(s.created, now), "Created": int(s.created), "Labels": s.labels}
            for s in ctx.rt.secrets.list()]
    emit_listing(ctx.out, rows, ctx.args, SECRET_FORMAT, SECRET_HEADERS)


def secret_inspect(ctx: Context) -> None:
    store = ctx.rt.secrets
    docs = []
    for name in ctx.args.secrets:
        try:
            docs.append(store.get(name).inspect())
        except WorkbenchError as exc:
            ctx.fail(str(exc))
    if ctx.args.format and ctx.args.format != "json":
        from .template import render

        for doc in docs:
            ctx.out.line(render(ctx.args.format, doc))
    else:
        ctx.out.document(docs)


def secret_rm(ctx: Context) -> None:
    a = ctx.args
    store = ctx.rt.secrets
    if bool(a.all) == bool(a.secrets):
        raise WorkbenchError("choose either one or more secrets or all")
    for name in [s.id for s in store.list()] if a.all else a.secrets:
        try:
            ctx.out.line(store.remove(name).id)
        except WorkbenchError as exc:  # the others are still removed
            ctx.fail(str(exc))


def secret_exists(ctx: Context) -> None:
    from ..engine.secrets import NoSuchSecret

    try:
        ctx.rt.secrets.get(ctx.args.secret)
    except NoSuchSecret:
        ctx.exit_code = 1
