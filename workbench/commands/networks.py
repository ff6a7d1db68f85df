"""Network commands: network create, ls, inspect, rm, prune; and `port`."""

from __future__ import annotations

from ..engine.errors import WorkbenchError
from .context import Context
from .output import emit_listing

NETWORK_FORMAT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}"
NETWORK_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER"}


def network_create(ctx: Context) -> None:
    a = ctx.args
    labels = dict(item.partition("=")[::2] for item in a.label)
    network = ctx.rt.networks.create(a.name, subnet=a.subnet, gateway=a.gateway, internal=a.internal, labels=labels)
    ctx.out.line(network.name)


def network_ls(ctx: Context) -> None:
    a = ctx.args
    rows = [{"ID": n.id[:12] if not a.no_trunc else n.id, "Name": n.name, "Driver": "bridge",
             "Subnets": n.subnet, "Internal": n.internal, "Labels": n.labels}
            for n in sorted(ctx.rt.networks.list(), key=lambda n: n.name)]  # Podman sorts by name
    emit_listing(ctx.out, rows, a, NETWORK_FORMAT, NETWORK_HEADERS)


def network_inspect(ctx: Context) -> None:
    store = ctx.rt.networks
    docs = []
    for name in ctx.args.networks:
        network = store.get(name)
        members = {}
        for ctr_id in store.users(network.name):
            c = ctx.rt.container(ctr_id)
            status = c.st.network_status.get(network.name, {})
            members[ctr_id] = {"name": c.name, "interfaces": {status["ifname"]: {
                "subnets": [{"ipnet": f"{status['ip']}/{status['prefix']}", "gateway": status["gateway"]}],
                "mac_address": status["mac"]}} if status else {}}
        docs.append(network.inspect(members))
    ctx.out.document(docs)


def network_rm(ctx: Context) -> None:
    """Remove networks; with --force, the containers using them first. As podman network rm, each
    name on its own: the exit code is 1 for a network that does not exist, 2 for one in use."""
    from ..engine.network.networks import NetworkInUse, NoSuchNetwork

    a = ctx.args
    for name in a.networks:
        try:
            network = ctx.rt.networks.get(name)
            if a.force:
                for ctr_id in ctx.rt.networks.users(network.name):
                    ctx.rt.container(ctr_id).remove(force=True, timeout=a.time)
            ctx.rt.networks.remove(network.name)
        except WorkbenchError as exc:
            code = 1 if isinstance(exc, NoSuchNetwork) else 2 if isinstance(exc, NetworkInUse) else exc.exit_code
            ctx.fail(str(exc), code)
            continue
        ctx.out.line(network.name)


def network_exists(ctx: Context) -> None:
    from ..engine.network.networks import NoSuchNetwork

    try:
        ctx.rt.networks.get(ctx.args.network)
    except NoSuchNetwork:
        ctx.exit_code = 1


def network_connect(ctx: Context) -> None:
    a = ctx.args
    ctx.rt.container(a.container).connect(a.network, ip=a.ip or None)


def network_disconnect(ctx: Context) -> None:
    a = ctx.args
    ctx.rt.container(a.container).disconnect(a.network)


def port(ctx: Context) -> None:
    """`port NAME [PORT]`, or `port -a`: the published ports, as Podman prints them (one asked
    for: only where it is published)."""
    a = ctx.args
    if a.all == bool(a.container):
        raise WorkbenchError("give one container, or --all")
    for c in ctx.rt.containers() if a.all else [ctx.rt.container(a.container)]:
        for p in c.ports():
            key = f"{p['container_port']}/{p['protocol']}"
            host = f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}"
            if a.port:
                if a.port in (key, str(p["container_port"])):
                    ctx.out.line(host)
            else:
                ctx.out.line(f"{c.id[:12]}\t{key} -> {host}" if a.all else f"{key} -> {host}")
