"""Fixtures for container networking: a Runtime whose networks (host bridges and rules) are
removed after the test."""

from __future__ import annotations

import pytest


@pytest.fixture
def nrt(rt):
    """`rt`, and after the test: its containers, then its networks (bridges, rules) removed."""
    yield rt
    for c in sorted(rt.containers(), key=lambda c: c.config.created, reverse=True):  # joiners before owners
        c.remove(force=True, timeout=0)
    for (name,) in rt.db.query("SELECT name FROM networks"):
        rt.networks.remove(name)
