"""Published ports: Podman's `-p [hostIP:][hostPort:]containerPort[/protocol]` (ranges too) and `-P`."""

from __future__ import annotations


from ..errors import InvalidArgument
from ..records import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any


class PortMapping(NamedTuple):
    """One published port; host_ip "" means every address."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str  # "tcp" or "udp"

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


def parse_publish(spec: str) -> list[PortMapping]:
    """The mappings one `-p` value asks for; host port 0 means "any free port" (see `assign`)."""
    text, _, protocol = spec.partition("/")
    protocol = protocol or "tcp"
    if protocol not in ("tcp", "udp"):
        raise InvalidArgument(f'invalid port protocol "{protocol}" in "{spec}": use tcp or udp')
    host_ip = ""
    if text.startswith("["):
        raise InvalidArgument(f'"{spec}": IPv6 host addresses are not supported')
    parts = text.split(":")
    if len(parts) == 3:
        host_ip, host, ctr = parts
        if host_ip:
            import ipaddress

            try:
                if ipaddress.ip_address(host_ip).version != 4:
                    raise ValueError
            except ValueError:
                raise InvalidArgument(f'invalid host IP "{host_ip}" in "{spec}": not an IPv4 address') from None
    elif len(parts) == 2:
        host, ctr = parts
    elif len(parts) == 1:
        host, ctr = "", parts[0]
    else:
        raise InvalidArgument(f'invalid port format "{spec}": use [hostIP:][hostPort:]containerPort[/protocol]')
    ctr_ports = _range(ctr, spec)
    host_ports = _range(host, spec) if host else [0] * len(ctr_ports)
    if len(host_ports) != len(ctr_ports):
        raise InvalidArgument(f'"{spec}": host and container port ranges must have the same length')
    return [PortMapping(host_ip, h, c, protocol) for h, c in zip(host_ports, ctr_ports)]


def _range(text: str, spec: str) -> list[int]:
    first, sep, last = text.partition("-")
    try:
        start, end = int(first), int(last) if sep else int(first)
    except ValueError:
        raise InvalidArgument(f'invalid port "{text}" in "{spec}": not a number or range') from None
    if not (1 <= start <= end <= 65535):
        raise InvalidArgument(f'invalid port "{text}" in "{spec}": ports are 1-65535, ranges low-high')
    return list(range(start, end + 1))


def exposed(image_config: dict[str, Any]) -> list[PortMapping]:
    """`-P`: every port the image EXPOSEs ("80/tcp"), to a free host port."""
    out = []
    for key in sorted((image_config.get("ExposedPorts") or {})):
        port, _, protocol = str(key).partition("/")
        out += parse_publish(f"{port}/{protocol or 'tcp'}")
    return out


def expose_ports(specs: Sequence[str]) -> dict[str, dict]:
    """`--expose` values ("80", "53/udp", "8000-8002/tcp") as an image config's ExposedPorts."""
    out: dict[str, dict] = {}
    for spec in specs:
        ports, _, protocol = spec.partition("/")
        protocol = protocol or "tcp"
        low, _, high = ports.partition("-")
        if protocol not in ("tcp", "udp", "sctp") or not low.isdigit() or (high and not high.isdigit()):
            raise InvalidArgument(f'invalid --expose "{spec}": use PORT[-PORT][/tcp|udp|sctp]')
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= 65535:
            raise InvalidArgument(f'invalid --expose "{spec}": ports are 1-65535, ranges low-high')
        out.update({f"{port}/{protocol}": {} for port in range(first, last + 1)})
    return out


def assign(mappings: list[PortMapping]) -> list[PortMapping]:
    """Host port 0 replaced by a port the kernel reports free, as Podman picks a random one."""
    import socket

    out = []
    for m in mappings:
        if m.host_port == 0:
            kind = socket.SOCK_STREAM if m.protocol == "tcp" else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind((m.host_ip or "0.0.0.0", 0))
                m = m._replace(host_port=s.getsockname()[1])
        out.append(m)
    return out
