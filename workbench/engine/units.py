"""Sizes as docker/go-units print them (decimal units), for the engine's documents and the CLI."""

from __future__ import annotations


def decimal_size(n: float, precision: int = 3, sep: str = " ") -> str:
    """go-units HumanSizeWithPrecision: decimal units, e.g. '1.23 MB'."""
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    text = f"{n:.{precision}g}"
    if "e" in text:
        text = f"{n:.0f}"
    return f"{text}{sep}{units[i]}"


def compact_size(n: float) -> str:
    """go-units HumanSize: '6.424MB', as `system df`, the prunes, `ps --size` and inspect's
    LogConfig print sizes."""
    return decimal_size(n, precision=4, sep="")
