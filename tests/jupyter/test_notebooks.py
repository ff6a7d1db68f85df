"""Every tutorial notebook runs top to bottom in a real kernel on an isolated store (issue: notebooks)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "0*.ipynb")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_runs_end_to_end(path, store):
    env = {**os.environ, "WORKBENCH_ROOT": store["root"], "WORKBENCH_RUNROOT": store["runroot"]}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "run_notebook.py"), path],
                          capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "code cells ran" in proc.stdout


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_committed_notebooks_carry_no_outputs(path):
    with open(path) as f:
        nb = json.load(f)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    assert "widgets" not in nb["metadata"]
