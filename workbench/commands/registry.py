"""Registry commands: pull, push, login, logout."""

from __future__ import annotations

import sys
from typing import Any

from ..engine.errors import WorkbenchError
from .context import Context


def _tls(ctx: Context) -> bool | None:
    return ctx.args.tls_verify


def _credentials(ctx: Context) -> tuple[str, str] | None:
    creds = getattr(ctx.args, "creds", None)
    if not creds:
        return None
    user, sep, password = creds.partition(":")
    if not sep or not user:
        raise WorkbenchError(f'invalid --creds "{user}:...": use USERNAME:PASSWORD')
    return user, password


class BlobProgress:
    """Podman-like progress lines on stderr (one per blob), or nothing with --quiet."""

    def __init__(self, quiet: bool, out: Any, label: str):
        self.quiet, self.out, self.label = quiet, out, label
        self.seen: set[str] = set()
        self.blobs: dict[str, tuple[int, int]] = {}  # digest -> (done, total)

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        kind, digest = event.kind, event.digest or ""
        if kind == "blob" and digest and event.total_bytes:
            self.blobs[digest] = (event.done_bytes, event.total_bytes)
            done, total = (sum(pair[i] for pair in self.blobs.values()) for i in (0, 1))
            self.out.progress(done, total, self.label)
        if kind == "blob" and digest and digest not in self.seen and (
                event.status or (event.total_bytes and event.done_bytes >= event.total_bytes)):
            self.seen.add(digest)
            outcome = "skipped: already exists" if event.status in ("skipped", "mounted") else "done"
            sys.stderr.write(f"Copying blob {digest[7:19]} {outcome}\n")
        elif kind == "manifest":
            sys.stderr.write("Writing manifest to image destination\n")
        sys.stderr.flush()


def fetch(ctx: Context, reference: str) -> Any:
    """Pull `reference` with the command's registry flags, saying so on stderr unless --quiet
    (pull, and run or create when the image is to be pulled first); the image."""
    from ..engine.images import transfer

    a = ctx.args
    if not a.quiet:
        sys.stderr.write(f"Trying to pull {reference}...\n")
    return transfer.pull(ctx.rt, reference, tls_verify=_tls(ctx), auth_file=a.authfile,
                         credentials=_credentials(ctx), platform=a.platform,
                         progress=BlobProgress(a.quiet, ctx.out, f"pulling {reference}"))


def pull(ctx: Context) -> None:
    ctx.out.line(fetch(ctx, ctx.args.reference).id)


def push(ctx: Context) -> None:
    from ..engine.images import transfer

    a = ctx.args
    transfer.push(ctx.rt, a.image, a.destination, tls_verify=_tls(ctx), auth_file=a.authfile,
                  credentials=_credentials(ctx), format=a.format or "oci",
                  progress=BlobProgress(a.quiet, ctx.out, f"pushing {a.image}"))


def login(ctx: Context) -> None:
    from ..engine.images import transfer

    a = ctx.args
    username = a.username
    password = sys.stdin.readline().rstrip("\n") if a.password_stdin else a.password
    if not username or password is None:
        raise WorkbenchError("login needs --username and --password (or --password-stdin) here")
    transfer.login(a.registry, username, password, auth_file=a.authfile, tls_verify=_tls(ctx))
    ctx.out.line("Login Succeeded!")


def logout(ctx: Context) -> None:
    from ..engine.images import transfer

    a = ctx.args
    if not a.all and not a.registry:
        raise WorkbenchError("registry must be given")
    transfer.logout(a.registry, auth_file=a.authfile, all=a.all)
    ctx.out.line("Removed login credentials for all registries" if a.all else
                 f"Removed login credentials for {a.registry}")
