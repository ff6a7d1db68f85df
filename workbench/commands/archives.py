"""Archive commands: save and load (docker-archive, oci-archive, OCI layout directories)."""

from __future__ import annotations

import sys

from ..engine.errors import WorkbenchError
from .context import Context


def save(ctx: Context) -> None:
    from ..engine.images import formats

    a = ctx.args
    if a.output is None and sys.stdout.isatty():
        raise WorkbenchError("refusing to save to terminal. Use -o flag or redirect")
    formats.save(ctx.rt, a.images, a.output, format=a.format, compress=a.compress, timestamp=a.timestamp,
                 progress=ctx.progress(f"saving {' '.join(a.images)}", a.quiet))


def load(ctx: Context) -> None:
    from ..engine.images import formats

    a = ctx.args
    if a.input is None and sys.stdin.isatty():
        raise WorkbenchError("cannot read from terminal. Use command-line redirection or the --input flag")
    from .registry import BlobProgress

    progress = BlobProgress(a.quiet, ctx.out, f"loading {a.input or 'stdin'}")
    for image in formats.load(ctx.rt, a.input if a.input else sys.stdin.buffer, progress=progress):
        for name in image.names or ["sha256:" + image.id]:
            ctx.out.line(f"Loaded image: {name}")
