"""`--filter KEY=VALUE` flags as one predicate, with Podman's rule: values of one key any-of,
different keys all-of."""

from __future__ import annotations

from collections.abc import Callable

from ..engine.errors import WorkbenchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def labels_match(value: str) -> Callable[[dict[str, str]], bool]:
    """`label=KEY` or `label=KEY=VALUE` as a test of a labels dict."""
    name, has_value, wanted = value.partition("=")
    return lambda labels: name in labels and (not has_value or labels[name] == wanted)


def predicate(specs: list[str], one: Callable[[str, str], Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """`one(key, value)` makes the test of one filter (and raises on a bad key or value)."""
    by_key: dict[str, list[str]] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep:
            raise WorkbenchError(f'invalid filter "{spec}": use KEY=VALUE')
        by_key.setdefault(key, []).append(value)
    tests = [[one(key, value) for value in values] for key, values in by_key.items()]
    return lambda item: all(any(test(item) for test in alternatives) for alternatives in tests)
