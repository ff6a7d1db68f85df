"""Run a notebook end to end with a real kernel and print its text outputs (`HEADLESS=1 make lab`)."""

from __future__ import annotations

import sys


def main(path: str) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=False)
    try:
        client.execute()
    except CellExecutionError as exc:
        _print_outputs(nb)
        print(f"\n{path}: a cell failed:\n{exc}", file=sys.stderr)
        return 1
    _print_outputs(nb)
    print(f"\n{path}: all {sum(c.cell_type == 'code' for c in nb.cells)} code cells ran")
    return 0


def _print_outputs(nb) -> None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.get("outputs"):
            continue
        print(f"--- cell {index} ---")
        for out in cell.outputs:
            if out.output_type == "stream":
                print(out.text, end="")
            elif out.output_type in ("execute_result", "display_data") and "text/plain" in out.get("data", {}):
                print(out.data["text/plain"])
            elif out.output_type == "error":
                print("\n".join(out.traceback))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "notebooks/quickstart.ipynb"))
