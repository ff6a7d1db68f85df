"""CLI test fixtures: a busybox image in the isolated store, and no container left behind."""

from __future__ import annotations

import pytest


@pytest.fixture
def image(cli, busybox_tar):
    """`busybox`, imported through the CLI."""
    proc = cli("import", busybox_tar, "busybox")
    assert proc.returncode == 0, proc.stderr
    digest = proc.stdout.strip()  # as podman import: the image ID as a digest
    assert digest.startswith("sha256:") and len(digest) == 7 + 64, digest
    return "busybox"


@pytest.fixture(autouse=True)
def _cleanup(cli):
    yield
    cli("rm", "-a", "-f", "-t", "0")
