"""Networks and their address leases, kept in the state DB.

A network is a bridge on the host with one IPv4 subnet. Its first address is the gateway (the
bridge's own); containers lease the others, one each, from their creation until their removal,
so a container keeps its address across restarts. Subnets are checked against every other
network and against the host's routes, so a new network never shadows a path the host uses.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from typing import TYPE_CHECKING, Any

from .. import events
from ..errors import InvalidArgument, WorkbenchError
from ..records import NamedTuple

if TYPE_CHECKING:
    from ..db import Database

DEFAULT_NETWORK = "workbench"
DEFAULT_BRIDGE = "workbench0"
BRIDGE_PREFIX = "wbbr"  # bridges of named networks: wbbr<n>
_POOL = ipaddress.ip_network("10.77.0.0/16")  # subnets for new networks: 10.77.N.0/24
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


class NoSuchNetwork(WorkbenchError):
    """A network name that is not in the store."""

    def __init__(self, name: str):
        super().__init__(f"unable to find network with name or ID {name}: network not found")


class NetworkInUse(WorkbenchError):
    """A network that containers still have addresses on."""

    def __init__(self, name: str):
        super().__init__(f'"{name}" has associated containers with it. Use -f to forcibly delete containers and '
                         "pods: network is being used")


class Network(NamedTuple):
    """One bridge network."""

    name: str
    id: str
    subnet: str  # "10.77.0.0/24"
    gateway: str  # "10.77.0.1"
    bridge: str
    internal: bool
    created: float
    labels: dict[str, str]

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    def inspect(self, containers: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
        """Podman's `network inspect` shape."""
        import datetime

        created = datetime.datetime.fromtimestamp(self.created).astimezone().isoformat()
        return {
            "name": self.name, "id": self.id, "driver": "bridge", "network_interface": self.bridge,
            "created": created, "subnets": [{"subnet": self.subnet, "gateway": self.gateway}],
            "ipv6_enabled": False, "internal": self.internal, "dns_enabled": False,
            "labels": dict(self.labels), "ipam_options": {"driver": "host-local"},
            "containers": containers or {},
        }


class NetworkStore:
    """Networks by name, and which container holds which address."""

    def __init__(self, db: Database, runroot: str | None = None):
        self.db = db
        self.runroot = runroot  # where events go; None: none are recorded

    # -- networks ---------------------------------------------------------------
    def get(self, name: str) -> Network:
        if name == DEFAULT_NETWORK:
            return self.default()
        rows = self.db.query("SELECT data FROM networks WHERE name = ?", (name,))
        if not rows:
            rows = self.db.query("SELECT data FROM networks WHERE json_extract(data, '$.id') LIKE ?", (name + "%",))
            if len(rows) != 1:
                raise NoSuchNetwork(name)
        return _network(rows[0][0])

    def list(self) -> list[Network]:
        from ..rootless import is_rootless

        if not is_rootless():  # rootless has no bridge networks, not even the default one
            self.default()
        return [_network(data) for (data,) in self.db.query("SELECT data FROM networks ORDER BY created")]

    def default(self) -> Network:
        """The default network, created on first use."""
        rows = self.db.query("SELECT data FROM networks WHERE name = ?", (DEFAULT_NETWORK,))
        if rows:
            return _network(rows[0][0])
        try:
            return self.create(DEFAULT_NETWORK, bridge=DEFAULT_BRIDGE)
        except InvalidArgument:  # another process made it first
            return _network(self.db.query("SELECT data FROM networks WHERE name = ?", (DEFAULT_NETWORK,))[0][0])

    def create(self, name: str, *, subnet: str | None = None, gateway: str | None = None, internal: bool = False,
               labels: dict[str, str] | None = None, bridge: str | None = None) -> Network:
        """A new network; the subnet (a free /24 of 10.77.0.0/16 by default) must not overlap
        another network or a host route; the gateway defaults to the subnet's first address."""
        require_root("network create")
        if not _NAME.match(name) or len(name) > 128:
            raise InvalidArgument(f'invalid network name "{name}": use letters, digits, "_", "." and "-"')
        if name in ("none", "host", "bridge", "private", "slirp4netns", "pasta") or name.startswith("container:"):
            raise InvalidArgument(f'network name "{name}" is reserved for a network mode')
        with host_lock(), self.db.transaction() as cur:
            taken = [_network(data) for (data,) in cur.execute("SELECT data FROM networks").fetchall()]
            if any(n.name == name for n in taken):
                raise InvalidArgument(f"network name {name} already used: network already exists")
            ours = {n.bridge for n in taken}
            net = _choose_subnet(subnet, [ipaddress.ip_network(n.subnet) for n in taken], ours)
            gw = _gateway(net, gateway)
            bridge = _free_bridge_name(bridge, ours | set(_host_links()))
            import hashlib

            network = Network(name=name, id=hashlib.sha256(f"{name}{time.time()}".encode()).hexdigest(),
                              subnet=str(net), gateway=str(gw), bridge=bridge, internal=internal,
                              created=time.time(), labels=dict(labels or {}))
            cur.execute("INSERT INTO networks (name, data, created) VALUES (?, ?, ?)",
                        (name, json.dumps(network._asdict()), network.created))
            try:
                bring_up(network)  # the bridge and its route claim the subnet on the host
            except BaseException:
                tear_down(network)
                raise
        if self.runroot:
            events.network(self.runroot, "create", network.id, network.name)
        return network

    def remove(self, name: str) -> Network:
        """Delete a network no container holds an address on, with its bridge and rules."""
        network = self.get(name)
        users = self.users(network.name)
        if users:
            raise NetworkInUse(network.name)
        with host_lock():
            tear_down(network)
            self.db.execute("DELETE FROM networks WHERE name = ?", (network.name,))
        if self.runroot:
            events.network(self.runroot, "remove", network.id, network.name)
        return network

    def users(self, name: str) -> list[str]:
        """IDs of the containers holding an address on the network."""
        return [r[0] for r in self.db.query("SELECT container_id FROM ip_leases WHERE network = ?", (name,))]

    # -- leases -----------------------------------------------------------------
    def lease(self, network: Network, container_id: str, wanted: str | None = None) -> str:
        """The container's address on the network: its existing lease, `wanted`, or the lowest free one."""
        net = ipaddress.ip_network(network.subnet)
        with self.db.transaction() as cur:
            row = cur.execute("SELECT address FROM ip_leases WHERE network = ? AND container_id = ?",
                              (network.name, container_id)).fetchone()
            if row:
                return row[0]
            taken = {r[0] for r in cur.execute("SELECT address FROM ip_leases WHERE network = ?", (network.name,))}
            taken.add(network.gateway)
            if wanted:
                address = host_address(net, wanted, f"requested static ip {wanted} not in any subnet on network "
                                                    f"{network.name}")
                if address in taken:
                    raise InvalidArgument(f"IP address {address} is already allocated on network {network.name}")
            else:
                address = next((str(a) for a in net.hosts() if str(a) not in taken), "")
                if not address:
                    raise WorkbenchError(f"network {network.name} ({network.subnet}) has no free address left")
            cur.execute("INSERT INTO ip_leases (network, address, container_id) VALUES (?, ?, ?)",
                        (network.name, address, container_id))
        return address

    def leases(self, container_id: str) -> dict[str, str]:
        """network name -> address, for one container."""
        return dict(self.db.query("SELECT network, address FROM ip_leases WHERE container_id = ?", (container_id,)))

    def release(self, container_id: str, network: str | None = None) -> None:
        if network is None:
            self.db.execute("DELETE FROM ip_leases WHERE container_id = ?", (container_id,))
        else:
            self.db.execute("DELETE FROM ip_leases WHERE container_id = ? AND network = ?", (container_id, network))


def require_root(what: str) -> None:
    """Bridge networks are the host's (bridges, veths, nftables rules): refuse them rootless, plainly."""
    from ..rootless import is_rootless

    if is_rootless():
        raise WorkbenchError(f"{what}: bridge networks need root; rootless containers use slirp4netns (the "
                             "default: outbound access and -p published ports) or --network none")


def host_lock():
    """Held while networks are made or removed: bridges, subnets and rules are the host's, shared
    by every Workbench store on it."""
    from ..locks import FileLock

    return FileLock("/run/workbench-networks.lock")


def bring_up(network: Network) -> None:
    """The network's bridge (with the gateway address) and its NAT/forwarding rules; idempotent."""
    from . import bridge, firewall

    bridge.ensure_bridge(network.bridge, network.gateway, network.prefix)
    firewall.enable_forwarding()
    firewall.add_network(network.id[:12], network.subnet, network.bridge, network.internal)


def tear_down(network: Network) -> None:
    from . import bridge, firewall

    firewall.remove_network(network.id[:12])
    bridge.remove_bridge(network.bridge)


def _network(data: str) -> Network:
    return Network(**json.loads(data))


def _choose_subnet(text: str | None, taken: list[ipaddress.IPv4Network], ours: set[str]) -> ipaddress.IPv4Network:
    routes = _host_routes(ours)
    if text:
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise InvalidArgument(f'invalid subnet "{text}": {exc}') from None
        if net.version != 4:
            raise InvalidArgument(f'subnet "{text}": only IPv4 subnets are supported')
        if net.prefixlen > 30:
            raise InvalidArgument(f'subnet "{text}" is too small: use a prefix of /30 or shorter')
        for other in taken:
            if net.overlaps(other):
                raise InvalidArgument(f"subnet {net} is already used by another network ({other})")
        for route in routes:
            if net.overlaps(route):
                raise InvalidArgument(f"subnet {net} overlaps the host route to {route}")
        return net
    for net in _POOL.subnets(new_prefix=24):
        if not any(net.overlaps(other) for other in taken + routes):
            return net
    raise WorkbenchError(f"no free /24 subnet left in {_POOL}: remove networks or give --subnet")


def _gateway(net: ipaddress.IPv4Network, text: str | None) -> ipaddress.IPv4Address:
    if not text:
        return next(net.hosts())
    return ipaddress.ip_address(host_address(net, text, f"gateway {text} is not a host address of subnet {net}"))  # type: ignore[return-value]


def host_address(net: ipaddress.IPv4Network, text: str, outside: str) -> str:
    """`text` if it is an address of `net` a host can have; InvalidArgument(`outside`) if not."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f'invalid IP address "{text}"') from None
    if address not in net or address in (net.network_address, net.broadcast_address):
        raise InvalidArgument(outside)
    return str(address)


def _free_bridge_name(wanted: str | None, taken: set[str]) -> str:
    """`wanted` if no link has that name (another store's bridge may), else the first free wbbr<n>."""
    if wanted and wanted not in taken:
        return wanted
    n = 0
    while f"{BRIDGE_PREFIX}{n}" in taken:
        n += 1
    return f"{BRIDGE_PREFIX}{n}"


def _host_links() -> list[str]:
    import os

    try:
        return os.listdir("/sys/class/net")
    except OSError:
        return []


def _host_routes(ours: set[str]) -> list[ipaddress.IPv4Network]:
    """Destinations of the host's IPv4 routes, but the default route and those of our bridges
    (other stores' bridges count: their subnets are taken)."""
    routes = []
    try:
        with open("/proc/net/route") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[0] in ours:
            continue
        dest, mask = int(fields[1], 16), int(fields[7], 16)
        if mask == 0:
            continue
        to_ip = lambda v: ipaddress.IPv4Address(v.to_bytes(4, "little"))  # noqa: E731
        routes.append(ipaddress.ip_network(f"{to_ip(dest)}/{to_ip(mask)}", strict=False))
    return routes
