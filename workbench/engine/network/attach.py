"""A container's network: its namespace, its interfaces on bridge networks, published ports, and
the /etc/hosts and /etc/resolv.conf it sees.

`setup` runs at init, before the OCI runtime creates the container (which joins the namespace by
path); `teardown` at cleanup and after a failed init, and leaves nothing behind on the host. The
address lease stays with the container until it is removed. Members of a network know each other
by name: their /etc/hosts files are rewritten in place (they are bind mounts) whenever a member
comes or goes.
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, WorkbenchError
from .ports import PortMapping

if TYPE_CHECKING:
    from ..container import Container

NETWORK_MODES = ("none", "host", "bridge")


def netns_path(c: Container) -> str:
    return os.path.join(c.rt.runroot, "netns", c.id)


def setup(c: Container) -> None:
    """Create the container's network namespace and plug it into its networks (bridge mode)."""
    cfg = c.config
    if cfg.network != "bridge":
        return
    from . import firewall, netns

    ports = [PortMapping(**p) for p in cfg.ports]
    for p in ports:
        firewall.check_host_port_free(p.host_ip, p.host_port, p.protocol)
    path = netns_path(c)
    netns.remove(path)  # a crash may have left it
    netns.create(path)
    c.st.netns, c.st.network_status = path, {}
    try:
        for index, name in enumerate(cfg.networks):
            plug(c, name, index)
        if ports:
            first = next(iter(c.st.network_status.values()))
            firewall.add_ports(c.id, first["ip"], ports)
    except BaseException:
        teardown(c)
        raise


def plug(c: Container, name: str, index: int) -> None:
    """Give the set-up namespace interface eth<index> on network `name` (the first one, index 0,
    gets the default route, --ip and --mac-address)."""
    from . import bridge
    from .networks import bring_up, host_lock

    cfg = c.config
    network = c.rt.networks.get(name)
    if not os.path.exists(f"/sys/class/net/{network.bridge}"):  # first use since boot
        with host_lock():
            bring_up(network)
    address = c.rt.networks.lease(network, c.id, cfg.ip if index == 0 else None)
    host_ifname = bridge.host_ifname_for(c.id, index)
    bridge.detach(host_ifname)  # left by a process that crashed here
    gateway = network.gateway if index == 0 and not network.internal else None
    mac = bridge.attach(c.st.netns, network.bridge, host_ifname, address, network.prefix, gateway,
                        mac=cfg.mac_address or None if index == 0 else None, ifname=f"eth{index}")
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


def rewrite_hosts(c: Container) -> None:
    """Rewrite c's own /etc/hosts in place (it is bind-mounted into the running container)."""
    from ..lifecycle import base_hosts

    with open(os.path.join(c.run_dir, "hosts"), "r+") as f:
        f.write(hosts(c, base_hosts()))
        f.truncate()


def teardown(c: Container, *, thorough: bool = False) -> None:
    """Remove the ports, interfaces and namespace `setup` made; idempotent. `thorough` (at removal)
    also removes what a process that crashed in the middle of `setup` may have left unrecorded."""
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
    netns.remove(c.st.netns or netns_path(c))
    if thorough:
        netns.remove(netns_path(c))
    c.st.netns, c.st.network_status = "", {}


def validate(rt: Any, mode: str, networks: list[str], ip: str, mac: str) -> None:
    """Check a container's network settings at create time, for clear early errors."""
    if mode == "bridge":
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
def hosts(c: Container, base: str) -> str:
    """The container's /etc/hosts: the host's base file, itself, the host, and its network peers."""
    cfg = c.config
    status = c.st.network_status
    if not status:
        return base + f"127.0.0.1\t{cfg.hostname} {cfg.name}\n" + _extra_hosts(cfg.add_hosts)
    first = next(iter(status.values()))
    lines = [f"{first['ip']}\t{' '.join([cfg.hostname, cfg.name, *cfg.aliases])}",
             f"{first['gateway']}\thost.containers.internal"]
    for address, names, ctr_id in _peers(c):
        lines.append(f"{address}\t{' '.join(names)} {ctr_id[:12]}")
    return base + _extra_hosts(cfg.add_hosts) + "\n".join(lines) + "\n"


def _extra_hosts(add_hosts: list[str]) -> str:
    return "".join(f"{entry.partition(':')[2]}\t{entry.partition(':')[0]}\n" for entry in add_hosts)


def _peers(c: Container, networks: list[str] | None = None) -> list[tuple[str, list[str], str]]:
    """(address, [name, aliases...], id) of the other running members of c's networks (or of
    `networks`)."""
    networks = list(c.st.network_status) if networks is None else networks
    if not networks:
        return []
    marks = ",".join("?" * len(networks))
    rows = c.rt.db.query(
        f"SELECT l.address, c.name, c.id, c.state, json_extract(c.config, '$.aliases') "
        f"FROM ip_leases l JOIN containers c ON c.id = l.container_id "
        f"WHERE l.network IN ({marks}) AND c.id != ? ORDER BY c.name", (*networks, c.id))
    import json

    seen, out = set(), []
    for address, name, ctr_id, state, aliases in rows:
        if json.loads(state).get("netns") and ctr_id not in seen:
            seen.add(ctr_id)
            out.append((address, [name, *json.loads(aliases or "[]")], ctr_id))
    return out


def refresh_peers(c: Container, networks: list[str]) -> None:
    """Rewrite the /etc/hosts of every running member of `networks` but c."""
    for _address, _name, ctr_id in _peers(c, networks):
        try:
            rewrite_hosts(c.rt.container(ctr_id))
        except (OSError, WorkbenchError):
            continue  # a peer going away meanwhile


def resolv_conf(host_lines: list[str], dns: list[str], search: list[str], options: list[str]) -> str:
    """The host's resolv.conf without loopback name servers (unreachable from a namespace), with
    `--dns`, `--dns-search` and `--dns-option` replacing the host's entries of each kind."""
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
    return "\n".join(kept) + "\n"
