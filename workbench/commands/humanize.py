"""Podman's human-readable durations and sizes (docker/go-units semantics)."""

from __future__ import annotations

import time

from ..engine.units import compact_size, decimal_size

size = decimal_size  # sizes in tables: '2.14 MB' (go-units HumanSizeWithPrecision)
compact = compact_size  # '2.14MB' (go-units HumanSize)


def duration(seconds: float) -> str:
    """go-units HumanDuration: 'Less than a second', '5 seconds', 'About a minute', '3 hours', ..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def ago(ts: float, now: float | None = None) -> str:
    return duration((now or time.time()) - ts) + " ago"
