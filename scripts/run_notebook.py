"""Run a notebook end to end with a real kernel and print its text outputs (`HEADLESS=1 make lab`).

Usage: .venv/bin/python scripts/run_notebook.py NOTEBOOK.ipynb
The kernel is this interpreter (the .venv's), whatever other `python3` kernelspecs are installed.
Exits 1 with the failing cell shown when a cell raises; nothing is written back to the notebook.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from typing import Any

CELL_TIMEOUT = 120  # seconds per cell
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].endswith(".ipynb"):
        print("usage: run_notebook.py NOTEBOOK.ipynb", file=sys.stderr)
        return 2
    if not os.path.isfile(argv[0]):
        print(f"run_notebook.py: {argv[0]}: no such file", file=sys.stderr)
        return 2
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # silences jupyter_core's migration warning
    with tempfile.TemporaryDirectory(prefix="run_notebook-") as socket_dir:
        return _run(argv[0], socket_dir)


def _run(path: str, socket_dir: str) -> int:
    """Execute `path`, printing each cell's outputs as it completes; 0 when every cell ran."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
    current: dict[str, Any] = {}
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        kernel_manager_class=_this_python_kernel_manager(socket_dir),
        allow_errors=False,
        interrupt_on_timeout=True,  # a cell over time gets KeyboardInterrupt, then the kernel shuts down cleanly
        store_widget_state=False,
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}},
        on_notebook_start=lambda notebook: print(f"{path}: kernel {client.km.kernel_spec.argv[0]}", flush=True),
        on_cell_execute=lambda cell, cell_index: current.update(cell=cell, index=cell_index),
        on_cell_executed=lambda cell, cell_index, execute_reply: _print_cell(cell, cell_index),
    )
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        if isinstance(exc, DeadKernelError):
            reason = f"the kernel died ({exc})"
        elif isinstance(exc, CellTimeoutError) or exc.ename == "KeyboardInterrupt":
            reason = f"interrupted after the {CELL_TIMEOUT} s cell timeout"
        else:
            reason = f"{exc.ename}: {exc.evalue}"
        if current and not isinstance(exc, CellExecutionError):  # its outputs so far were not printed
            _print_cell(current["cell"], current["index"])
        where = f"cell {current['index']}" if current else "start-up"
        print(f"\n{path}: FAILED in {where}: {reason}", file=sys.stderr)
        if current:
            print(_indent(current["cell"].source), file=sys.stderr)
        return 1
    print(f"{path}: all {code_cells} code cells ran")
    return 0


def _indent(source: str) -> str:
    """`source` indented by four spaces, to set a cell apart from messages."""
    return "\n".join(f"    {line}" for line in source.splitlines())


def _print_cell(cell: Any, index: int) -> None:
    """Print a code cell's text outputs (streams, text/plain results, errors) in order, on stdout."""
    print(f"--- [{cell.get('execution_count') or ' '}] cell {index} ---")
    text = ""
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            text += out.get("text", "")
        elif kind in ("execute_result", "display_data") and "text/plain" in out.get("data", {}):
            text += _line(text) + out["data"]["text/plain"] + "\n"
        elif kind == "error":
            text += _line(text) + _ANSI.sub("", "\n".join(out.get("traceback", []))) + "\n"
    sys.stdout.write(text + _line(text))
    sys.stdout.flush()


def _line(text: str) -> str:
    """The newline that ends `text`'s last line, if it is open."""
    return "\n" if text and not text.endswith("\n") else ""


def _this_python_kernel_manager(socket_dir: str) -> type:
    """A kernel manager whose `python3` kernel is sys.executable, not whatever kernelspec is found first."""
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, KernelSpec, KernelSpecManager
    from traitlets import default

    class _ThisPythonSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            if kernel_name != NATIVE_KERNEL_NAME:
                return super().get_kernel_spec(kernel_name)
            return self.kernel_spec_class(resource_dir=RESOURCES, **get_kernel_dict())

    class _ThisPythonKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _default_kernel_spec_manager(self) -> KernelSpecManager:
            return _ThisPythonSpecs(data_dir=self.data_dir)

        # Local unix sockets instead of TCP on 127.0.0.1 (ipykernel warns about unencrypted TCP).
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return os.path.join(socket_dir, "kernel")

    return _ThisPythonKernelManager


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
