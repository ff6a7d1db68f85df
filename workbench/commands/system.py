"""System commands: info (YAML like Podman's) and version."""

from __future__ import annotations

import os
import sys
from typing import Any

from .. import __version__
from .context import Context


def _yaml(data: Any, indent: int = 0) -> list[str]:
    """A minimal YAML emitter for the plain dicts, lists and scalars `info` prints."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            key = _yaml_key(key)
            if isinstance(value, (dict, list)) and value:
                lines.append(f"{pad}{key}:")
                lines += _yaml(value, indent + 1)
            else:
                lines.append(f"{pad}{key}: {_scalar(value)}")
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, (dict, list)) and item:
                sub = _yaml(item, indent + 1)
                lines.append(f"{pad}- {sub[0].strip()}")
                lines += sub[1:]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    return lines


def _yaml_key(name: str) -> str:
    """Go field name to Podman's YAML key: `OCIRuntime` -> `ociRuntime`, `GraphRoot` -> `graphRoot`."""
    upper = len(name) - len(name.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    if upper == len(name):
        return name.lower()
    if upper > 1:
        upper -= 1
    return name[:upper].lower() + name[upper:]


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "{}" if isinstance(value, dict) else "[]"
    text = str(value)
    if text == "" or text[0] in "!&*{}[],#|>@`\"'%-?:" or ": " in text or text.strip() != text:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def _arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def info_data(ctx: Context) -> dict[str, Any]:
    rt = ctx.rt
    from ..engine import cgroups

    containers = rt.containers()
    counts = {"number": len(containers), "paused": 0, "running": 0, "stopped": 0}
    for c in containers:
        key = {"running": "running", "paused": "paused"}.get(c.st.state.value, "stopped")
        counts[key] += 1
    uname = os.uname()
    with open("/proc/meminfo") as f:
        mem = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()[1].isdigit()}
    return {
        "Host": {
            "Arch": _arch(),
            "CgroupManager": "cgroupfs",
            "CgroupVersion": "v2" if cgroups.is_v2() else "v1",
            "Conmon": {"Path": rt.conmon_path, "Package": "conmon"},
            "CPUs": os.cpu_count(),
            "Hostname": uname.nodename,
            "Kernel": uname.release,
            "MemFree": mem.get("MemAvailable", 0),
            "MemTotal": mem.get("MemTotal", 0),
            "OCIRuntime": {"Name": rt.oci.name, "Path": rt.oci.path, "Version": rt.oci.version()},
            "OS": "linux",
            "Rootless": rt.rootless,
            "IDMappings": {"UIDMap": _id_map("uid_map"), "GIDMap": _id_map("gid_map")},
            "Capabilities": _mode_capabilities(rt),
        },
        "Store": {
            "ContainerStore": {k.capitalize(): v for k, v in counts.items()},
            "GraphDriverName": "overlay",
            "GraphRoot": rt.root,
            "ImageStore": {"Number": len(rt.images())},
            "RunRoot": rt.runroot,
        },
        "Version": {"Version": __version__, "PythonVersion": "%d.%d.%d" % sys.version_info[:3], "OsArch": f"linux/{_arch()}"},
    }


def _id_map(name: str) -> list[dict[str, int]]:
    """This process's user namespace map (the rootless one once joined; the identity as root)."""
    from ..engine.rootless import read_id_map

    return [{"ContainerID": inside, "HostID": outside, "Size": count}
            for inside, outside, count in read_id_map(f"/proc/self/{name}") or []]


def _mode_capabilities(rt: Any) -> dict[str, Any]:
    """What works in this mode (rootless on cgroup v1 has no limits and no bridges)."""
    import shutil

    from ..engine import cgroups
    from ..engine.rootless import gid_mapped
    from .containers import default_network

    rootless = rt.rootless
    return {"DefaultNetwork": default_network(), "BridgeNetworks": not rootless,
            "CgroupLimits": cgroups.containers_have_cgroups(), "Pause": cgroups.containers_have_cgroups(),
            "KeepID": rootless and bool(shutil.which("fuse-overlayfs")) and gid_mapped(1),
            "Slirp4netns": shutil.which("slirp4netns") or ""}


def info(ctx: Context) -> None:
    data = info_data(ctx)
    if ctx.args.format:
        from .output import to_json
        from .template import render

        ctx.out.line(to_json(data) if ctx.args.format == "json" else render(ctx.args.format, data))
        return
    for line in _yaml(data):
        ctx.out.line(line)


def unshare(ctx: Context) -> None:
    """Run a command in the rootless user and mount namespaces, where the store's files and
    mounts look as the engine sees them (`podman unshare`); $WORKBENCH_ROOT and
    $WORKBENCH_RUNROOT name the store."""
    import shutil

    from ..engine.errors import InvalidArgument, OCIRuntimeNotFound, WorkbenchError
    from ..engine.rootless import is_rootless

    if not is_rootless():
        raise WorkbenchError("please use unshare with rootless")
    if not ctx.out.terminal:
        raise InvalidArgument("unshare starts a process in your terminal: use the workbench command")
    rt = ctx.rt  # joins the namespaces
    argv = ctx.args.command or [os.environ.get("SHELL") or "/bin/sh"]
    env = {**os.environ, "WORKBENCH_ROOT": rt.root, "WORKBENCH_RUNROOT": rt.runroot}
    program = shutil.which(argv[0])
    if program is None:
        raise OCIRuntimeNotFound(f"{argv[0]}: executable file not found in $PATH")
    sys.stdout.flush()
    os.execve(program, argv, env)


def migrate(ctx: Context) -> None:
    """`system migrate`: rootless, stop every container and the pause process, so the next
    command makes a new user namespace (after /etc/subuid or /etc/subgid changed, say)."""
    from ..engine.rootless import stop_pause

    rt = ctx.rt
    if not rt.rootless:
        return
    for c in rt.containers():
        if c.state.value in ("running", "paused"):
            c.stop()
            ctx.out.line(c.id)
    stop_pause(rt.runroot)


def version(ctx: Context) -> None:
    data = {"Version": __version__, "APIVersion": __version__, "PythonVersion": "%d.%d.%d" % sys.version_info[:3],
            "OsArch": f"linux/{_arch()}"}
    if ctx.args.format:
        from .template import render

        ctx.out.line(render(ctx.args.format, {"Client": data, **data}))
        return
    for label, key in (("Version", "Version"), ("API Version", "APIVersion"),
                       ("Python Version", "PythonVersion"), ("OS/Arch", "OsArch")):
        ctx.out.line(f"{label + ':':<15}{data[key]}")


DOCTOR_FORMAT = "table {{.Name}}\t{{.Status}}\t{{.Detail}}\t{{.Fix}}"


def doctor(ctx: Context) -> None:
    """What works on this machine, with the fix for what does not; exit 1 when containers cannot run."""
    from ..engine import doctor as probes
    from .output import emit_table

    results = probes.checks()
    rows = [{"Name": c.name, "Status": c.status, "Detail": c.detail, "Fix": c.fix} for c in results]
    emit_table(ctx.out, rows, ctx.args.format, DOCTOR_FORMAT, {"Name": "CHECK"})
    if probes.containers_can_run(results):
        if not ctx.args.format:
            ctx.out.line("containers can run here")
    else:
        ctx.fail("containers cannot run here: " + "; ".join(
            f"{c.name}: {c.fix or c.detail}" for c in results if c.status == probes.MISSING or
            (c.name == "privileges" and c.status != probes.OK)), 1)
