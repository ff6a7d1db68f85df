"""Interactive commands: exec, attach, and the attached half of run and start."""

from __future__ import annotations

import contextlib
import signal

from ..engine import logger
from ..engine.errors import ContainerStateError, InvalidArgument, WorkbenchError
from ..engine.state import ContainerState
from .context import Context
from .terminal import (
    DEFAULT_DETACH_KEYS,
    Terminated,
    interact,
    parse_detach_keys,
    terminal_size,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _detach_keys(ctx: Context) -> bytes:
    keys = ctx.args.detach_keys
    return parse_detach_keys(DEFAULT_DETACH_KEYS if keys is None else keys)


def exec_(ctx: Context) -> None:
    a = ctx.args
    keys = _detach_keys(ctx)
    if a.latest and a.container is not None:  # no container named: the first word is the command's
        a.command = [a.container, *a.command]
    if not a.command:
        raise InvalidArgument("must provide a non-empty command to start an exec session: invalid argument")
    c = ctx.rt.latest() if a.latest else ctx.rt.container(a.container)
    options: dict[str, Any] = dict(env=ctx.env_from_flags(a.env, a.env_file), user=a.user, workdir=a.workdir,
                                   privileged=a.privileged)
    if a.detach:
        ctx.out.line(c.exec_detached(a.command, tty=a.tty, **options))
        return
    if not a.interactive and not a.tty and ctx.out.terminal:
        # Nothing to attach: `runc exec` writes straight to our stdout and stderr.
        ctx.exit_code = c.exec(a.command, capture=False, **options).exit_code
        return
    _warn_without_terminal(ctx, a.tty, a.interactive)
    session = c.exec_session(a.command, tty=a.tty, stdin=a.interactive,
                             size=terminal_size() if a.tty else None, **options)
    try:
        detached = interact(session, ctx.out, stdin=a.interactive, detach_keys=keys, feed=ctx.input)
        if not detached:
            ctx.exit_code = session.wait()
    except Terminated as exc:
        if exc.number == signal.SIGHUP:  # our terminal hung up: so does the one of the exec'd process
            with contextlib.suppress(Exception):
                session.signal(signal.SIGHUP)
        ctx.exit_code = exc.exit_code
    except KeyboardInterrupt:
        ctx.exit_code = _interrupted(ctx, session)
    finally:
        session.close()


def attach(ctx: Context) -> None:
    a = ctx.args
    keys = _detach_keys(ctx)
    c = ctx.rt.container(a.container)
    if c.state != ContainerState.RUNNING:
        raise ContainerStateError("you can only attach to running containers")
    _attach_and_wait(ctx, c, stdin=not a.no_stdin, keys=keys, start=False)


def attach_and_wait(ctx: Context, c, *, stdin: bool, start: bool) -> None:
    """`run` and `start -a`: attach before starting so no output is lost, then wait for the exit."""
    _warn_without_terminal(ctx, c.config.tty, stdin)
    _attach_and_wait(ctx, c, stdin=stdin, keys=_detach_keys(ctx), start=start)


def _attach_and_wait(ctx: Context, c, *, stdin: bool, keys: bytes, start: bool) -> None:
    session = c.attach_session(stdin=stdin, start=start, size=terminal_size() if c.config.tty else None)
    try:
        proxy = _signal_proxy(c) if ctx.args.sig_proxy and ctx.out.terminal else None
        detached = interact(session, ctx.out, stdin=session.stdin, detach_keys=keys, proxy_signal=proxy,
                            feed=ctx.input)
    except Terminated as exc:
        ctx.exit_code = exc.exit_code
        return
    except KeyboardInterrupt:
        _interrupted(ctx, session)
        detached = False
    finally:
        session.close()
    if not detached:
        ctx.exit_code = c.wait()


#: How long an interrupted process gets after SIGINT, then after SIGTERM (IPython's %%script
#: waits 0.1 s; a container's process often needs a little longer to act on a signal).
INTERRUPT_GRACE = 0.5


def _interrupted(ctx: Context, session) -> int:
    """The cell was interrupted (a notebook's stop button): SIGINT to the process, then SIGTERM,
    then SIGKILL, each given a moment, as IPython's %%script does. Returns its exit code."""
    import signal

    for sig, what in ((signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated"), (signal.SIGKILL, "killed")):
        try:
            session.signal(sig)
        except WorkbenchError:
            break  # it ended already
        try:
            code = session.wait(timeout=INTERRUPT_GRACE if sig != signal.SIGKILL else 10)
        except (TimeoutError, WorkbenchError):
            continue
        ctx.out.stream("stderr", f"Process was {what}\n".encode())
        return code
    return session.wait(timeout=10)


def _warn_without_terminal(ctx: Context, tty: bool, interactive: bool) -> None:
    import os

    if tty and interactive and ctx.out.terminal and not os.isatty(0):
        logger.get(__name__).warning(
            "The input device is not a TTY. The --tty and --interactive flags might not work properly")


def _signal_proxy(c):
    def forward(number: int) -> None:
        try:
            c.kill(number)
        except WorkbenchError:
            pass  # the container is already gone: nothing to forward to
    return forward
