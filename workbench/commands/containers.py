"""Container commands: create, run, start, stop, kill, wait, pause, restart, rm, ps, logs, inspect, cleanup."""

from __future__ import annotations

import os
import time

from ..engine.errors import ContainerRemoved, ContainerStateError, NoSuchContainer, NoSuchImage, WorkbenchError
from . import humanize
from .context import Context
from .output import emit_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

PS_FORMAT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedHuman}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
PS_HEADERS = {"ID": "CONTAINER ID", "CreatedHuman": "CREATED", "Names": "NAMES"}


def default_network() -> str:
    """Podman's default: the bridge network as root, slirp4netns rootless."""
    from ..engine.rootless import is_rootless

    return "slirp4netns" if is_rootless() else "bridge"


def _create_options(ctx: Context) -> dict[str, Any]:
    a = ctx.args
    labels = ctx.labels_from_flags(a.label, a.label_file)
    annotations = {}
    for item in a.annotation:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise WorkbenchError(f'invalid annotation "{item}": use KEY=VALUE')
        annotations[key] = value
    return dict(name=a.name, env=ctx.env_from_flags(a.env, a.env_file), workdir=a.workdir, user=a.user,
                entrypoint=a.entrypoint, stop_signal=a.stop_signal, stop_timeout=a.stop_timeout,
                remove=a.rm, labels=labels, network=a.network or default_network(), tty=a.tty, stdin=a.interactive,
                hostname=a.hostname, publish=a.publish, publish_all=a.publish_all, dns=a.dns,
                dns_search=a.dns_search, dns_options=a.dns_option, add_hosts=a.add_host, ip=a.ip,
                mac_address=a.mac_address, pid=a.pid, ipc=a.ipc, uts=a.uts, aliases=a.network_alias,
                oom_score_adj=a.oom_score_adj, ulimits=a.ulimit, shm_size=a.shm_size, volumes=a.volume,
                mounts=a.mount, tmpfs=a.tmpfs, read_only=a.read_only, cap_add=[c for v in a.cap_add for c in v.split(",")],
                cap_drop=[c for v in a.cap_drop for c in v.split(",")], init=a.init, init_path=a.init_path,
                privileged=a.privileged, userns=a.userns, restart=a.restart, volumes_from=a.volumes_from,
                log_driver=a.log_driver, log_opts=a.log_opt, health_cmd=a.health_cmd,
                health_interval=a.health_interval, health_timeout=a.health_timeout,
                health_start_period=a.health_start_period, health_retries=a.health_retries,
                health_on_failure=a.health_on_failure, no_healthcheck=a.no_healthcheck, annotations=annotations,
                env_host=a.env_host, unsetenv=a.unsetenv, unsetenv_all=a.unsetenv_all, expose=a.expose,
                remove_image=getattr(a, "rmi", False), security_opt=a.security_opt, sysctl=a.sysctl, umask=a.umask,
                group_add=a.group_add, tz=a.tz, secrets=a.secret, devices=a.device,
                **limit_flags(ctx))


def limit_flags(ctx: Context) -> dict[str, Any]:
    """The cgroup limit flags given on the command line (create, run, update)."""
    from ..engine.resources import Limits

    return {name: getattr(ctx.args, name) for name in Limits.__annotations__ if getattr(ctx.args, name) is not None}


def _image(ctx: Context) -> Any:
    """The image to create the container from, pulled first as --pull says: when it is missing
    (the default), always, never, or when the registry's is newer (a failed pull is then no error
    while one is here), as Podman."""
    a = ctx.args
    try:
        local = ctx.rt.image_store.get(a.image)  # resolved once: create takes the image itself
    except NoSuchImage:
        local = None
    if a.pull == "never" or (a.pull == "missing" and local is not None):
        return local or a.image  # a missing one: create says so
    from .registry import fetch

    try:
        return fetch(ctx, a.image)
    except WorkbenchError:
        if a.pull == "newer" and local is not None:
            return local
        raise


def _create(ctx: Context) -> Any:
    """The container `create` and `run` make: with --replace, one of its name goes first; with
    --cidfile, its ID is written there."""
    a = ctx.args
    if a.cidfile and os.path.lexists(a.cidfile):
        raise WorkbenchError(f"container id file exists. Ensure another container is not using it or delete "
                             f"{a.cidfile}")
    if a.replace:
        if not a.name:
            raise WorkbenchError("cannot replace container without --name being set")
        try:
            ctx.rt.container(a.name).remove(force=True)
        except (NoSuchContainer, ContainerRemoved):
            pass
    c = ctx.rt.create_container(_image(ctx), a.command or None, **_create_options(ctx))
    if a.cidfile:
        try:
            with open(a.cidfile, "x") as f:
                f.write(c.id)
        except OSError as exc:
            c.remove(force=True)
            raise WorkbenchError(f"writing the container ID to {a.cidfile}: {exc.strerror or exc}") from None
    return c


def create(ctx: Context) -> None:
    ctx.out.line(_create(ctx).id)


def run(ctx: Context) -> None:
    a = ctx.args
    if a.rmi:
        a.rm = True
    c = _create(ctx)
    if a.detach:
        with c.removing_on_failure(a.rm):
            c.start()
        ctx.out.line(c.id)
        return
    from .sessions import attach_and_wait

    with c.claim_cleanup():  # this process cleans up after the exit: the exit command need not
        with c.removing_on_failure(a.rm):
            attach_and_wait(ctx, c, stdin=a.interactive, start=True)
        if a.rm:
            _quietly(lambda: c.remove(force=True))
            _remove_image_of(ctx, c)


def _remove_image_of(ctx: Context, c: Any) -> None:
    """--rmi: the container's image goes after it, unless another container uses it (or it has
    more names than one, or is gone already)."""
    if c.config.remove_image:
        try:
            ctx.rt.remove_image(c.config.image_id)
        except WorkbenchError:
            pass


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except (ContainerRemoved, NoSuchContainer):
        pass


def _targets(ctx: Context, names: list[str], all_: bool = False, *, ignore: bool = False,
             missing_code: int = 125) -> list[tuple[str, Any]]:
    """(name as given, container) for each argument, or every container with --all. As in Podman,
    every name is looked up before any container is acted on: a name that matches none fails the
    command, and nothing is done, unless missing names are ignored."""
    a = ctx.args
    if getattr(a, "filter", None):  # as ps selects them (with --all implied)
        if names:
            raise WorkbenchError("--filter takes no container names")
        matches = _container_filters(ctx, a.filter)
        return [(c.id, c) for c in ctx.rt.containers() if matches(c)]
    if all_:
        return [(c.id, c) for c in ctx.rt.containers()]
    if getattr(a, "latest", False):
        latest = ctx.rt.latest()
        return [(latest.id, latest)]
    names = [*names, *(_read_cidfile(path) for path in getattr(a, "cidfile", ()))]
    if not names:
        raise WorkbenchError("you must provide at least one name or id")
    found, missing = [], False
    for name in names:
        try:
            found.append((name, ctx.rt.container(name)))
        except NoSuchContainer as exc:
            missing = True
            if not ignore:
                ctx.fail(str(exc), missing_code)
    return [] if missing and not ignore else found


def _read_cidfile(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        raise WorkbenchError(f"reading CIDFile {path}: {exc.strerror or exc}") from None


def _each(ctx: Context, action: Callable[[Any], None], names: list[str], all_: bool = False, *,
          ignore: bool = False, missing_code: int = 125, state_code: int = 125) -> None:
    for label, c in _targets(ctx, names, all_, ignore=ignore, missing_code=missing_code):
        try:
            action(c)
        except ContainerRemoved:
            if not ignore:
                ctx.fail(f'no container with name or ID "{label}" found: no such container', missing_code)
            continue
        except ContainerStateError as exc:
            ctx.fail(str(exc), state_code)
            continue
        except WorkbenchError as exc:
            ctx.fail(str(exc), exc.exit_code if exc.exit_code != 126 else 125)
            continue
        ctx.out.line(label)


def init(ctx: Context) -> None:
    _each(ctx, lambda c: c.init(), ctx.args.containers, ctx.args.all)


def start(ctx: Context) -> None:
    a = ctx.args
    if a.attach or a.interactive:
        targets = _targets(ctx, a.containers)
        if len(targets) != 1:
            raise WorkbenchError("you cannot start and attach multiple containers at once")
        from .sessions import attach_and_wait

        c = targets[0][1]
        attach_and_wait(ctx, c, stdin=a.interactive, start=True)
        if c.config.auto_remove:
            _quietly(lambda: c.remove(force=True))
        return
    from ..engine.state import ContainerState

    def start_one(c) -> None:
        if c.state != ContainerState.RUNNING:
            c.start()
    _each(ctx, start_one, a.containers, a.all)


def stop(ctx: Context) -> None:
    """Stop, then clean up (or remove an --rm container) at once, as Podman's stop does: the
    container is `exited` when the command returns, not when conmon's exit command gets to it."""

    def stop_one(c) -> None:
        c.stop(ctx.args.time)
        try:
            if c.config.auto_remove:
                c.remove()
            else:
                c.cleanup()
        except (ContainerStateError, ContainerRemoved, NoSuchContainer):
            pass  # the exit command was quicker
    _each(ctx, stop_one, ctx.args.containers, ctx.args.all, ignore=ctx.args.ignore)


def kill(ctx: Context) -> None:
    from ..engine.signals import parse_signal

    signal = parse_signal(ctx.args.signal)
    if ctx.args.all:
        from ..engine.state import ContainerState

        for c in ctx.rt.containers():
            if c.st.state == ContainerState.RUNNING:
                _each(ctx, lambda c: c.kill(signal), [c.id])
        return
    _each(ctx, lambda c: c.kill(signal), ctx.args.containers)


def pause(ctx: Context) -> None:
    _each(ctx, lambda c: c.pause(), ctx.args.containers, ctx.args.all)


def unpause(ctx: Context) -> None:
    _each(ctx, lambda c: c.unpause(), ctx.args.containers, ctx.args.all)


def restart(ctx: Context) -> None:
    _each(ctx, lambda c: c.restart(ctx.args.time), ctx.args.containers, ctx.args.all)


def rm(ctx: Context) -> None:
    a = ctx.args
    # as podman rm: exit 1 when a named container does not exist (not an error with --force),
    # 2 when one is running or paused
    _each(ctx, lambda c: c.remove(force=a.force, timeout=a.time, volumes=a.volumes), a.containers, a.all,
          ignore=a.ignore or a.force, missing_code=1, state_code=2)


def wait(ctx: Context) -> None:
    from ..engine.logs import parse_duration

    a = ctx.args
    nanos = parse_duration(a.interval) if not a.interval.isdigit() else int(a.interval) * 1_000_000  # ms
    if nanos is None or nanos <= 0:
        raise WorkbenchError(f'invalid interval "{a.interval}": a duration such as 250ms or 1s')
    for _, c in _targets(ctx, a.containers):
        try:
            ctx.out.line(str(c.wait_for(*(a.condition or ["stopped"]), interval=nanos / 1e9)))
        except WorkbenchError as exc:  # removed meanwhile
            ctx.fail(str(exc), exc.exit_code)


def cleanup(ctx: Context) -> None:
    """The exit command conmon runs: a lost race (container gone, already cleaned) is success."""
    from ..engine.state import ContainerState

    for label, c in _targets(ctx, ctx.args.containers, ctx.args.all, ignore=True):
        try:
            def work(c) -> None:
                if c.st.state in (ContainerState.RUNNING, ContainerState.PAUSED, ContainerState.STOPPING):
                    return  # STOPPING: the stopper records the exit (this may be an earlier run's exit command)
                if c.config.auto_remove or ctx.args.rm:
                    c.remove(force=False)
                    _remove_image_of(ctx, c)
                elif c.st.state not in (ContainerState.CONFIGURED, ContainerState.EXITED):
                    c.cleanup()
            c.batch(work)
        except (ContainerRemoved, NoSuchContainer):
            continue
        except WorkbenchError as exc:
            ctx.fail(f"cleaning up container {label}: {exc}")


def healthcheck_run(ctx: Context) -> None:
    """`healthcheck run NAME`, as Podman: nothing when healthy, else the status and exit code 1."""
    from ..engine import health

    outcome = health.run(ctx.rt.container(ctx.args.container))
    if outcome != "healthy":
        ctx.out.line(outcome)
        ctx.exit_code = 1


def container_exists(ctx: Context) -> None:
    try:
        ctx.rt.container(ctx.args.container)
    except NoSuchContainer:
        ctx.exit_code = 1


# -- ps ----------------------------------------------------------------------------
def _status(c, now: float) -> str:
    from ..engine.state import ContainerState as S

    st = c.st
    if st.state == S.RUNNING:
        up = "Up " + humanize.ago(st.started_at, now)
        if c.config.healthcheck:
            from ..engine import health

            return f"{up} ({health.status(c)['Status']})"
        return up
    if st.state in (S.EXITED, S.STOPPED):
        return f"Exited ({st.exit_code}) " + humanize.ago(st.finished_at or c.config.created, now)
    return {S.CONFIGURED: "Created", S.CREATED: "Initialized", S.PAUSED: "Paused",
            S.STOPPING: "Stopping", S.REMOVING: "Removing"}.get(st.state, "Unknown")


def ps_row(c, now: float, no_trunc: bool) -> dict[str, Any]:
    """The fields `ps --format` offers for one container."""
    cfg, st = c.config, c.st
    command = " ".join(cfg.entrypoint + cfg.command)
    return {
        "ID": cfg.id if no_trunc else cfg.id[:12],
        "Image": cfg.image_name,
        "ImageID": cfg.image_id,
        "Command": command if no_trunc or len(command) <= 17 else command[:17] + "...",
        "CreatedHuman": humanize.ago(cfg.created, now),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(cfg.created)),
        "Created": int(cfg.created),
        "Status": _status(c, now),
        "State": st.state.value,
        "Ports": ", ".join(f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}->{p['container_port']}/{p['protocol']}"
                           for p in cfg.ports),
        "Names": cfg.name,
        "Labels": dict(cfg.labels),
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Exited": st.exited,
        "ExitedAt": int(st.finished_at),
        "StartedAt": int(st.started_at),
        "AutoRemove": cfg.auto_remove,
        "Mounts": [],
        "Networks": [],
        "Pod": "",
        "PodName": "",
        "Size": None,
    }


def ps(ctx: Context) -> None:
    a = ctx.args
    if a.widget:
        ctx.notebook_only("--widget")
    from ..engine.state import ContainerState

    containers = ctx.rt.containers(all=True)
    matches = _container_filters(ctx, a.filter)
    containers = [c for c in containers if matches(c)]
    if not a.all and not any(spec.startswith("status=") for spec in a.filter):  # a status asked for: all
        containers = [c for c in containers if c.st.state == ContainerState.RUNNING]
    containers.sort(key=lambda c: c.config.created, reverse=True)
    if a.latest:
        containers = containers[:1]
    elif a.last >= 0:
        containers = containers[: a.last]
    now = time.time()
    if a.quiet:
        for c in containers:
            ctx.out.line(c.id if a.no_trunc else c.id[:12])
        return
    rows = [ps_row(c, now, a.no_trunc) for c in containers]
    fmt = a.format
    if a.size:
        from ..engine.files import tree_size

        for row, c in zip(rows, containers):
            rw = tree_size(ctx.rt.layers.diff(c.config.layer_id))
            virtual = rw + ctx.rt.image_store.get(c.config.image_id).size
            row["Size"] = f"{humanize.compact(rw)} (virtual {humanize.compact(virtual)})"
            row["SizeBytes"] = rw
        fmt = fmt or PS_FORMAT + "\t{{.Size}}"
    if a.sort:
        rows.sort(key=_PS_SORT_KEYS[a.sort])
    emit_table(ctx.out, rows, fmt, PS_FORMAT, PS_HEADERS, noheading=a.noheading)


#: `ps --sort` keys, as Podman's (created: newest first, the default order).
_PS_SORT_KEYS = {"command": lambda r: r["Command"], "created": lambda r: -r["Created"], "id": lambda r: r["ID"],
                 "image": lambda r: r["Image"], "names": lambda r: r["Names"], "runningfor": lambda r: -r["Created"],
                 "size": lambda r: r.get("SizeBytes", 0), "status": lambda r: r["Status"]}


_STATUSES = {"created": ("CONFIGURED", "CREATED"), "running": ("RUNNING",), "paused": ("PAUSED",),
             "stopping": ("STOPPING",), "exited": ("STOPPED", "EXITED"), "removing": ("REMOVING",),
             "unknown": ()}


def _container_filters(ctx: Context, specs: list[str]):
    """`ps --filter` as one predicate (filters.py: values of one key any-of, keys all-of)."""
    import re

    from .filters import labels_match, predicate

    def one(key: str, value: str):
        if key == "id":
            return lambda c: c.id.startswith(value)
        if key == "name":
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise WorkbenchError(f'invalid name filter "{value}": {exc}') from None
            return lambda c: bool(pattern.search(c.name))
        if key == "label":
            matches = labels_match(value)
            return lambda c: matches(c.config.labels)
        if key == "status":
            if value not in _STATUSES:
                raise WorkbenchError(f"{value} is not a valid status: use one of {', '.join(_STATUSES)}")
            return lambda c: c.st.state.name in _STATUSES[value]
        if key == "ancestor":
            try:
                image_id = ctx.rt.image_store.resolve_id(value)
            except WorkbenchError:
                image_id = None
            return lambda c: c.config.image_id == image_id or c.config.image_name == value
        if key == "exited":
            if not value.lstrip("-").isdigit():
                raise WorkbenchError(f'invalid exited filter "{value}": an exit code is a number')
            return lambda c: c.st.exited and c.st.exit_code == int(value)
        if key == "volume":
            return lambda c: any(m.get("volume") == value or m["destination"] == value or m["source"] == value
                                 for m in c.config.mounts)
        if key == "network":
            return lambda c: value in c.config.networks or c.config.network == value
        if key in ("before", "since"):
            pivot = ctx.rt.container(value).config.created
            return (lambda c: c.config.created < pivot) if key == "before" else (lambda c: c.config.created > pivot)
        raise WorkbenchError(f'invalid filter "{key}": supported are id, name, label, status, ancestor, exited, '
                             "volume, network, before, since")
    return predicate(specs, one)


# -- logs --------------------------------------------------------------------------
def logs(ctx: Context) -> None:
    a = ctx.args
    tail = None if a.tail < 0 else a.tail
    if not a.containers and not a.latest:
        raise WorkbenchError("you must provide at least one name or id")
    many = len(a.containers) > 1
    for c in [ctx.rt.latest()] if a.latest else [ctx.rt.container(name) for name in a.containers]:
        prefix = (c.name if a.names else c.id[:12]).encode() + b" " if many or a.names else b""
        for stream, data in c.log_chunks(follow=a.follow, tail=tail, since=a.since, until=a.until,
                                         timestamps=a.timestamps):
            ctx.out.stream(stream, prefix + data if prefix else data)


# -- inspect -----------------------------------------------------------------------
#: The fields of container and image inspect data that are Go maps in Podman (any key may be
#: missing: `<no value>`); everything else is a struct, where a missing field is an error.
_INSPECT_MAPS = frozenset({"Labels", "Annotations", "Ports", "Networks", "PortBindings", "ExposedPorts", "Volumes",
                           "Data", "Options", "Sysctls", "Tmpfs", "StorageOpt", "DriverOpts", "IPAMConfig"})


def _emit_inspect(ctx: Context, items: list[dict], fmt: str | None) -> None:
    if fmt and fmt != "json":
        from .template import render

        for item in items:
            ctx.out.line(render(fmt, item, strict=_INSPECT_MAPS))
    else:
        ctx.out.document(items)


_NOT_FOUND = {
    "all": 'inspecting object: no such object: "{name}"',
    "container": "inspecting object: no such container {name}",
    "image": "inspecting object: {name}: image not known",
}


def inspect(ctx: Context) -> None:
    """`inspect`: containers first, then images, as Podman's `--type all`."""
    a = ctx.args
    kind = getattr(a, "type", "container")
    items = []
    if getattr(a, "latest", False):
        a.names = [*a.names, ctx.rt.latest().id]
    if not a.names:
        raise WorkbenchError("you must provide at least one name or id")
    for name in a.names:
        data = None
        if kind in ("all", "container"):
            try:
                data = ctx.rt.container(name).inspect(size=a.size if hasattr(a, "size") else False)
            except NoSuchContainer:
                data = None
        if data is None and kind in ("all", "image"):
            try:
                data = ctx.rt.image(name).inspect()
            except NoSuchImage:
                data = None
        if data is None:
            ctx.fail(_NOT_FOUND[kind].format(name=name))
            continue
        items.append(data)
    _emit_inspect(ctx, items, a.format)


def container_inspect(ctx: Context) -> None:
    ctx.args.type = "container"
    inspect(ctx)


def image_inspect(ctx: Context) -> None:
    ctx.args.type = "image"
    ctx.args.size = False
    inspect(ctx)


def rename(ctx: Context) -> None:
    """`rename CONTAINER NAME` (prints nothing, as Podman)."""
    ctx.rt.container(ctx.args.container).rename(ctx.args.name)
