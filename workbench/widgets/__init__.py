"""Jupyter widgets over the engine; each name loads its module (and ipywidgets) on first use,
so `import workbench` and `import workbench.widgets` stay light."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "InspectView": "workbench.widgets.inspect",
    "ContainerTable": "workbench.widgets.table",
    "StatsPlot": "workbench.widgets.stats",
    "LifecycleDiagram": "workbench.widgets.lifecycle",
    "Console": "workbench.widgets.console",
}

if TYPE_CHECKING:  # pragma: no cover
    from .console import Console
    from .inspect import InspectView
    from .lifecycle import LifecycleDiagram
    from .stats import StatsPlot
    from .table import ContainerTable


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench.widgets' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
