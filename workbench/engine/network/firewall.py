"""NAT for bridge networks and published ports, with nftables (the `nft` command, one transaction
per call), in a table of our own, `ip workbench`, so nothing else on the host is touched.

Why kernel NAT and not a proxy: rootful Podman (netavark) does the same, traffic keeps its
source address, and nothing has to run while the container does. Connections from the host itself
are DNAT-ed in the `output` hook; those to 127.0.0.1 also need `route_localnet` on the bridge and a
masquerade of their 127.0.0.0/8 source (what netavark does), else the reply could not come back.
Every rule carries a comment tag (`net:<network id>`, `ports:<container id>`) to be removed by.
"""

from __future__ import annotations

import json
import socket
import subprocess

from ..errors import WorkbenchError
from .ports import PortMapping

TABLE = "workbench"
_CHAINS = {
    "prerouting": "type nat hook prerouting priority dstnat; policy accept;",
    "output": "type nat hook output priority -100; policy accept;",
    "postrouting": "type nat hook postrouting priority srcnat; policy accept;",
    "forward": "type filter hook forward priority filter; policy accept;",
}


def _nft(script: str) -> None:
    proc = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    if proc.returncode != 0:
        raise WorkbenchError(f"nftables: {proc.stderr.strip() or 'nft failed'}")


def _table() -> str:
    """Script lines that create our table and chains if missing (`add` is idempotent)."""
    lines = [f"add table ip {TABLE}"]
    lines += [f"add chain ip {TABLE} {name} {{ {spec} }}" for name, spec in _CHAINS.items()]
    return "\n".join(lines) + "\n"


def _rules() -> list[dict]:
    proc = subprocess.run(["nft", "-j", "list", "table", "ip", TABLE], capture_output=True, text=True)
    if proc.returncode != 0:
        return []  # no table: no rules
    return [item["rule"] for item in json.loads(proc.stdout)["nftables"] if "rule" in item]


def _delete(tag_prefix: str) -> str:
    """Script lines deleting our rules whose tag starts with `tag_prefix`."""
    return "".join(f"delete rule ip {TABLE} {r['chain']} handle {r['handle']}\n"
                   for r in _rules() if r.get("comment", "").startswith(tag_prefix))


def _sysctl(path: str, value: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise WorkbenchError(f"setting {path} to {value}: {exc.strerror}") from None


def enable_forwarding() -> None:
    """IPv4 forwarding, without which no container traffic leaves its bridge."""
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")


def add_network(tag: str, subnet: str, bridge: str, internal: bool) -> None:
    """Masquerade the subnet's outbound traffic (none for an internal network, which may not
    forward at all) and keep other bridges of ours from reaching it; replaces earlier rules."""
    t = f'comment "net:{tag}"'
    rules = [f'add rule ip {TABLE} forward iifname "{bridge}" oifname != "{bridge}" oifname "{pattern}" drop {t}'
             for pattern in ("wbbr*", "workbench*")]
    if internal:
        rules += [f'add rule ip {TABLE} forward iifname "{bridge}" oifname != "{bridge}" drop {t}',
                  f'add rule ip {TABLE} forward oifname "{bridge}" iifname != "{bridge}" drop {t}']
    else:
        rules.append(f"add rule ip {TABLE} postrouting ip saddr {subnet} ip daddr != {subnet} masquerade {t}")
    _nft(_table() + _delete(f"net:{tag}") + "\n".join(rules) + "\n")
    _sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")


def remove_network(tag: str) -> None:
    """Delete the network's rules; the table goes when nothing is left in it."""
    script = _delete(f"net:{tag}")
    if script:
        _nft(script)
    if not _rules():
        subprocess.run(["nft", "delete", "table", "ip", TABLE], capture_output=True)


def add_ports(owner: str, ip: str, ports: list[PortMapping]) -> None:
    """DNAT each published host port to `ip`, for traffic from elsewhere and from the host itself."""
    t = f'comment "ports:{owner}"'
    rules = []
    for p in ports:
        match = (f"ip daddr {p.host_ip} " if p.host_ip else "fib daddr type local ") + f"{p.protocol} dport {p.host_port}"
        to = f"dnat to {ip}:{p.container_port}"
        rules += [f"add rule ip {TABLE} prerouting {match} {to} {t}",
                  f"add rule ip {TABLE} output {match} {to} {t}",
                  f"add rule ip {TABLE} postrouting ip saddr 127.0.0.0/8 ip daddr {ip} {p.protocol} dport "
                  f"{p.container_port} masquerade {t}"]
    _nft(_table() + _delete(f"ports:{owner}") + "\n".join(rules) + "\n")


def remove_ports(owner: str) -> None:
    script = _delete(f"ports:{owner}")
    if script:
        _nft(script)


def list_rules(tag_prefix: str) -> list[str]:
    """Tags of our rules that start with `tag_prefix` (one per rule)."""
    return [r["comment"] for r in _rules() if r.get("comment", "").startswith(tag_prefix)]


def check_host_port_free(host_ip: str, port: int, protocol: str) -> None:
    """Raise unless the host port can be bound now (the engine checks before a container starts,
    as Podman does when it reserves its ports)."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as exc:
            raise WorkbenchError(f"cannot publish port {port}/{protocol}: {host_ip or '0.0.0.0'}:{port} is already "
                                 f"in use on the host ({exc.strerror})") from None
