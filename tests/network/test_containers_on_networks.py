"""Containers on bridge networks, for real: veths, namespaces, nftables rules, busybox servers.

Traffic stays on 127.0.0.1 and on addresses inside namespaces these tests create.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from workbench import InvalidArgument, WorkbenchError


HTTPD = ["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]


def host_traces(rt, ids: list[str] = ()) -> dict[str, list[str]]:
    """What container networking holds on the host for `rt` and the containers `ids` (other tests
    run in parallel): their veths and port rules, namespaces and mounts, address leases."""
    from workbench.engine.network import bridge, firewall

    ids = list(ids)
    netns_dir = os.path.join(rt.runroot, "netns")
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if netns_dir in line]
    return {
        "veths": sorted(name for name in bridge.list_links("wb") if any(name[2:10] == i[:8] for i in ids)),
        "netns files": sorted(os.listdir(netns_dir)) if os.path.isdir(netns_dir) else [],
        "netns mounts": sorted(mounts),
        "port rules": sorted(r for r in firewall.list_rules("ports:") if any(i in r for i in ids)),
        "leases": sorted(r[0] for r in rt.db.query("SELECT address FROM ip_leases")),
    }


def in_container(c, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess:
    """Run a command in the running container through the CLI-free engine API."""
    result = c.exec(list(argv))
    return subprocess.CompletedProcess(argv, result.exit_code, result.stdout.decode(), result.stderr.decode())


def http_get(port: int, host: str = "127.0.0.1", timeout: float = 10) -> str:
    """The body of GET / on host:port, retried while the server starts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            return data.split(b"\r\n\r\n", 1)[1].decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(c, argv: list[str], timeout: float = 10):
    deadline = time.monotonic() + timeout
    while True:
        result = in_container(c, *argv)
        if result.returncode == 0 or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_a_published_port_reaches_httpd_from_the_host(nrt, busybox):
    port = free_port()
    c = nrt.run(busybox, HTTPD, network="bridge", publish=[f"{port}:8080"], name="web", detach=True)
    assert http_get(port) == f"hello from {c.id[:12]}\n"
    settings = c.inspect()["NetworkSettings"]
    assert settings["Ports"] == {"8080/tcp": [{"HostIp": "", "HostPort": str(port)}]}
    assert settings["IPAddress"].startswith("10.77.") and settings["Networks"]["workbench"]["MacAddress"]


def test_containers_on_a_network_reach_each_other_by_name(nrt, busybox):
    nrt.networks.create("lab")
    nrt.run(busybox, HTTPD, network="lab", name="server", aliases=["db", "db.lab"], detach=True)
    client = nrt.run(busybox, ["sleep", "60"], network="lab", name="client", detach=True)
    for host in ("server", "db", "db.lab"):  # its name and its --network-alias names
        result = wait_for(client, ["wget", "-qO-", f"http://{host}:8080/"])
        assert result.returncode == 0 and result.stdout.startswith("hello from"), result.stderr
    # the server, started first, learned the client's name too
    assert "client" in in_container(nrt.container("server"), "cat", "/etc/hosts").stdout
    client.rename("analysis")  # a rename reaches the peers' /etc/hosts at once
    server_hosts = in_container(nrt.container("server"), "cat", "/etc/hosts").stdout
    assert "analysis" in server_hosts and "client" not in server_hosts
    assert "analysis" in in_container(client, "cat", "/etc/hosts").stdout


def test_a_member_of_two_networks_keeps_every_peer_when_one_network_changes(nrt, busybox):
    """A start or stop on one network rewrites its members' /etc/hosts from every network they are
    on: a member of two networks keeps the peers of the other one."""
    nrt.networks.create("front")
    nrt.networks.create("back")
    both = nrt.run(busybox, ["sleep", "60"], network="front,back", name="both", detach=True)
    nrt.run(busybox, ["sleep", "60"], network="back", name="backonly", detach=True)
    late = nrt.run(busybox, ["sleep", "60"], network="front", name="late", detach=True)
    names = in_container(both, "cat", "/etc/hosts").stdout
    assert "backonly" in names and "late" in names
    assert "backonly" not in in_container(late, "cat", "/etc/hosts").stdout  # not on its network
    late.stop(timeout=0)  # its clean-up (conmon's exit command, as libpod's) tells the peers
    deadline = time.monotonic() + 20
    while "late" in (names := in_container(both, "cat", "/etc/hosts").stdout) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "backonly" in names and "late" not in names


UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
while True:
    data, peer = s.recvfrom(100)
    s.sendto(b"pong:" + data, peer)
"""


def test_udp_through_a_published_port(nrt, busybox):
    """busybox's nc cannot answer UDP, so a Python echo server runs in the container's namespace."""
    port = free_port()
    c = nrt.run(busybox, ["sleep", "60"], network="bridge", publish=[f"127.0.0.1:{port}:5353/udp"], detach=True)
    server = subprocess.Popen(["nsenter", f"--net={c.inspect()['NetworkSettings']['SandboxKey']}",
                               "python3", "-c", UDP_ECHO])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            for _ in range(20):
                s.sendto(b"ping", ("127.0.0.1", port))
                try:
                    assert s.recvfrom(100)[0] == b"pong:ping"
                    break
                except TimeoutError:
                    continue
            else:
                pytest.fail("no UDP reply through the published port")
    finally:
        server.kill()
        server.wait()


def test_container_network_mode_shares_localhost(nrt, busybox):
    nrt.run(busybox, ["sh", "-c", "mkdir /www && echo shared > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"],
            name="owner", detach=True)  # network "none": a private loopback only
    guest = nrt.run(busybox, ["sleep", "60"], network="container:owner", detach=True)
    assert wait_for(guest, ["wget", "-qO-", "http://127.0.0.1:8080/"]).stdout == "shared\n"
    with pytest.raises(WorkbenchError, match="dependent containers"):
        nrt.container("owner").remove(force=True)


def test_pid_namespace_of_another_container(nrt, busybox):
    owner = nrt.run(busybox, ["sleep", "1234"], name="sleeper", detach=True)
    guest = nrt.run(busybox, ["sleep", "60"], pid="container:sleeper", detach=True)
    assert "sleep 1234" in in_container(guest, "ps").stdout
    assert guest.inspect()["HostConfig"]["PidMode"] == f"container:{owner.id}"


def test_internal_network_has_no_way_out_and_networks_are_isolated(nrt, busybox):
    nrt.networks.create("closed", internal=True)
    nrt.networks.create("other")
    inside = nrt.run(busybox, ["sleep", "60"], network="closed", detach=True)
    routes = in_container(inside, "ip", "route").stdout
    assert "default" not in routes and "10.77." in routes
    elsewhere = nrt.run(busybox, ["sleep", "60"], network="other", detach=True)
    target = elsewhere.inspect()["NetworkSettings"]["IPAddress"]
    assert in_container(inside, "ping", "-c", "1", "-W", "1", target).returncode != 0


def test_dns_extra_hosts_and_hostname(nrt, busybox):
    c = nrt.run(busybox, ["sleep", "60"], dns=["192.0.2.53"], dns_search=["lab.example"],
                add_hosts=["db.example:192.0.2.7"], hostname="analysis", detach=True)
    resolv = in_container(c, "cat", "/etc/resolv.conf").stdout
    assert "nameserver 192.0.2.53" in resolv and "search lab.example" in resolv
    hosts = in_container(c, "cat", "/etc/hosts").stdout
    assert "192.0.2.7\tdb.example" in hosts and "127.0.0.1\tanalysis" in hosts
    assert in_container(c, "hostname").stdout == "analysis\n"
    assert in_container(c, "sh", "-c", "echo $HOSTNAME").stdout == "analysis\n"


def test_uts_and_ipc_of_another_container(nrt, busybox):
    owner = nrt.run(busybox, ["sleep", "60"], hostname="shared-name", name="host-of-all", detach=True)
    guest = nrt.run(busybox, ["sleep", "60"], uts="container:host-of-all", ipc="container:host-of-all", detach=True)
    assert in_container(guest, "hostname").stdout == "shared-name\n"
    assert in_container(guest, "readlink", "/proc/self/ns/ipc").stdout == \
        in_container(owner, "readlink", "/proc/self/ns/ipc").stdout
    with pytest.raises(WorkbenchError, match="not running"):
        stopped = nrt.create_container(busybox, ["sleep", "60"], name="stopped")
        nrt.run(busybox, ["true"], pid="container:stopped", remove=True)
    stopped.remove()


def test_static_ip_and_mac(nrt, busybox):
    nrt.networks.create("fixed", subnet="10.77.200.0/24")
    c = nrt.run(busybox, ["sleep", "60"], network="fixed", ip="10.77.200.50", mac_address="92:d0:c6:0a:29:33",
                hostname="analysis", detach=True)
    addr = in_container(c, "ip", "addr", "show", "eth0").stdout
    assert "10.77.200.50/24" in addr and "92:d0:c6:0a:29:33" in addr
    assert "10.77.200.50\tanalysis" in in_container(c, "cat", "/etc/hosts").stdout


def test_restart_gets_a_working_network_and_the_same_address(nrt, busybox):
    port = free_port()
    c = nrt.run(busybox, HTTPD, network="bridge", publish=[f"{port}:8080"], detach=True)
    address = c.inspect()["NetworkSettings"]["IPAddress"]
    c.restart(timeout=0)
    assert http_get(port).startswith("hello from")
    assert c.inspect()["NetworkSettings"]["IPAddress"] == address


def test_many_containers_leave_nothing_behind(nrt, busybox):
    nrt.networks.default()  # the network itself stays
    before = host_traces(nrt)
    containers = [nrt.run(busybox, ["sleep", "60"], network="bridge", publish=[f"{8000 + i}"], detach=True)
                  for i in range(8)]
    addresses = {c.inspect()["NetworkSettings"]["IPAddress"] for c in containers}
    assert len(addresses) == 8
    ids = [c.id for c in containers]
    during = host_traces(nrt, ids)
    assert len(during["veths"]) == 8 and len(during["port rules"]) == 8 * 3 and len(during["leases"]) == 8
    for c in containers[:4]:
        c.stop(timeout=0)
    for c in containers[4:6]:
        c.kill(9)
        c.wait()
    for c in containers:
        c.remove(force=True, timeout=0)
    assert host_traces(nrt, ids) == before


def test_bad_network_input_is_refused_with_nothing_half_made(nrt, busybox):
    nrt.networks.create("first", subnet="10.77.210.0/24")
    with pytest.raises(InvalidArgument, match="already used by another network"):
        nrt.networks.create("second", subnet="10.77.210.128/25")
    with pytest.raises(InvalidArgument, match="invalid subnet"):
        nrt.networks.create("third", subnet="10.77.300.0/24")
    with pytest.raises(WorkbenchError, match="network not found"):
        nrt.create_container(busybox, ["true"], network="nope")
    with pytest.raises(InvalidArgument, match="not in any subnet"):
        nrt.create_container(busybox, ["true"], network="first", ip="10.9.9.9")
    with pytest.raises(InvalidArgument, match="invalid MAC"):
        nrt.create_container(busybox, ["true"], network="first", mac_address="zz:00")
    holder = socket.socket()
    holder.bind(("0.0.0.0", 0))
    taken = holder.getsockname()[1]
    try:
        c = nrt.create_container(busybox, ["sleep", "60"], network="first", publish=[f"{taken}:80"])
        with pytest.raises(WorkbenchError, match="already in use"):
            c.start()
    finally:
        holder.close()
    assert host_traces(nrt, [c.id])["veths"] == [] and host_traces(nrt)["netns files"] == []
    user = nrt.run(busybox, ["sleep", "60"], network="first", detach=True)
    with pytest.raises(WorkbenchError, match="network is being used"):
        nrt.networks.remove("first")
    user.remove(force=True, timeout=0)
    c.remove(force=True)
    nrt.networks.remove("first")


def test_what_a_crashed_setup_left_is_removed_with_the_container(nrt, busybox):
    from workbench.engine.network import bridge, netns
    from workbench.engine.network.attach import netns_path

    nrt.networks.default()
    before = host_traces(nrt)
    c = nrt.create_container(busybox, ["sleep", "60"], network="bridge")
    # what a process killed in the middle of setup leaves: a namespace and a veth, unrecorded
    netns.create(netns_path(c)).close()
    bridge.attach(netns_path(c), nrt.networks.default().bridge, bridge.host_ifname_for(c.id), "10.77.0.250", 24, None)
    c.start()  # setup clears them and plugs in again
    assert in_container(c, "ip", "-4", "addr", "show", "eth0").returncode == 0
    c.kill(9)
    c.wait()
    netns.create(netns_path(c) + "-x").close()  # not ours: stays
    bridge.attach(netns_path(c) + "-x", nrt.networks.default().bridge, bridge.host_ifname_for(c.id), "10.77.0.250",
                  24, None)
    try:
        c.remove()
        assert host_traces(nrt, [c.id])["veths"] == []
    finally:
        netns.remove(netns_path(c) + "-x")
    assert host_traces(nrt, [c.id]) == before


def test_connect_and_disconnect_a_running_and_a_stopped_container(nrt, busybox):
    nrt.networks.create("front", subnet="10.77.230.0/24")
    nrt.networks.create("back", subnet="10.77.231.0/24")
    app = nrt.run(busybox, ["sleep", "60"], network="front", name="app", detach=True)
    db = nrt.run(busybox, HTTPD, network="back", name="db", detach=True)
    app.connect("back", ip="10.77.231.77")
    assert "10.77.231.77/24" in in_container(app, "ip", "addr", "show", "eth1").stdout
    assert wait_for(app, ["wget", "-qO-", "http://db:8080/"]).stdout.startswith("hello from")
    assert "10.77.231.77\tapp" in in_container(db, "cat", "/etc/hosts").stdout
    with pytest.raises(WorkbenchError, match="already connected"):
        app.connect("back")
    app.disconnect("back")
    assert in_container(app, "ip", "addr", "show", "eth1").returncode != 0
    assert "app" not in in_container(db, "cat", "/etc/hosts").stdout
    assert nrt.networks.leases(app.id) == {"front": "10.77.230.2"}
    app.stop(timeout=0)
    app.connect("back")  # from the next start on
    app.start()
    assert "10.77.231." in in_container(app, "ip", "addr", "show", "eth1").stdout


def test_publish_all_maps_the_exposed_ports_to_free_host_ports(nrt, busybox):
    base = nrt.create_container(busybox, ["true"])
    image = base.commit("web-exposed", changes=["EXPOSE 8080/tcp"])
    c = nrt.run(image.id, HTTPD, network="bridge", publish_all=True, detach=True)
    (mapping,) = c.ports()
    assert (mapping["container_port"], mapping["protocol"]) == (8080, "tcp") and mapping["host_port"] > 0
    assert http_get(mapping["host_port"]).startswith("hello from")
