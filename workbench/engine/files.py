"""Small file-system helpers for directories the engine itself made."""

from __future__ import annotations

import os


def remove_tree(path: str) -> None:
    """rm -rf: symlinks are unlinked, never followed; a missing path is fine. (shutil.rmtree would
    cost every CLI start that removes something the import of its compression modules.)"""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    except NotADirectoryError:
        os.unlink(path)
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            remove_tree(entry.path)
        else:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
