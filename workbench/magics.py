"""`%ctr` and `%%ctr`: the IPython magics over workbench.notebook (`%load_ext workbench`).

IPython's own `$name`/`{expr}` expansion is off (shell lines are full of `$HOME` and
`awk '{print $1}'`); values enter through `{{expr}}`, expanded per argument after POSIX
splitting. Configure with `%config CtrMagics.raise_on_error = True` and friends.
"""

from __future__ import annotations

import shlex
import sys
from typing import Any

from IPython.core.magic import (Magics, line_cell_magic, magics_class, needs_local_scope, no_var_expand,
                                output_can_be_silenced)
from traitlets import Bool, Unicode
from traitlets.config import Configurable

from . import notebook


@magics_class
class CtrMagics(Magics, Configurable):
    """`%ctr COMMAND ...` runs what `workbench COMMAND ...` runs; `%%ctr` feeds the cell to it."""

    raise_on_error = Bool(False, config=True, help="raise CtrError when a command fails (scripted notebooks)")
    root = Unicode("", config=True, help="graph root of the kernel's Runtime (default: Workbench's)")
    runroot = Unicode("", config=True, help="run root of the kernel's Runtime (default: Workbench's)")

    def __init__(self, shell: Any):
        Configurable.__init__(self, config=shell.config)
        Magics.__init__(self, shell=shell)
        self.shell.configurables.append(self)
        self.kernel = notebook.Kernel()

    @no_var_expand
    @needs_local_scope
    @output_can_be_silenced
    @line_cell_magic
    def ctr(self, line: str, cell: str | None = None, local_ns: dict | None = None) -> Any:
        """Run a Workbench command: `%ctr ps -a`, `%ctr run --rm {{image}} echo hi`, `%%ctr exec web`."""
        self.kernel.root = self.kernel.root or self.root or None
        self.kernel.runroot = self.kernel.runroot or self.runroot or None
        namespace = {**self.shell.user_ns, **(local_ns or {})}
        try:
            return notebook.ctr(line, cell, namespace=namespace, raise_on_error=self.raise_on_error,
                                kernel=self.kernel, on_exit_code=self._remember)
        except notebook.CtrError as exc:
            self._remember(exc.exit_code)
            if self.raise_on_error or line.lstrip().startswith("--raise"):
                raise
            sys.stderr.write(f"Error: {exc}\n")
            return None
        except ValueError as exc:  # shlex: an unclosed quote
            self._remember(125)
            sys.stderr.write(f"Error: {exc}\n")
            return None

    def _remember(self, code: int) -> None:
        self.shell.user_ns["_ctr_exit_code"] = code

    def close(self) -> None:
        self.kernel.close()


def complete(shell: Any, event: Any) -> list[str]:
    """Tab completion for `%ctr`: command words, then flags, container names and image names."""
    from .commands.parser import COMMANDS, flags_of

    try:
        words = shlex.split(event.line, posix=True)[1:]
    except ValueError:
        return []
    if event.line.endswith(" "):
        words.append("")
    current = words[-1] if words else ""
    before = words[:-1]
    if len(before) == 0 or (len(before) == 1 and (before[0],) not in COMMANDS):
        depth = len(before)
        return sorted({key[depth] for key in COMMANDS if len(key) > depth and tuple(key[:depth]) == tuple(before)
                       and key[depth].startswith(current)})
    key = tuple(before[:2]) if tuple(before[:2]) in COMMANDS else tuple(before[:1])
    if current.startswith("-"):
        return [flag for flag in flags_of(key) if flag.startswith(current)]
    magics = shell.magics_manager.registry.get("CtrMagics")
    rt = magics.kernel.runtime() if magics is not None else notebook.KERNEL.runtime()
    names: set[str] = set()
    for c in rt.containers():
        names.update((c.name, c.id[:12]))
    for image in rt.images():
        names.update(image.names)
    return sorted(n for n in names if n.startswith(current))


def load(shell: Any) -> None:
    magics = CtrMagics(shell)
    shell.register_magics(magics)
    shell.set_hook("complete_command", complete, str_key="%ctr")
    shell.set_hook("complete_command", complete, str_key="%%ctr")


def unload(shell: Any) -> None:
    magics = shell.magics_manager.registry.get("CtrMagics")
    if magics is not None:
        magics.close()
