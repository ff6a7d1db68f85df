"""Small file-system helpers: trees the engine itself made, and outputs written whole or not at all."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable

from .errors import WorkbenchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: str) -> None:
    """rm -rf, directory-fd-relative and without recursion: symlinks are unlinked, never followed,
    and however deep a container nested its directories, no path is ever built from their names.
    A missing path is fine, and so is an entry another process removes meanwhile (conmon unlinks
    its attach socket as it exits). (shutil.rmtree would also cost the CLI its compression modules.)"""
    try:
        top = os.open(path, _DIR)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        os.unlink(path)
        return
    stack: list[tuple[int, str]] = [(top, "")]  # (directory fd, its name in the parent)
    try:
        while stack:
            fd = stack[-1][0]
            child = None
            with os.scandir(fd) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            child = (os.open(entry.name, _DIR, dir_fd=fd), entry.name)
                            break
                        os.unlink(entry.name, dir_fd=fd)
                    except FileNotFoundError:
                        continue
            if child is not None:
                stack.append(child)
                continue
            fd, name = stack.pop()
            os.close(fd)
            if stack:
                _gone_or(os.rmdir, name, dir_fd=stack[-1][0])
    finally:
        for fd, _ in stack:
            os.close(fd)
    _gone_or(os.rmdir, path)


def _gone_or(remove: Callable[..., None], *args: object, **kwargs: object) -> None:
    """`remove(...)`, where a path someone else removed first counts as removed."""
    try:
        remove(*args, **kwargs)
    except FileNotFoundError:
        pass


def tree_size(path: str) -> int:
    """The bytes of the files under `path` (symlinks not followed; what vanishes meanwhile not counted)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def scratch_name(prefix: str) -> str:
    """A name for a temporary entry that says which process made it: `prefix<pid>-<random>`."""
    return f"{prefix}{os.getpid()}-{os.urandom(8).hex()}"


def sweep_scratch(directory: str, prefix: str) -> list[str]:
    """Remove the `scratch_name(prefix)` entries of processes that are gone (what a crash or a
    kill left in the middle of a pull, load or save); returns their names. An entry of a live
    process, or of a reused PID, stays."""
    from .exits import pid_alive

    swept = []
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix)]
    except FileNotFoundError:
        return swept
    for name in names:
        pid = name[len(prefix):].partition("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        remove_tree(os.path.join(directory, name))
        swept.append(name)
    return swept


def write_output(output: str | os.PathLike[str] | BinaryIO | None, write: Callable[[BinaryIO], None], *,
                 mode: int = 0o666) -> None:
    """Run `write` on stdout (None), a binary stream, or a file path. A regular file is written through
    a temp file (created with `mode`, less the umask) renamed over it when done, so a failure leaves
    no partial file; /dev/stdout or a fifo is written in place."""
    if output is None:
        sys.stdout.flush()
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    if not isinstance(output, (str, os.PathLike)):
        write(output)
        return
    path = os.fspath(output)
    try:
        if os.path.exists(path) and not os.path.isfile(path):
            with open(path, "wb") as out:
                write(out)
            return
        head, tail = os.path.split(os.path.abspath(path))
        tmp = os.path.join(head, f".{tail}.tmp-{os.urandom(6).hex()}")
        try:
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), "wb") as out:
                write(out)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
    except OSError as exc:
        raise WorkbenchError(f"writing {path}: {exc.strerror or exc}") from None
