"""`-p` values as Podman reads them."""

from __future__ import annotations

import pytest

from workbench import InvalidArgument
from workbench.engine.network.ports import PortMapping, exposed, parse_publish


@pytest.mark.parametrize("spec,expected", [
    ("80", [PortMapping("", 0, 80, "tcp")]),
    ("8080:80", [PortMapping("", 8080, 80, "tcp")]),
    ("127.0.0.1:8080:80/udp", [PortMapping("127.0.0.1", 8080, 80, "udp")]),
    ("127.0.0.1::80", [PortMapping("127.0.0.1", 0, 80, "tcp")]),
    ("9000-9001:90-91", [PortMapping("", 9000, 90, "tcp"), PortMapping("", 9001, 91, "tcp")]),
])
def test_publish_values(spec, expected):
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("spec,match", [
    ("http", "not a number"), ("0:80", "1-65535"), ("70000", "1-65535"), ("80/sctp", "tcp or udp"),
    ("1:2:3:4", "invalid port format"), ("9000-9002:90-91", "same length"), ("nope:1:2", "not an IPv4"),
    ("90-80", "ranges low-high"),
])
def test_bad_publish_values_say_what_is_wrong(spec, match):
    with pytest.raises(InvalidArgument, match=match):
        parse_publish(spec)


def test_publish_all_takes_the_exposed_ports():
    assert exposed({"ExposedPorts": {"80/tcp": {}, "53/udp": {}}}) == [
        PortMapping("", 0, 53, "udp"), PortMapping("", 0, 80, "tcp")]

