"""Notebook-face fixtures: a real IPython shell with the extension loaded on an isolated store."""

from __future__ import annotations

import os
import sys

import pytest


@pytest.fixture
def ip(store, busybox_tar):
    """An InteractiveShell with `%load_ext workbench` and the image `bb`; its containers and
    consoles are gone afterwards."""
    if os.geteuid() != 0:
        pytest.fail("the magics drive real containers, which need root")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output
    from traitlets.config import Config

    config = Config()
    config.HistoryAccessor.enabled = False
    config.CtrMagics.root, config.CtrMagics.runroot = store["root"], store["runroot"]
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "workbench")
    with capture_output():
        assert shell.run_line_magic("ctr", f"import {busybox_tar} bb").exit_code == 0
    yield shell
    console = sys.modules.get("workbench.widgets.console")
    if console is not None:
        console._close_all()
    with capture_output():
        shell.run_line_magic("ctr", "rm -a -f -t 0")
    shell.run_line_magic("unload_ext", "workbench")
    InteractiveShell.clear_instance()
