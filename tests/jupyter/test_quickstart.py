"""The quickstart notebook runs end to end in a real kernel, as `HEADLESS=1 make lab` runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quickstart_runs_headless_on_an_isolated_store(tmp_path):
    env = {**os.environ, "WORKBENCH_ROOT": str(tmp_path / "root"), "WORKBENCH_RUNROOT": str(tmp_path / "run")}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "run_notebook.py"),
                           os.path.join(ROOT, "notebooks", "quickstart.ipynb")],
                          capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "hello from a container" in out
    assert "line 1\nline 2\nline 3\n" in out
    assert "State.Status:   exited" in out and "State.ExitCode: 0" in out
    assert re.search(r"quickstart-demo\s+Exited \(0\)", out)
    assert "containers left: []" in out
    assert "code cells ran" in out
