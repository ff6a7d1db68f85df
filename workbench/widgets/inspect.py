"""InspectView: a container's or an image's inspect data as tables in sections, with a raw JSON tab.

Built from ipywidgets' Tab, HTML and Button only, so it renders in JupyterLab 4 and Notebook 7
with nothing to load (offline). Nested values are flattened to dotted rows, long values and
long lists fold into <details>, 64-hex IDs show 12 characters with the full value on hover.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any

import ipywidgets as w

from ._live import error_text, esc

#: (section title, key paths that belong to it); a leaf goes to the first section naming a prefix
#: of its path, leaves no section names go to "Other".
CONTAINER_SECTIONS: list[tuple[str, list[tuple[str, ...]]]] = [
    ("State", [("Id",), ("Name",), ("Created",), ("State",), ("RestartCount",)]),
    ("Config", [("Path",), ("Args",), ("Config",)]),
    ("Image", [("Image",), ("ImageName",), ("Rootfs",), ("Driver",), ("GraphDriver",)]),
    ("Mounts", [("Mounts",), ("HostConfig", "Binds"), ("ResolvConfPath",), ("HostnamePath",), ("HostsPath",)]),
    ("Network", [("NetworkSettings",), ("HostConfig", "NetworkMode"), ("HostConfig", "PortBindings")]),
    ("Namespaces and process", [("State", "Pid"), ("State", "ConmonPid"), ("HostConfig", "PidMode"),
                                ("HostConfig", "IpcMode"), ("HostConfig", "UTSMode"), ("Namespace",),
                                ("OCIRuntime",), ("OCIConfigPath",), ("ConmonPidFile",), ("PidFile",),
                                ("StaticDir",), ("EffectiveCaps",), ("BoundingCaps",), ("ExecIDs",),
                                ("ProcessLabel",), ("MountLabel",), ("AppArmorProfile",), ("Dependencies",),
                                ("Pod",), ("IsInfra",), ("IsService",)]),
    ("Resources / HostConfig", [("HostConfig",), ("LogPath",), ("LogTag",)]),
    ("Labels and annotations", [("Config", "Labels"), ("Config", "Annotations")]),
]
IMAGE_SECTIONS: list[tuple[str, list[tuple[str, ...]]]] = [
    ("Image", [("Id",), ("Digest",), ("RepoTags",), ("RepoDigests",), ("Created",), ("Size",), ("VirtualSize",),
               ("Architecture",), ("Os",), ("Author",), ("Comment",), ("ManifestType",), ("User",)]),
    ("Config", [("Config",)]),
    ("Layers", [("RootFS",), ("GraphDriver",), ("History",), ("Parent",), ("NamesHistory",)]),
    ("Labels and annotations", [("Labels",), ("Annotations",), ("Config", "Labels")]),
]

#: The top-level key a section is named after: its rows drop that key ("Status", not "State.Status").
_OWN = {"State": "State", "Config": "Config", "Network": "NetworkSettings", "Resources / HostConfig": "HostConfig"}
_ID = re.compile(r"^(sha256:)?[0-9a-f]{64}$")
_FOLD_TEXT = 80
_FOLD_LIST = 4

_CSS = """<style>
.wb-inspect table{border-collapse:collapse;font-size:12px;width:100%;table-layout:fixed}
.wb-inspect th,.wb-inspect td{text-align:left;vertical-align:top;padding:2px 8px;
  border-bottom:1px solid var(--jp-border-color2,#e0e0e0);overflow-wrap:anywhere}
.wb-inspect th{width:32%;font-weight:600;color:var(--jp-ui-font-color1,#333)}
.wb-inspect td{font-family:var(--jp-code-font-family,monospace)}
.wb-inspect .wb-id{border-bottom:1px dotted #888;cursor:help}
.wb-inspect .wb-empty{color:#888}
.wb-inspect details>summary{cursor:pointer}
.wb-inspect pre{margin:0;white-space:pre-wrap;max-height:480px;overflow:auto}
.wb-state{display:inline-block;padding:0 6px;border-radius:8px;color:#fff;font-size:12px;background:#6e7781}
.wb-state.running{background:#1a7f37}.wb-state.paused{background:#9a6700}
.wb-state.exited,.wb-state.stopped{background:#6e7781}.wb-state.created,.wb-state.initialized{background:#0969da}
.wb-state.removed{background:#cf222e}
</style>"""


def flatten(value: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Leaves of nested data as (path, value); lists of scalars and empty containers stay whole."""
    if isinstance(value, dict) and value:
        out: list[tuple[tuple, Any]] = []
        for key, item in value.items():
            out.extend(flatten(item, (*path, str(key))))
        return out
    if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        out = []
        for i, item in enumerate(value):
            out.extend(flatten(item, (*path, i)))
        return out
    return [(path, value)]


def sections(data: dict[str, Any], layout: list[tuple[str, list[tuple[str, ...]]]]) -> dict[str, list[tuple[str, Any]]]:
    """The data's leaves sorted into the layout's sections, as (shown key, value) rows, in order."""
    claims = sorted(((prefix, title) for title, prefixes in layout for prefix in prefixes),
                    key=lambda item: -len(item[0]))  # the longest (most specific) prefix wins
    out: dict[str, list[tuple[str, Any]]] = {title: [] for title, _ in layout}
    for path, value in flatten(data):
        names = tuple(str(p) for p in path)
        title, prefix = next(((t, p) for p, t in claims if names[:len(p)] == p), ("Other", ()))
        shown = path[1:] if prefix[:1] == (_OWN.get(title),) and len(path) > 1 else path  # State.Status -> Status
        out.setdefault(title, []).append((_key(shown), value))
    return {title: rows for title, rows in out.items() if rows}


def _key(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def value_html(value: Any) -> str:
    """One value as HTML: IDs shortened (full on hover), long text and long lists folded."""
    if isinstance(value, list):
        if not value:
            return '<span class="wb-empty">[]</span>'
        items = [value_html(v) for v in value]
        if len(items) <= _FOLD_LIST:
            return "<br>".join(items)
        preview = ", ".join(esc(_plain(v))[:24] for v in value[:2])
        return f"<details><summary>{len(items)} items: {preview}, &hellip;</summary>{'<br>'.join(items)}</details>"
    if isinstance(value, dict):
        return '<span class="wb-empty">{}</span>'
    if value is None:
        return '<span class="wb-empty">&mdash;</span>'
    text = value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, str) and _ID.match(value):
        short = value.removeprefix("sha256:")[:12]
        return f'<span class="wb-id" title="{esc(value)}">{esc(short)}</span>'
    if text == "":
        return '<span class="wb-empty">""</span>'
    if len(text) > _FOLD_TEXT:
        return (f'<details title="{esc(text)}"><summary>{esc(text[:_FOLD_TEXT - 20])}&hellip;</summary>'
                f"{esc(text)}</details>")
    return esc(text)


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def table_html(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f'<tr><th title="{esc(k)}">{esc(k)}</th><td>{value_html(v)}</td></tr>' for k, v in rows)
    return f'<div class="wb-inspect">{_CSS}<table>{body}</table></div>'


class InspectView(w.VBox):
    """Inspect data of a Container or an Image (or a plain dict) in tabs; `refresh()` reloads it.

    `data` is the inspect document last read; `sections` its rows per tab; `status` says why
    the data may be stale ("container removed").
    """

    def __init__(self, target: Any, **kwargs: Any):
        self.target = target
        self.data: dict[str, Any] = {}
        self.sections: dict[str, list[tuple[str, Any]]] = {}
        self.status = ""
        self._header = w.HTML()
        self._refresh_button = w.Button(description="Refresh", icon="refresh", tooltip="read the inspect data again",
                                        layout=w.Layout(width="auto"))
        self._refresh_button.on_click(lambda _: self.refresh())
        self._tabs = w.Tab()
        self._top = w.HBox([self._header, self._refresh_button],
                           layout=w.Layout(justify_content="space-between", align_items="center"))
        super().__init__([self._top, self._tabs], **kwargs)
        self.add_class("wb-inspect-view")
        self.refresh()

    @property
    def kind(self) -> str:
        if isinstance(self.target, dict):
            return "image" if "RepoTags" in self.target else "container"
        return "image" if type(self.target).__name__ == "Image" else "container"

    def _load(self) -> dict[str, Any]:
        if isinstance(self.target, dict):
            return self.target
        return self.target.inspect()

    def refresh(self) -> None:
        """Read the inspect data again; on failure keep the last data and say why in the header."""
        try:
            data = self._load()
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self.status = error_text(exc)
            self._render()
            return
        self.data, self.status = data, ""
        layout = IMAGE_SECTIONS if self.kind == "image" else CONTAINER_SECTIONS
        self.sections = sections(data, layout)
        self._render()

    def _render(self) -> None:
        data = self.data
        if self.kind == "image":
            title = ", ".join(data.get("RepoTags") or []) or str(data.get("Id", ""))[:12]
            state = ""
        else:
            title = data.get("Name") or self._fallback_name()
            state = data.get("State", {}).get("Status", "") if data else ""
        ident = str(data.get("Id", "")) if data else ""
        badge = f'<span class="wb-state {esc(state)}">{esc(state)}</span>' if state else ""
        if self.status:
            badge = f'<span class="wb-state removed">{esc(self.status)}</span>'
        ident_html = f' <span class="wb-id" title="{esc(ident)}">{esc(ident[:12])}</span>' if ident else ""
        self._header.value = (f'<div class="wb-inspect">{_CSS}<b>{esc(self.kind)} {esc(title)}</b>'
                              f"{ident_html} {badge}</div>")
        titles = [*self.sections, "JSON"]
        values = [table_html(rows) for rows in self.sections.values()]
        raw = html.escape(json.dumps(data, indent=2), quote=False)
        values.append(f'<div class="wb-inspect">{_CSS}<pre>{raw}</pre></div>')
        if list(self._tabs.titles) == titles:  # same tabs: update their content in place
            for child, value in zip(self._tabs.children, values):
                if child.value != value:
                    child.value = value
            return
        old, selected = list(self._tabs.children), self._tabs.selected_index
        self._tabs.children = [w.HTML(value) for value in values]
        self._tabs.titles = titles
        self._tabs.selected_index = selected if selected is not None and selected < len(values) else 0
        for child in old:
            child.close()

    def _fallback_name(self) -> str:
        return getattr(self.target, "name", "") or ""

    def text(self) -> str:
        """Everything the tabs show, as plain text (for tests and `print`)."""
        lines = [f"{self.kind} {self.data.get('Name', '')} {self.status}".strip()]
        for title, rows in self.sections.items():
            lines.append(f"[{title}]")
            lines.extend(f"{k}: {_plain(v)}" for k, v in rows)
        return "\n".join(lines)

    def close(self) -> None:
        for child in [*self._tabs.children, self._tabs, self._header, self._refresh_button, self._top]:
            child.close()
        super().close()


def inspect_document(data: Any, exit_code: int, runtime: Any) -> Any:
    """What `%ctr inspect X` returns: the usual Document (`doc[0]["State"]`, `.to_frame()`, the
    HTML and JSON renderings) that displays as live InspectViews in a notebook (`doc.widget`)."""
    from ..notebook import Document

    class InspectDocument(Document):
        """A Document whose notebook rendering is an InspectView per item (HTML and JSON stay
        in the bundle for hosts without widgets: nbviewer, GitHub, static exports)."""

        _widget: Any = None

        @property
        def widget(self) -> Any:
            if self._widget is None:
                items = self.data if isinstance(self.data, list) else [self.data]
                views = [InspectView(_live_target(item, runtime)) for item in items if isinstance(item, dict)]
                self._widget = views[0] if len(views) == 1 else w.VBox(views)
            return self._widget

        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
            bundle = super()._repr_mimebundle_(include, exclude)
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
            return bundle

    return InspectDocument(data, exit_code)


def _live_target(item: dict[str, Any], runtime: Any) -> Any:
    """The Container or Image an inspect document describes (so Refresh re-reads it), else the data."""
    from ..engine.errors import WorkbenchError

    if runtime is None:  # no engine in this process (a rootless kernel): the data as it was
        return item
    try:
        if "State" in item:
            return runtime.container(item["Id"])
        return runtime.image(item["Id"])
    except (WorkbenchError, KeyError):
        return item
