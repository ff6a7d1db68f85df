"""A container's network: its namespace, its interfaces on bridge networks, published ports, and
the /etc/hosts and /etc/resolv.conf it sees.

`setup` runs at init, before the OCI runtime creates the container (which joins the namespace by
path); `teardown` at cleanup and after a failed init, and leaves nothing behind on the host. The
address lease stays with the container until it is removed. Members of a network know each other
by name: their /etc/hosts files are rewritten in place (they are bind mounts) whenever a member
comes or goes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import InvalidArgument, WorkbenchError
from ..records import NamedTuple
from .ports import PortMapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from typing import Any

    from ..container import Container


class Member(NamedTuple):
    """A running container's address on one network, and the line naming it in its peers'
    /etc/hosts."""

    network: str
    address: str
    name: str
    id: str
    aliases: list[str]
    line: str


def netns_path(c: Container) -> str:
    return os.path.join(c.rt.runroot, "netns", c.id)


def setup(c: Container) -> None:
    """Create the container's network namespace and plug it into its networks (bridge mode)."""
    cfg = c.config
    if cfg.network == "slirp4netns" and not _made_by_runtime(c):
        _setup_slirp(c)
    if cfg.network != "bridge":
        return
    from . import firewall, netns

    ports = [PortMapping(**p) for p in cfg.ports]
    for p in ports:
        firewall.check_host_port_free(p.host_ip, p.host_port, p.protocol)
    path = netns_path(c)
    netns.remove(path)  # a crash may have left it
    inside = netns.create(path)
    c.st.netns, c.st.network_status = path, {}
    try:
        for index, name in enumerate(cfg.networks):
            plug(c, name, index, inside)
        if ports:
            first = next(iter(c.st.network_status.values()))
            firewall.add_ports(c.id, first["ip"], ports)
    except BaseException:
        teardown(c)
        raise
    finally:
        inside.close()


def _made_by_runtime(c: Container) -> bool:
    """Whether the OCI runtime makes the container's network namespace, which then belongs to the
    container's own user namespace (--userns=keep-id): runc 1.1 cannot exec into a container whose
    network namespace another user namespace owns. slirp4netns is attached after create then."""
    return c.config.userns == "keep-id"


def setup_created(c: Container, pid: int) -> None:
    """The part of `setup` that needs the created container: slirp4netns on the namespace the
    runtime made (see _made_by_runtime)."""
    if c.config.network == "slirp4netns" and _made_by_runtime(c):
        from . import slirp

        c.st.slirp_pid = slirp.start(c, f"/proc/{pid}/ns/net", userns=f"/proc/{pid}/ns/user")


def _setup_slirp(c: Container) -> None:
    from . import netns, slirp

    path = netns_path(c)
    netns.remove(path)
    netns.create(path).close()  # slirp4netns configures the inside itself
    c.st.netns = path
    try:
        c.st.slirp_pid = slirp.start(c, path)
    except BaseException:
        teardown(c)
        raise


def plug(c: Container, name: str, index: int, inside: socket.socket | None = None) -> None:
    """Give the set-up namespace interface eth<index> on network `name` (the first one, index 0,
    gets the default route, --ip and --mac-address); `inside` is a netlink socket in it, if the
    caller has one."""
    from . import bridge
    from .networks import bring_up, host_lock

    cfg = c.config
    network = c.rt.networks.get(name)
    if not os.path.exists(f"/sys/class/net/{network.bridge}"):  # first use since boot
        with host_lock():
            bring_up(network)
    address = c.rt.networks.lease(network, c.id, cfg.ip if index == 0 else None)
    host_ifname = bridge.host_ifname_for(c.id, index)
    if os.path.lexists(f"/sys/class/net/{host_ifname}"):  # left by a process that crashed here
        bridge.detach(host_ifname)
    gateway = network.gateway if index == 0 and not network.internal else None
    mac = bridge.attach(c.st.netns, network.bridge, host_ifname, address, network.prefix, gateway,
                        mac=cfg.mac_address or None if index == 0 else None, ifname=f"eth{index}", inside=inside)
    c.st.network_status[name] = {"ip": address, "prefix": network.prefix, "gateway": network.gateway,
                                 "mac": mac, "ifname": f"eth{index}", "host_ifname": host_ifname}


def unplug(c: Container, name: str) -> None:
    """Remove the container's interface on network `name`, if it has one."""
    from . import bridge

    status = c.st.network_status.pop(name, None)
    if status is not None:
        bridge.detach(status["host_ifname"])


def free_index(c: Container) -> int:
    """The lowest N with no eth<N> in the container yet."""
    used = {int(s["ifname"][3:]) for s in c.st.network_status.values()}
    return next(n for n in range(len(used) + 1) if n not in used)


def rewrite_hosts(c: Container, members: list[Member] | None = None, base: str | None = None) -> None:
    """Rewrite c's own /etc/hosts in place (it is bind-mounted into the running container), from
    `members` and the host's `base` file when the caller has read them already."""
    from ..lifecycle import base_hosts

    with open(os.path.join(c.run_dir, "hosts"), "r+") as f:
        f.write(hosts(c, base_hosts() if base is None else base, members))
        f.truncate()


def teardown(c: Container, *, thorough: bool = False) -> None:
    """Remove the ports, interfaces and namespace `setup` made; idempotent. `thorough` (at removal)
    also removes what a process that crashed in the middle of `setup` may have left unrecorded."""
    if c.config.network == "slirp4netns" and (c.st.netns or c.st.slirp_pid or thorough):
        from . import netns, slirp

        slirp.stop(c.st.slirp_pid, c)
        netns.remove(netns_path(c))
        c.st.netns, c.st.slirp_pid = "", 0
        return
    if not c.st.netns and not (thorough and c.config.network == "bridge"):
        return
    from . import bridge, firewall, netns

    if c.config.ports:
        firewall.remove_ports(c.id)
    names = {status["host_ifname"] for status in c.st.network_status.values()}
    if thorough:
        names |= {bridge.host_ifname_for(c.id, index) for index in range(len(c.config.networks))}
    for name in sorted(names):
        bridge.detach(name)
    netns.remove(netns_path(c))  # where setup makes it, recorded or not
    c.st.netns, c.st.network_status = "", {}


def options(rt: Any, network: str | Sequence[str], publish: Sequence[str], publish_all: bool,
            image_cfg: dict[str, Any], ip: str, mac: str, add_hosts: Sequence[str]) -> dict[str, Any]:
    """A new container's config fields `network` (the mode), `networks` and `ports`, from what
    `create` was given; every value is checked here, for clear errors before anything is made."""
    from .ports import assign, exposed, parse_publish

    if isinstance(network, str):  # a list of networks, or one mode whose options have commas
        network = [network] if network.startswith("slirp4netns:") else network.split(",")
    names = [n for n in network if n]
    if not names:
        raise InvalidArgument("no network given: use none, host, bridge, container:NAME or network names")
    mode, networks, mode_options = "bridge", names, {}
    if len(names) == 1 and names[0].startswith("slirp4netns:"):
        from .slirp import parse_options

        mode, networks, mode_options = "slirp4netns", [], parse_options(names[0].partition(":")[2])
    elif len(names) == 1 and names[0] in ("none", "host", "slirp4netns"):
        mode, networks = names[0], []
    elif len(names) == 1 and names[0].startswith("container:"):
        mode, networks = f"container:{rt.container(names[0].partition(':')[2]).id}", []
    elif any(n in ("none", "host", "bridge", "slirp4netns") or n.startswith(("container:", "slirp4netns:"))
             for n in names) and len(names) > 1:
        raise InvalidArgument(f'network mode "{",".join(names)}": a mode cannot be combined with other networks')
    elif names == ["bridge"]:
        from .networks import DEFAULT_NETWORK  # only here: the module brings ipaddress

        networks = [DEFAULT_NETWORK]
    if mode == "bridge":
        from .networks import require_root

        require_root(f"--network {','.join(names)}")
    ports = [p for spec in publish for p in parse_publish(spec)] + (exposed(image_cfg) if publish_all else [])
    if ports and mode not in ("bridge", "slirp4netns"):
        raise InvalidArgument(f'cannot publish ports with network mode "{mode}": ports need a bridge network '
                              'or slirp4netns')
    seen: set[tuple[str, int]] = set()
    for p in ports:
        if p.host_port and (p.protocol, p.host_port) in seen:
            raise InvalidArgument(f"host port {p.host_port}/{p.protocol} is published twice")
        seen.add((p.protocol, p.host_port))
    for entry in add_hosts:
        _check_add_host(entry)
    _check_addresses(rt, mode, networks, ip, mac)
    return {"network": mode, "networks": networks, "ports": [p.to_json() for p in assign(ports)],
            "network_options": mode_options}


def _check_add_host(entry: str) -> None:
    import ipaddress

    host, sep, address = entry.partition(":")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        sep = ""
    if not sep or not host:
        raise InvalidArgument(f'invalid --add-host "{entry}": use HOST:IP')


def _check_addresses(rt: Any, mode: str, networks: list[str], ip: str, mac: str) -> None:
    """Networks exist; --ip is a free-to-ask host address of the first one; --mac-address is unicast."""
    if mode == "bridge":
        import ipaddress

        from .networks import host_address

        for name in networks:
            network = rt.networks.get(name)
            if ip and name == networks[0]:
                outside = f"requested static ip {ip} not in any subnet on network {name}"
                if host_address(ipaddress.ip_network(network.subnet), ip, outside) == network.gateway:
                    raise InvalidArgument(f"requested static ip {ip} is the gateway of network {name}")
    elif ip or mac:
        raise InvalidArgument(f'--ip and --mac-address need a bridge network, not network mode "{mode}"')
    if mac:
        octets = mac.split(":")
        if len(octets) != 6 or not all(len(o) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in o) for o in octets):
            raise InvalidArgument(f'invalid MAC address "{mac}": use six hex pairs like 92:d0:c6:0a:29:33')
        if int(octets[0], 16) & 1:
            raise InvalidArgument(f'invalid MAC address "{mac}": a multicast address cannot name an interface')


# -- /etc/hosts and /etc/resolv.conf -------------------------------------------------------
def hosts(c: Container, base: str, members: list[Member] | None = None) -> str:
    """The container's /etc/hosts: the host's base file, itself, the host, and its network peers
    (from `members`, when the caller has read them already)."""
    cfg = c.config
    status = c.st.network_status
    if cfg.network == "slirp4netns":
        from .slirp import addresses

        address, gateway, _dns = addresses(cfg.network_options)
        status = {"slirp4netns": {"ip": address, "gateway": gateway}}
    if not status:
        return base + f"127.0.0.1\t{cfg.hostname} {cfg.name}\n" + _extra_hosts(cfg.add_hosts)
    first = next(iter(status.values()))
    lines = [f"{first['ip']}\t{' '.join([cfg.hostname, cfg.name, *cfg.aliases])}",
             f"{first['gateway']}\thost.containers.internal"]
    lines += [m.line for m in _peers(c, members=members)]
    return base + _extra_hosts(cfg.add_hosts) + "\n".join(lines) + "\n"


def _extra_hosts(add_hosts: list[str]) -> str:
    return "".join(f"{entry.partition(':')[2]}\t{entry.partition(':')[0]}\n" for entry in add_hosts)


def _members(rt: Any, networks: Sequence[str] | None = None) -> list[Member]:
    """The running members of `networks` (of every network when None), by container name."""
    import json

    where, args = "", ()
    if networks is not None:
        where, args = f"l.network IN ({','.join('?' * len(networks))}) AND ", tuple(networks)
    rows = rt.db.query(
        f"SELECT l.network, l.address, c.name, c.id, json_extract(c.config, '$.aliases') "
        f"FROM ip_leases l JOIN containers c ON c.id = l.container_id "
        f"WHERE {where}json_extract(c.state, '$.netns') != '' ORDER BY c.name", args)
    out = []
    for network, address, name, ctr_id, aliases_json in rows:
        aliases = json.loads(aliases_json or "[]")
        out.append(Member(network, address, name, ctr_id, aliases, f"{address}\t{' '.join([name, *aliases])} {ctr_id[:12]}"))
    return out


def _peers(c: Container, networks: list[str] | None = None, members: list[Member] | None = None) -> list[Member]:
    """The other running members of c's networks (or of `networks`), from `members` or read now;
    a container on several of them once, by the first."""
    wanted = set(c.st.network_status if networks is None else networks)
    if not wanted:
        return []
    if members is None:
        members = _members(c.rt, list(wanted))
    seen, out = {c.id}, []
    for m in members:
        if m.network in wanted and m.id not in seen:
            seen.add(m.id)
            out.append(m)
    return out


def refresh_peers(c: Container, networks: list[str]) -> None:
    """Rewrite the /etc/hosts of every running member of `networks` but c; the members of every
    network (a peer's file lists its other networks too) and the host's file are read once."""
    from ..lifecycle import base_hosts

    members, base = _members(c.rt), base_hosts()
    peers = [m.id for m in _peers(c, networks, members)]
    for peer in c.rt.containers(sync=False, ids=peers) if peers else []:
        try:
            rewrite_hosts(peer, members, base)
        except (OSError, WorkbenchError):
            continue  # a peer going away meanwhile


def own_nameservers(c: Container) -> list[str]:
    """Name servers the network mode itself offers (slirp4netns's DNS forwarder)."""
    if c.config.network == "slirp4netns" and not c.config.dns:
        from .slirp import addresses

        return [addresses(c.config.network_options)[2]]
    return []


def resolv_conf(host_lines: list[str], dns: list[str], search: list[str], options: list[str],
                first: Sequence[str] = ()) -> str:
    """The host's resolv.conf without loopback name servers (unreachable from a namespace), with
    `--dns`, `--dns-search` and `--dns-option` replacing the host's entries of each kind; the
    name servers `first` before all."""
    def nameserver_ok(line: str) -> bool:
        words = line.split()
        return not (words[:1] == ["nameserver"] and len(words) > 1
                    and (words[1].startswith("127.") or words[1] == "::1"))

    kept = [line for line in host_lines if nameserver_ok(line)]
    if dns:
        kept = [line for line in kept if not line.startswith("nameserver")] + [f"nameserver {d}" for d in dns]
    if search:
        kept = [line for line in kept if not line.startswith(("search", "domain"))] + ["search " + " ".join(search)]
    if options:
        kept = [line for line in kept if not line.startswith("options")] + ["options " + " ".join(options)]
    if not any(line.startswith("nameserver") for line in kept):
        kept += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
    return "".join(f"nameserver {server}\n" for server in first) + "\n".join(kept) + "\n"
