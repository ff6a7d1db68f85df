"""The kernel plumbing under container networking, for real: namespace files, bridges and veths,
nftables NAT and published ports, with busybox and Python servers inside namespaces.

Each test's links are named `wbt<6 hex>` (the bridge) and `wbt<6 hex>v<n>` (host ends of veths),
its subnets are 10.199.X.0/24 that no host route uses, and its firewall rules are tagged with the
bridge name, so tests run in parallel; fixtures remove all of it even when a test fails.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from workbench.engine.errors import WorkbenchError
from workbench.engine.network import bridge, firewall, netns
from workbench.engine.network.firewall import PortMapping

_SUBNET_LOCK = os.path.join(tempfile.gettempdir(), "workbench-test-subnets.lock")
UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"echo:" + data + b" from " + peer[0].encode(), peer)
"""
UDP_ASK = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
print(s.recv(2048).decode())
"""


# -- helpers ------------------------------------------------------------------------------
def in_ns(path: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={path}", *argv], capture_output=True, text=True, timeout=20)


def ip_json(path: str, *argv: str) -> list[dict]:
    proc = in_ns(path, "ip", "-j", *argv)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout or "[]")


def pings(path: str, address: str) -> bool:
    return in_ns(path, "busybox", "ping", "-c1", "-W1", address).returncode == 0


def mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def free_port(protocol: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def http_get(host: str, port: int, timeout: float = 10) -> str:
    """The response to GET / on host:port, retried while the server starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                chunks = []
                while chunk := s.recv(4096):
                    chunks.append(chunk)
                return b"".join(chunks).decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def udp_ask(host: str, port: int, timeout: float = 10) -> str:
    """The reply to one datagram sent to host:port, retried while nothing answers."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while True:
            try:
                s.sendto(b"ping", (host, port))
                return s.recv(2048).decode()
            except OSError:
                if time.monotonic() > deadline:
                    raise


def table_rule_count() -> int | None:
    """Rules in `ip workbench`, None when the table does not exist."""
    proc = subprocess.run(["nft", "-j", "list", "table", "ip", firewall.TABLE], capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    return sum("rule" in item for item in json.loads(proc.stdout)["nftables"])


def _free_subnet() -> ipaddress.IPv4Network:
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    free = [x for x in range(256) if f"10.199.{x}." not in routes]
    return ipaddress.ip_network(f"10.199.{random.choice(free)}.0/24")


class Lan:
    """One test bridge network; its name is also the tag of its firewall rules."""

    def __init__(self, directory: str):
        self.name = "wbt" + secrets.token_hex(3)
        self.directory = directory
        self.subnet = ipaddress.ip_network("0.0.0.0/24")
        self.servers: list[subprocess.Popen] = []

    def address(self, n: int) -> str:
        return str(self.subnet.network_address + n)

    @property
    def gateway(self) -> str:
        return self.address(1)

    def up(self) -> None:
        """Take a free subnet and make the bridge, under a lock shared by the test workers."""
        with open(_SUBNET_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.subnet = _free_subnet()
            bridge.ensure_bridge(self.name, self.gateway, 24)

    def firewall(self, internal: bool = False) -> None:
        firewall.enable_forwarding()
        firewall.add_network(self.name, str(self.subnet), self.name, internal)

    def namespace(self, n: int, *, gateway: bool = True, mac: str | None = None, mtu: int = 1500) -> tuple[str, str]:
        """A namespace plugged in as .<10+n> through veth `<name>v<n>`; (path, MAC of its eth0)."""
        path = os.path.join(self.directory, f"ns{n}")
        netns.create(path).close()
        mac = bridge.attach(path, self.name, f"{self.name}v{n}", self.address(10 + n), 24,
                            self.gateway if gateway else None, mac=mac, mtu=mtu)
        return path, mac

    def serve(self, path: str, *argv: str) -> subprocess.Popen:
        proc = subprocess.Popen(["nsenter", f"--net={path}", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        self.servers.append(proc)
        return proc

    def close(self) -> None:
        """Remove servers, rules, veths, bridge and namespaces; raise the first error after all."""
        steps = [lambda: [(p.kill(), p.wait()) for p in self.servers],
                 lambda: firewall.remove_ports(self.name),
                 lambda: firewall.remove_network(self.name),
                 lambda: [bridge.detach(link) for link in bridge.list_links(self.name) if link != self.name],
                 lambda: bridge.remove_bridge(self.name),
                 lambda: [netns.remove(os.path.join(self.directory, f))
                          for f in (os.listdir(self.directory) if os.path.isdir(self.directory) else [])]]
        errors = []
        for step in steps:
            try:
                step()
            except Exception as exc:  # keep cleaning
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def make_lan(tmp_path):
    """Makes Lans (bridges on free subnets); removes them and all they hold afterwards."""
    if os.geteuid() != 0:
        pytest.fail("bridges, veths, namespaces and nftables need root")
    made: list[Lan] = []

    def make() -> Lan:
        lan = Lan(str(tmp_path / f"netns{len(made)}"))
        made.append(lan)
        lan.up()
        return lan

    yield make
    for lan in made:
        lan.close()


@pytest.fixture
def lan(make_lan) -> Lan:
    return make_lan()


@pytest.fixture
def nsdir(tmp_path):
    """A directory for namespace files; whatever is left in it is unmounted and removed afterwards."""
    if os.geteuid() != 0:
        pytest.fail("network namespaces need root")
    directory = tmp_path / "run" / "netns"
    yield directory
    for name in os.listdir(directory) if directory.is_dir() else []:
        netns.remove(str(directory / name))


# -- namespaces ---------------------------------------------------------------------------
def links_seen_through(route: socket.socket) -> list[str]:
    """Names of the links a netlink socket sees (those of the namespace it was opened in)."""
    with bridge._iproute(fileno=os.dup(route.fileno())) as ipr:
        return sorted(link.get_attr("IFLA_IFNAME") for link in ipr.get_links())


def test_a_namespace_is_a_mounted_file_and_remove_leaves_neither(nsdir):
    path = str(nsdir / "a")
    mine = os.readlink("/proc/thread-self/ns/net")
    with netns.create(path) as route:
        assert links_seen_through(route) == ["lo"], "the socket is not inside the new namespace"
    assert netns.exists(path) and mounted(path)
    assert os.stat(nsdir).st_mode & 0o777 == 0o700
    assert os.stat(path).st_ino != os.stat("/proc/self/ns/net").st_ino, "not a new namespace"
    assert os.readlink("/proc/thread-self/ns/net") == mine, "the calling thread changed namespace"
    assert [link["ifname"] for link in ip_json(path, "link")] == ["lo"]
    netns.remove(path)
    assert not mounted(path) and not os.path.exists(path) and not netns.exists(path)
    netns.remove(path)  # idempotent


def test_a_route_socket_sees_the_namespace_it_was_opened_in_and_the_caller_stays_put(lan):
    path, _mac = lan.namespace(1)
    mine = os.readlink("/proc/thread-self/ns/net")
    with netns.route_socket(path) as route:
        assert links_seen_through(route) == ["eth0", "lo"]
    assert os.readlink("/proc/thread-self/ns/net") == mine
    with pytest.raises(WorkbenchError, match=f"entering network namespace {path}-gone: No such file"):
        netns.route_socket(path + "-gone")


def test_creating_a_namespace_on_an_existing_path_fails_clearly_and_keeps_the_first(nsdir):
    path = str(nsdir / "a")
    netns.create(path).close()
    inode = os.stat(path).st_ino
    with pytest.raises(WorkbenchError, match=f"network namespace {path} already exists"):
        netns.create(path)
    assert netns.exists(path) and os.stat(path).st_ino == inode


def test_a_failed_create_leaves_no_file_and_no_mount(nsdir, monkeypatch):
    path = str(nsdir / "a")
    monkeypatch.setattr(netns, "_CLONE_NEWNET", 1)  # not a namespace flag: unshare fails with EINVAL
    with pytest.raises(WorkbenchError, match=f"creating network namespace {path}: Invalid argument"):
        netns.create(path)
    assert not os.path.exists(path) and not mounted(path)


def test_a_namespace_under_a_file_fails_clearly(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(WorkbenchError, match="creating network namespace .*file/a: .*/file is not a usable directory"):
        netns.create(str(tmp_path / "file" / "a"))


# -- bridges and veths --------------------------------------------------------------------
def test_host_ifname_for_is_short_deterministic_and_per_index():
    cid = "0123456789abcdef" * 4
    assert bridge.host_ifname_for(cid) == bridge.host_ifname_for(cid, 0) == "wb012345670"
    assert bridge.host_ifname_for(cid, 3) == "wb012345673"
    assert all(len(bridge.host_ifname_for(cid, i)) <= 15 for i in range(100))


def test_ensure_bridge_is_idempotent_when_processes_race(lan):
    bridge.remove_bridge(lan.name)
    code = f"from workbench.engine.network import bridge; bridge.ensure_bridge({lan.name!r}, {lan.gateway!r}, 24)"
    racers = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    assert [(p.wait(), p.stderr.read()) for p in racers] == [(0, "")] * 3
    bridge.ensure_bridge(lan.name, lan.gateway, 24)
    (link,) = json.loads(subprocess.run(["ip", "-j", "-d", "addr", "show", "dev", lan.name],
                                        capture_output=True, text=True).stdout)
    assert link["linkinfo"]["info_kind"] == "bridge" and "UP" in link["flags"]
    assert [(a["local"], a["prefixlen"]) for a in link["addr_info"] if a["family"] == "inet"] == [(lan.gateway, 24)]


def test_ensure_bridge_refuses_a_link_that_is_not_a_bridge(lan):
    veth = f"{lan.name}v9"
    subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", f"{lan.name}p9"], check=True)
    with pytest.raises(WorkbenchError, match=f"cannot use {veth} as a bridge: the host has a veth link"):
        bridge.ensure_bridge(veth, lan.gateway, 24)


def test_attach_gives_eth0_its_address_mac_and_mtu_lo_and_the_default_route(lan):
    path, mac = lan.namespace(1, mac="92:d0:c6:0a:29:33", mtu=1400)
    assert mac == "92:d0:c6:0a:29:33"
    (eth0,) = ip_json(path, "addr", "show", "dev", "eth0")
    assert eth0["address"] == mac and "UP" in eth0["flags"]
    assert eth0["mtu"] == 1400 and open(f"/sys/class/net/{lan.name}v1/mtu").read() == "1400\n"
    assert [(a["local"], a["prefixlen"]) for a in eth0["addr_info"] if a["family"] == "inet"] == [(lan.address(11), 24)]
    (lo,) = ip_json(path, "link", "show", "dev", "lo")
    assert "UP" in lo["flags"]
    assert [(r["gateway"], r["dev"]) for r in ip_json(path, "route", "show", "default")] == [(lan.gateway, "eth0")]
    assert os.path.basename(os.readlink(f"/sys/class/net/{lan.name}v1/master")) == lan.name
    assert pings(path, lan.gateway)


def test_two_namespaces_on_one_bridge_reach_each_other(lan):
    one, mac = lan.namespace(1)
    two, _ = lan.namespace(2)
    assert ip_json(one, "link", "show", "dev", "eth0")[0]["address"] == mac
    assert pings(one, lan.address(12)) and pings(two, lan.address(11))


def test_an_internal_network_has_no_default_route_and_forwards_nothing(make_lan):
    inner, outer = make_lan(), make_lan()
    inner.firewall(internal=True)
    outer.firewall()
    path, _ = inner.namespace(1, gateway=False)
    other, _ = outer.namespace(1)
    assert ip_json(path, "route", "show", "default") == []
    assert pings(path, inner.gateway)
    # a route made from inside does not get the container out: the host drops what it forwards
    assert in_ns(path, "ip", "route", "add", str(outer.subnet), "via", inner.gateway).returncode == 0
    assert not pings(path, outer.address(11))
    inner.firewall(internal=False)  # replaces the rules: now it is forwarded (and masqueraded)
    assert pings(path, outer.address(11))


def test_detach_and_remove_bridge_leave_no_links(lan):
    one, _ = lan.namespace(1)
    lan.namespace(2)
    assert bridge.list_links(lan.name) == sorted([lan.name, f"{lan.name}v1", f"{lan.name}v2"])
    bridge.detach(f"{lan.name}v1")
    bridge.detach(f"{lan.name}v1")  # idempotent
    assert bridge.list_links(lan.name) == sorted([lan.name, f"{lan.name}v2"])
    assert [link["ifname"] for link in ip_json(one, "link")] == ["lo"], "the peer went with the host end"
    bridge.detach(f"{lan.name}v2")
    bridge.remove_bridge(lan.name)
    bridge.remove_bridge(lan.name)  # idempotent
    assert bridge.list_links(lan.name) == []


def test_attach_to_a_missing_bridge_fails_clearly_and_leaves_no_veth(lan):
    path = os.path.join(lan.directory, "ns1")
    netns.create(path).close()
    with pytest.raises(WorkbenchError, match=f"cannot attach to bridge {lan.name}x: no such bridge"):
        bridge.attach(path, lan.name + "x", f"{lan.name}v1", lan.address(11), 24, lan.gateway)
    assert bridge.list_links(lan.name) == [lan.name]
    assert [link["ifname"] for link in ip_json(path, "link")] == ["lo"]


def test_attach_to_a_missing_namespace_fails_clearly_and_leaves_no_veth(lan):
    path = os.path.join(lan.directory, "missing")
    with pytest.raises(WorkbenchError, match=f"opening network namespace {path}: No such file or directory"):
        bridge.attach(path, lan.name, f"{lan.name}v1", lan.address(11), 24, lan.gateway)
    assert bridge.list_links(lan.name) == [lan.name]


def test_a_host_name_already_taken_fails_clearly_and_leaves_the_first_veth(lan):
    one, _ = lan.namespace(1)
    two = os.path.join(lan.directory, "ns2")
    netns.create(two).close()
    with pytest.raises(WorkbenchError, match=f"creating veth {lan.name}v1: .*the name is taken"):
        bridge.attach(two, lan.name, f"{lan.name}v1", lan.address(12), 24, lan.gateway)
    assert bridge.list_links(lan.name) == sorted([lan.name, f"{lan.name}v1"])
    assert pings(one, lan.gateway)


# -- NAT and published ports --------------------------------------------------------------
def test_a_published_tcp_port_answers_on_localhost_the_gateway_and_from_a_peer(lan, tmp_path):
    lan.firewall()
    server, _ = lan.namespace(1)
    peer, _ = lan.namespace(2)
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("hello from the namespace\n")
    lan.serve(server, "busybox", "httpd", "-f", "-p", "8080", "-h", str(tmp_path / "www"))
    port, local_only = free_port("tcp"), free_port("tcp")
    firewall.check_host_port_free("", port, "tcp")
    firewall.add_ports(lan.name, lan.address(11), [PortMapping("", port, 8080, "tcp"),
                                                   PortMapping("127.0.0.1", local_only, 8080, "tcp")])
    assert "hello from the namespace" in http_get("127.0.0.1", port)
    assert "hello from the namespace" in http_get(lan.gateway, port)
    fetched = in_ns(peer, "busybox", "wget", "-q", "-O", "-", f"http://{lan.gateway}:{port}/")  # hairpin
    assert fetched.stdout == "hello from the namespace\n", fetched.stderr
    assert "hello from the namespace" in http_get("127.0.0.1", local_only)
    with pytest.raises(ConnectionRefusedError):  # published on 127.0.0.1 only
        http_get(lan.gateway, local_only, timeout=0)


def test_a_published_udp_port_echoes_to_the_host_and_to_a_peer(lan):
    lan.firewall()
    server, _ = lan.namespace(1)
    peer, _ = lan.namespace(2)
    echo = lan.serve(server, sys.executable, "-c", UDP_ECHO)
    assert echo.stdout.readline() == "ready\n"
    port = free_port("udp")
    firewall.add_ports(lan.name, lan.address(11), [PortMapping("", port, 5353, "udp")])
    # the server sees both through the gateway: 127.0.0.1 cannot be answered from a namespace, and
    # a peer answered directly would drop the reply (it asked the gateway), unless the bridge's
    # frames went through conntrack (br_netfilter) -- masqueraded either way, as with Podman
    assert udp_ask("127.0.0.1", port) == f"echo:ping from {lan.gateway}"
    asked = in_ns(peer, sys.executable, "-c", UDP_ASK, lan.gateway, str(port))  # hairpin
    assert asked.stdout == f"echo:ping from {lan.gateway}\n", asked.stderr


def test_rules_are_replaced_by_tag_and_removal_leaves_none_and_no_empty_table(lan):
    tag, port = lan.name, free_port("tcp")
    lan.firewall()
    lan.firewall()  # re-adding replaces
    net_rules = firewall.list_rules(f"net:{tag}")
    assert net_rules and set(net_rules) == {f"net:{tag}"}
    firewall.add_network(tag + "2", str(lan.subnet), lan.name, False)  # a tag that starts alike
    ports = [PortMapping("", port, 80, "tcp"), PortMapping("", port, 53, "udp")]
    firewall.add_ports(tag, lan.address(11), ports)
    firewall.add_ports(tag, lan.address(11), ports)
    assert firewall.list_rules(f"ports:{tag}") == [f"ports:{tag}"] * 6  # prerouting, output, masquerade each
    firewall.remove_ports(tag)
    firewall.remove_ports(tag)
    assert firewall.list_rules(f"ports:{tag}") == []
    assert sorted(firewall.list_rules(f"net:{tag}")) == net_rules + [f"net:{tag}2"] * len(net_rules)
    firewall.remove_network(tag)
    firewall.remove_network(tag)
    assert firewall.list_rules(f"net:{tag}") == [f"net:{tag}2"] * len(net_rules)
    firewall.remove_network(tag + "2")
    assert firewall.list_rules(f"net:{tag}") == []
    # other workers' rules may keep the table; it must never be left empty
    deadline = time.monotonic() + 2
    while table_rule_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert table_rule_count() != 0, f"table ip {firewall.TABLE} left empty"


def test_check_host_port_free_raises_for_a_port_in_use():
    with socket.socket() as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(WorkbenchError, match=f"port {port}/tcp: 0.0.0.0:{port} is already in use"):
            firewall.check_host_port_free("", port, "tcp")
        with pytest.raises(WorkbenchError, match=f"127.0.0.1:{port} is already in use"):
            firewall.check_host_port_free("127.0.0.1", port, "tcp")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        held.bind(("0.0.0.0", 0))
        port = held.getsockname()[1]
        with pytest.raises(WorkbenchError, match=f"port {port}/udp: .* is already in use"):
            firewall.check_host_port_free("", port, "udp")
    firewall.check_host_port_free("", port, "udp")  # released


def test_check_host_port_free_accepts_a_port_with_only_time_wait_connections():
    """As `podman run -p` does after a server (that set SO_REUSEADDR, as servers do) stopped."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server's end closes first, so it is the one left in TIME_WAIT
        client.recv(1)
        client.close()
    time.sleep(0.1)
    firewall.check_host_port_free("127.0.0.1", port, "tcp")
