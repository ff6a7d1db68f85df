"""NAT for bridge networks and published ports, with nftables (the `nft` command, one transaction
per call), in a table of our own, `ip workbench`, so nothing else on the host is touched.

Why kernel NAT and not a proxy: rootful Podman (netavark) does the same, traffic keeps its
source address, and nothing has to run while the container does. Connections from the host itself
are DNAT-ed in the `output` hook; those to 127.0.0.1 also need `route_localnet` on the bridge and a
masquerade of their 127.0.0.0/8 source (what netavark does), else the reply could not come back.
A container reaching a published port of its own network through the gateway (hairpin) is
masqueraded too, else the server would answer it directly, from an address it did not call.
Every rule carries a comment tag (`net:<network>`, `ports:<owner>`) to be removed by.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess

from ..errors import WorkbenchError
from ..locks import FileLock
from .ports import PortMapping  # what add_ports takes; one definition, shared with the CLI's parser

TABLE = "workbench"
_CHAINS = {
    "prerouting": "type nat hook prerouting priority dstnat; policy accept;",
    "output": "type nat hook output priority -100; policy accept;",
    "postrouting": "type nat hook postrouting priority srcnat; policy accept;",
    "forward": "type filter hook forward priority filter; policy accept;",
}
_TAG = re.compile(r"^[\w.:-]+$")
# Held from reading our rules to committing a change, by every process: rule handles stay valid
# and "the table is empty" stays true until the table is deleted.
_lock = FileLock("/run/workbench-nft.lock")


def _nft(*args: str, script: str | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([shutil.which("nft") or "/usr/sbin/nft", *args], input=script,
                              capture_output=True, text=True)
    except FileNotFoundError:
        raise WorkbenchError("nft not found: install nftables (bridge networks need it)") from None


def _apply(script: str) -> None:
    proc = _nft("-f", "-", script=script)
    if proc.returncode != 0:
        raise WorkbenchError(f"nftables: {proc.stderr.strip() or 'nft failed'}")


def _table() -> str:
    """Script lines that create our table and chains if missing (`add` is idempotent)."""
    lines = [f"add table ip {TABLE}"]
    lines += [f"add chain ip {TABLE} {name} {{ {spec} }}" for name, spec in _CHAINS.items()]
    return "\n".join(lines) + "\n"


def _rules() -> list[dict] | None:
    """Our rules (nft's JSON), None when there is no table."""
    proc = _nft("-j", "list", "table", "ip", TABLE)
    if proc.returncode != 0:
        if "No such file or directory" in proc.stderr:
            return None
        raise WorkbenchError(f"nftables: listing table ip {TABLE}: {proc.stderr.strip()}")
    return [item["rule"] for item in json.loads(proc.stdout)["nftables"] if "rule" in item]


def _tag(kind: str, name: str) -> str:
    if not _TAG.match(name):
        raise WorkbenchError(f"invalid firewall tag {kind}:{name!r}: use letters, digits, '.', ':', '_' and '-'")
    return f"{kind}:{name}"


def _delete(tag: str, rules: list[dict] | None) -> str:
    """Script lines deleting our rules tagged exactly `tag`."""
    return "".join(f"delete rule ip {TABLE} {r['chain']} handle {r['handle']}\n"
                   for r in rules or [] if r.get("comment") == tag)


def _replace(tag: str, rules: list[str]) -> None:
    """One transaction: our table and chains, the tag's old rules out, `rules` (tagged) in."""
    with _lock:
        script = _table() + _delete(tag, _rules()) + "".join(f'{r} comment "{tag}"\n' for r in rules)
        _apply(script)


def _remove(tag: str) -> None:
    """Delete the tag's rules; the table goes with them when nothing else is left in it."""
    with _lock:
        rules = _rules()
        if rules is None:
            return
        if all(r.get("comment") == tag for r in rules):
            _apply(f"delete table ip {TABLE}\n")
            return
        script = _delete(tag, rules)
        if script:
            _apply(script)


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
    """IPv4 forwarding, without which no container traffic leaves its bridge. (`route_localnet`
    is set per bridge by `add_network`, as netavark does, not on `all`.)"""
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")


def add_network(name: str, subnet: str, bridge: str, internal: bool) -> None:
    """Masquerade the subnet's outbound traffic (none for an internal network, which may not
    forward at all), keep other bridges of ours from reaching it, masquerade hairpin traffic, and
    let 127.0.0.1 be DNAT-ed onto the bridge; replaces earlier rules tagged `net:<name>`."""
    tag = _tag("net", name)
    fwd, post = f"add rule ip {TABLE} forward", f"add rule ip {TABLE} postrouting"
    rules = [f'{fwd} iifname "{bridge}" oifname != "{bridge}" oifname "{pattern}" drop'
             for pattern in ("wbbr*", "workbench*")]
    if internal:
        rules += [f'{fwd} iifname "{bridge}" oifname != "{bridge}" drop',
                  f'{fwd} oifname "{bridge}" iifname != "{bridge}" drop']
    else:
        rules.append(f"{post} ip saddr {subnet} ip daddr != {subnet} masquerade")
    rules.append(f"{post} ip saddr {subnet} ip daddr {subnet} ct status dnat masquerade")
    _replace(tag, rules)
    _sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")


def remove_network(name: str) -> None:
    """Delete the network's rules; the table goes when nothing is left in it. Idempotent."""
    _remove(_tag("net", name))


def add_ports(owner: str, ip: str, ports: list[PortMapping]) -> None:
    """DNAT each published host port to `ip`: in prerouting for traffic from other hosts and
    namespaces, in output for the host's own (127.0.0.1 included). Needs the network's
    `add_network` rules (hairpin masquerade, route_localnet); replaces earlier `ports:<owner>` rules."""
    tag = _tag("ports", owner)
    rules = []
    for p in ports:
        if p.protocol not in ("tcp", "udp"):
            raise WorkbenchError(f"cannot publish port {p.host_port}/{p.protocol}: the protocol must be tcp or udp")
        to_host = f"ip daddr {p.host_ip}" if p.host_ip else "fib daddr type local"
        match = f"{to_host} {p.protocol} dport {p.host_port}"
        to = f"dnat to {ip}:{p.container_port}"
        rules += [f"add rule ip {TABLE} prerouting {match} {to}",
                  f"add rule ip {TABLE} output {match} {to}",
                  f"add rule ip {TABLE} postrouting ip saddr 127.0.0.0/8 ip daddr {ip} {p.protocol} dport "
                  f"{p.container_port} masquerade"]
    _replace(tag, rules)


def remove_ports(owner: str) -> None:
    """Delete the owner's port rules (and the table, if nothing is left in it). Idempotent."""
    _remove(_tag("ports", owner))


def list_rules(tag_prefix: str) -> list[str]:
    """Tags of our rules that start with `tag_prefix` (one per rule)."""
    return [r["comment"] for r in _rules() or [] if r.get("comment", "").startswith(tag_prefix)]


def check_host_port_free(host_ip: str, port: int, protocol: str) -> None:
    """Raise unless the host port can be bound now. The engine calls this before it starts a
    container, as Podman reserves its host ports by binding them; DNAT alone would shadow a
    server already listening there."""
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        if protocol == "tcp":  # a port with only TIME_WAIT connections left is free (as for Go's Listen)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as exc:
            raise WorkbenchError(f"cannot publish port {port}/{protocol}: {host_ip or '0.0.0.0'}:{port} is already "
                                 f"in use on the host ({exc.strerror})") from None
