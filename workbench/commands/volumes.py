"""Volume commands: volume create, ls, inspect, rm, export, import, exists."""

from __future__ import annotations

import sys

from ..engine.errors import WorkbenchError
from .context import Context
from .output import emit_listing

VOLUME_FORMAT = "table {{.Driver}}\t{{.Name}}"
VOLUME_HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME"}


def volume_create(ctx: Context) -> None:
    a = ctx.args
    labels = dict(item.partition("=")[::2] for item in a.label)
    ctx.out.line(ctx.rt.volumes.create(a.name, labels).name)


def volume_ls(ctx: Context) -> None:
    rows = [{"Name": v.name, "Driver": "local", "Mountpoint": v.mountpoint, "Labels": v.labels,
             "Scope": "local", "Anonymous": v.anonymous} for v in ctx.rt.volumes.list()]
    emit_listing(ctx.out, rows, ctx.args, VOLUME_FORMAT, VOLUME_HEADERS)


def volume_inspect(ctx: Context) -> None:
    store = ctx.rt.volumes
    names = [v.name for v in store.list()] if ctx.args.all else ctx.args.volumes
    docs = []
    for name in names:
        volume = store.get(name)
        running = [c for c in store.users(name) if ctx.rt.container(c).st.mounted]
        docs.append(volume.inspect(mount_count=len(running)))
    ctx.out.document(docs)


def volume_rm(ctx: Context) -> None:
    """Remove volumes; with --force, the containers using them first. As podman volume rm, each
    name on its own: the exit code is 1 for a volume that does not exist, 2 for one in use."""
    from ..engine.volumes import NoSuchVolume, VolumeInUse

    a = ctx.args
    store = ctx.rt.volumes
    if bool(a.all) == bool(a.volumes):
        raise WorkbenchError("choose either one or more volumes or all")
    names = [v.name for v in store.list()] if a.all else a.volumes
    for name in names:
        try:
            store.get(name)
            if a.force:
                for ctr_id in store.users(name):
                    ctx.rt.container(ctr_id).remove(force=True, timeout=a.time)
            store.remove(name)
            ctx.out.line(name)
        except WorkbenchError as exc:  # the others are still removed; the exit code is the last failure's
            code = 1 if isinstance(exc, NoSuchVolume) else 2 if isinstance(exc, VolumeInUse) else exc.exit_code
            ctx.fail(str(exc), code)


def volume_export(ctx: Context) -> None:
    from ..engine.files import write_output

    a = ctx.args
    ctx.rt.volumes.get(a.volume)  # a missing volume: no output file is made
    if not a.output and sys.stdout.isatty():
        raise WorkbenchError("refusing to write a tar stream to the terminal: use -o or redirect")
    write_output(a.output or None, lambda out: ctx.rt.volumes.export(a.volume, out))


def volume_import(ctx: Context) -> None:
    a = ctx.args
    if a.source == "-":
        ctx.rt.volumes.import_tar(a.volume, sys.stdin.buffer)
        return
    try:
        stream = open(a.source, "rb")
    except OSError as exc:
        raise WorkbenchError(f"opening {a.source}: {exc.strerror or exc}") from None
    with stream:
        ctx.rt.volumes.import_tar(a.volume, stream)


def volume_exists(ctx: Context) -> None:
    if not ctx.rt.volumes.exists(ctx.args.volume):
        ctx.exit_code = 1
