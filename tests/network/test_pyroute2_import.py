"""How bridge.py loads pyroute2."""

from __future__ import annotations


def test_the_light_pyroute2_import_leaves_the_package_whole_for_later_users():
    """bridge.py imports pyroute2's IPRoute without the package's heavy __init__; a notebook that
    imports pyroute2 afterwards must still get the whole package, and the same IPRoute."""
    import subprocess
    import sys

    code = ("from workbench.engine.network import bridge; cls = bridge._iproute_class(); "
            "import pyroute2; from pyroute2 import IPRoute, NDB; assert IPRoute is cls; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout == "ok\n", proc.stderr
