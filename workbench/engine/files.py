"""Small file-system helpers for directories the engine itself made."""

from __future__ import annotations

import errno
import os

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: str) -> None:
    """rm -rf, directory-fd-relative and without recursion: symlinks are unlinked, never followed,
    and however deep a container nested its directories, no path is ever built from their names.
    A missing path is fine. (shutil.rmtree would also cost the CLI its compression modules.)"""
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
                    if entry.is_dir(follow_symlinks=False):
                        child = (os.open(entry.name, _DIR, dir_fd=fd), entry.name)
                        break
                    os.unlink(entry.name, dir_fd=fd)
            if child is not None:
                stack.append(child)
                continue
            fd, name = stack.pop()
            os.close(fd)
            if stack:
                os.rmdir(name, dir_fd=stack[-1][0])
    finally:
        for fd, _ in stack:
            os.close(fd)
    os.rmdir(path)
