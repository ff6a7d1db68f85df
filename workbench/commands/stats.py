"""`stats`: containers' resource use as Podman prints it, once (`--no-stream`) or every interval."""

from __future__ import annotations

import re
import sys
from typing import Any

from ..engine.errors import NoSuchContainer, WorkbenchError
from ..engine.top import go_duration  # Go's Duration.String(), Podman's CPU TIME
from . import humanize
from .context import Context

STATS_FORMAT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}"
                "\t{{.PIDS}}\t{{.UpTime}}\t{{.AVGCPU}}")
STATS_HEADERS = {"ID": "ID", "UpTime": "CPU TIME", "CPUPerc": "CPU %", "AVGCPU": "AVG CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemUsageBytes": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET IO", "BlockIO": "BLOCK IO", "PIDS": "PIDS"}
#: A notebook's default: one typed column per figure (bytes and percentages as numbers).
NOTEBOOK_FORMAT = ("table {{.ID}}\t{{.Name}}\t{{.CPU}}\t{{.MemUsageBytes}}\t{{.MemLimitBytes}}\t{{.MemPerc}}"
                   "\t{{.NetInputBytes}}\t{{.NetOutputBytes}}\t{{.BlockInputBytes}}\t{{.BlockOutputBytes}}"
                   "\t{{.PIDs}}\t{{.CPUNano}}\t{{.AvgCPU}}")
NOTEBOOK_HEADERS = {"CPU": "CPU %", "MemUsageBytes": "MEM USAGE", "MemLimitBytes": "MEM LIMIT", "MemPerc": "MEM %",
                    "NetInputBytes": "NET INPUT", "NetOutputBytes": "NET OUTPUT", "BlockInputBytes": "BLOCK INPUT",
                    "BlockOutputBytes": "BLOCK OUTPUT", "PIDs": "PIDS", "CPUNano": "CPU TIME (ns)",
                    "AvgCPU": "AVG CPU %"}
_JSON = re.compile(r"^\s*(json|{{\s*json\s*\.?\s*}})\s*$")  # Podman's report.IsJSON
_CLEAR = b"\033[2J\033[1;1H"  # goterm's Clear and MoveCursor(1, 1)


def stats(ctx: Context) -> None:
    a = ctx.args
    if a.plot:
        ctx.notebook_only("--plot")
    if a.all and a.containers:
        raise WorkbenchError("--all, --latest and containers cannot be used together")
    from ..engine.stats import rounds

    samples = rounds(ctx.rt, a.containers or None, all=a.all, stream=not a.no_stream,
                    interval=5 if a.interval is None else a.interval)
    try:
        for batch in samples:
            _emit(ctx, batch)
    except NoSuchContainer as exc:
        raise WorkbenchError(f"unable to get list of containers: unable to look up container {exc.name_or_id}: "
                             f"{exc}") from None
    except KeyboardInterrupt:
        pass  # Ctrl-C ends a stream; Podman exits 0


def _emit(ctx: Context, records: list[dict[str, Any]]) -> None:
    """One sample: a table, template lines or Podman's JSON; a stream is written (and flushed)
    as it comes, after clearing the screen of a terminal unless --no-reset."""
    a = ctx.args
    json = bool(a.format and _JSON.match(a.format))
    fmt = STATS_FORMAT if a.format in (None, "", "table") else a.format
    if not ctx.out.terminal and a.no_stream and not json:  # a notebook: a DataFrame
        if fmt == STATS_FORMAT:
            ctx.out.table([_typed_row(r) for r in records], NOTEBOOK_FORMAT, NOTEBOOK_HEADERS)
        else:
            ctx.out.table([template_row(r, a.no_trunc) for r in records], fmt, STATS_HEADERS)
        return
    rows = [template_row(r, a.no_trunc) for r in records]
    if json:
        text = _podman_json(rows) + "\n"
    else:
        from .template import is_table, render_rows, render_table

        text = render_table(fmt, rows, STATS_HEADERS) if is_table(fmt) else render_rows(fmt, rows)
    if ctx.out.terminal and not a.no_reset and sys.stdout.isatty():
        ctx.out.stream("stdout", _CLEAR)
    ctx.out.stream("stdout", text.encode())


def template_row(record: dict[str, Any], no_trunc: bool = False) -> dict[str, Any]:
    """The fields `stats --format` offers: the record's numbers plus Podman's text columns."""
    def pair(first: int, second: int, size=_decimal_size) -> str:
        return f"{size(first)} / {size(second)}"

    cpu_time = go_duration(record["CPUNano"])
    return {
        **record,
        "ID": record["ContainerID"] if no_trunc else record["ContainerID"][:12],
        "CPUPerc": _percent(record["CPU"]), "AVGCPU": _percent(record["AvgCPU"]),
        "MemUsage": pair(record["MemUsage"], record["MemLimit"]),
        "MemUsageBytes": pair(record["MemUsage"], record["MemLimit"], _binary_size),
        "MemPerc": _percent(record["MemPerc"]),
        "NetIO": pair(record["NetInput"], record["NetOutput"]),
        "BlockIO": pair(record["BlockInput"], record["BlockOutput"]),
        "PIDS": str(record["PIDs"]), "UpTime": cpu_time, "Up": cpu_time, "Duration": record["CPUNano"],
    }


def _typed_row(record: dict[str, Any]) -> dict[str, Any]:
    """A notebook's row: the record, sizes under the *Bytes names a notebook shows as sizes."""
    return {**record, "ID": record["ContainerID"][:12], "MemUsageBytes": record["MemUsage"],
            "MemLimitBytes": record["MemLimit"], "NetInputBytes": record["NetInput"],
            "NetOutputBytes": record["NetOutput"], "BlockInputBytes": record["BlockInput"],
            "BlockOutputBytes": record["BlockOutput"]}


def _podman_json(rows: list[dict[str, Any]]) -> str:
    """`--format json`: Podman's array of text columns, indented by one space as Podman does."""
    import json

    keys = {"id": "ID", "name": "Name", "cpu_time": "UpTime", "cpu_percent": "CPUPerc", "avg_cpu": "AVGCPU",
            "mem_usage": "MemUsage", "mem_percent": "MemPerc", "net_io": "NetIO", "block_io": "BlockIO",
            "pids": "PIDS"}
    return json.dumps([{key: row[field] for key, field in keys.items()} for row in rows], indent=1,
                      ensure_ascii=False)


def _percent(value: float) -> str:
    return f"{value:.2f}%"


def _decimal_size(n: int) -> str:
    """go-units HumanSize: '348.2kB', '25.28GB' (4 significant digits, no space)."""
    return humanize.size(n, 4).replace(" ", "")


def _binary_size(n: float) -> str:
    """go-units BytesSize: '340KiB', '23.54GiB'."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024.0
        i += 1
    return f"{n:.4g}{units[i]}"
