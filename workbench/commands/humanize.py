"""Podman's human-readable durations and sizes (docker/go-units semantics)."""

from __future__ import annotations

import time


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


def size(n: float, precision: int = 3, sep: str = " ") -> str:
    """go-units HumanSizeWithPrecision: decimal units, e.g. '1.23 MB' ('6.424MB': HumanSize, as
    `system df` and the prunes print it, is precision 4 and no space)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    text = f"{n:.{precision}g}"
    if "e" in text:
        text = f"{n:.0f}"
    return f"{text}{sep}{units[i]}"
