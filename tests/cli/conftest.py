"""CLI test fixtures: a busybox image in the isolated store, and no container left behind."""

from __future__ import annotations

import pytest


@pytest.fixture
def image(cli, busybox_tar):
    """`busybox`, imported through the CLI."""
    proc = cli("import", busybox_tar, "busybox")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip()) == 64
    return "busybox"


@pytest.fixture(autouse=True)
def _cleanup(cli):
    yield
    cli("rm", "-a", "-f", "-t", "0")
