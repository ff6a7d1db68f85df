"""A container's file system: commit, diff, export, mount, unmount, cp."""

from __future__ import annotations

import sys

from ..engine.errors import WorkbenchError
from .context import Context
from .output import emit_table


def commit(ctx: Context) -> None:
    a = ctx.args
    c = ctx.rt.container(a.container)
    image = c.commit(a.image, changes=a.change, message=a.message, author=a.author, pause=a.pause,
                     timestamp=a.timestamp, progress=ctx.progress(f"committing {a.container}", a.quiet))
    if a.iidfile:
        with open(a.iidfile, "w") as f:
            f.write("sha256:" + image.id)
    ctx.out.line(image.id)


def cp(ctx: Context) -> None:
    """`cp SRC DEST`, one of them `CONTAINER:PATH` (a path with a colon on the host needs ./), or
    `-` for a tar stream on stdin/stdout."""
    a = ctx.args
    src_ctr, src_path = _split_container_path(a.source)
    dst_ctr, dst_path = _split_container_path(a.destination)
    if a.source == "-" and dst_ctr is not None:  # a tar stream on stdin, unpacked into a directory
        ctx.rt.container(dst_ctr).put_archive(sys.stdin.buffer, dst_path, pause=a.pause)
        return
    if a.destination == "-" and src_ctr is not None:  # a tar stream of the path on stdout
        if sys.stdout.isatty():
            raise WorkbenchError("refusing to write a tar stream to the terminal: redirect stdout")
        from ..engine.files import write_output

        container = ctx.rt.container(src_ctr)
        write_output(None, lambda out: container.get_archive(src_path, out, pause=a.pause))
        return
    if (src_ctr is None) == (dst_ctr is None):
        raise WorkbenchError("copying between containers or between host paths is not supported: "
                             "one of SRC and DEST must be CONTAINER:PATH")
    if src_ctr is not None:
        ctx.rt.container(src_ctr).copy_from(src_path, dst_path, pause=a.pause)
    else:
        ctx.rt.container(dst_ctr).copy_to(src_path, dst_path, pause=a.pause)


def _split_container_path(arg: str) -> tuple[str | None, str]:
    head, sep, path = arg.partition(":")
    if not sep or "/" in head or head.startswith("."):
        return None, arg
    return head, path or "/"


def diff(ctx: Context) -> None:
    a = ctx.args
    changes = ctx.rt.container(a.container).diff()
    if a.format == "json":
        kinds = {"A": "added", "C": "changed", "D": "deleted"}
        ctx.out.document({kinds[k]: [p for kind, p in changes if kind == k] for k in "ACD"
                          if any(kind == k for kind, _ in changes)})
        return
    rows = [{"ChangeType": kind, "Path": path} for kind, path in changes]
    emit_table(ctx.out, rows, a.format, "{{.ChangeType}} {{.Path}}", noheading=True)


def export(ctx: Context) -> None:
    from ..engine.files import write_output

    a = ctx.args
    c = ctx.rt.container(a.container)
    if not a.output and sys.stdout.isatty():
        raise WorkbenchError("refusing to export to terminal. Use -o flag or redirect")
    progress = ctx.progress(f"exporting {a.container}")
    write_output(a.output or None, lambda out: c.export(out, progress=progress))


def mount(ctx: Context) -> None:
    a = ctx.args
    if not a.containers:
        for c in ctx.rt.containers():
            if c.st.mount_count > 0:
                ctx.out.line(f"{c.id if a.no_trunc else c.id[:12]}  {c.st.mountpoint}")
        return
    for name in a.containers:
        ctx.out.line(ctx.rt.container(name).mount())


def unmount(ctx: Context) -> None:
    a = ctx.args
    targets = [c for c in ctx.rt.containers() if c.st.mount_count > 0] if a.all else \
        [ctx.rt.container(name) for name in a.containers]
    if not targets and not a.all:
        raise WorkbenchError("when using the --all switch, you may not pass any containers or pods IDs")
    for c in targets:
        c.unmount(force=a.force)
        ctx.out.line(c.id)
