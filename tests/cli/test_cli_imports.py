"""The CLI's common commands load only what they use: no typing, pandas, ipywidgets or pyroute2
(each an import a command would pay on every start; pyroute2 ~0.1 s)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("typing", "pandas", "ipywidgets", "pyroute2", "IPython")


def _imported(store, *args: str) -> set[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "workbench")
    proc = subprocess.run([sys.executable, "-X", "importtime", exe, "--root", store["root"], "--runroot",
                           store["runroot"], *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [("run", "--rm", "--network", "none", "busybox", "true"), ("ps", "-a"),
                                  ("images",), ("create", "--network", "none", "busybox", "true")])
def test_common_commands_leave_heavy_modules_unloaded(store, image, args):
    modules = _imported(store, *args)
    assert "workbench.engine.runtime" in modules  # the probe sees the engine's imports
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))
