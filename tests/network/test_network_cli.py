"""`workbench network ...`, `port` and the network flags of `run`, as Podman prints them."""

from __future__ import annotations

import json
import socket


def test_network_commands_and_published_ports(cli, nrt, busybox_tar):
    assert cli("import", busybox_tar, "busybox").returncode == 0
    proc = cli("network", "create", "--subnet", "10.77.220.0/24", "--label", "team=ml", "results")
    assert (proc.returncode, proc.stdout) == (0, "results\n"), proc.stderr
    assert cli("network", "ls", "--format", "{{.Name}}").stdout.split() == ["results", "workbench"]
    (doc,) = json.loads(cli("network", "inspect", "results").stdout)
    assert doc["subnets"] == [{"subnet": "10.77.220.0/24", "gateway": "10.77.220.1"}]
    assert doc["labels"] == {"team": "ml"} and doc["driver"] == "bridge"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = cli("run", "-d", "--name", "web", "--network", "results", "-p", f"{port}:80", "busybox", "sleep", "60")
    assert proc.returncode == 0, proc.stderr
    assert cli("port", "web").stdout == f"80/tcp -> 0.0.0.0:{port}\n"
    assert cli("port", "web", "80").stdout == f"0.0.0.0:{port}\n"  # one port asked for: where it is published
    web_id = cli("inspect", "-f", "{{.Id}}", "web").stdout.strip()
    assert cli("port", "--all").stdout == f"{web_id[:12]}\t80/tcp -> 0.0.0.0:{port}\n"
    assert cli("ps", "--format", "{{.Names}} {{.Ports}}").stdout == f"web 0.0.0.0:{port}->80/tcp\n"
    assert cli("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web").stdout == "10.77.220.2\n"
    (doc,) = json.loads(cli("network", "inspect", "results").stdout)
    assert list(doc["containers"].values())[0]["name"] == "web"
    assert cli("network", "connect", "workbench", "web").returncode == 0
    assert "eth1" in cli("exec", "web", "ip", "-o", "addr").stdout
    proc = cli("network", "connect", "workbench", "web")
    assert proc.returncode == 125 and "already connected to network workbench" in proc.stderr
    assert cli("network", "disconnect", "workbench", "web").returncode == 0
    assert "eth1" not in cli("exec", "web", "ip", "-o", "addr").stdout
    cli("network", "create", "spare")
    proc = cli("network", "rm", "nosuch", "spare")  # as podman network rm: each name on its own
    assert (proc.returncode, proc.stdout) == (1, "spare\n")
    assert proc.stderr == "Error: unable to find network with name or ID nosuch: network not found\n"
    proc = cli("network", "rm", "results")
    assert proc.returncode == 2 and "network is being used" in proc.stderr
    assert cli("network", "rm", "-f", "-t", "0", "results").stdout == "results\n"
    assert cli("ps", "-aq").stdout == ""
    proc = cli("run", "--rm", "--network", "nope", "busybox", "true")
    assert (proc.returncode, proc.stderr) == (
        125, "Error: unable to find network with name or ID nope: network not found\n")
    proc = cli("network", "create", "--subnet", "10.77.300.0/24", "bad")
    assert proc.returncode == 125 and "invalid subnet" in proc.stderr
    assert cli("network", "create", "spare").returncode == 0
    assert cli("network", "prune", "-f").stdout == "spare\n"
    proc = cli("run", "--rm", "--network", "bridge", "--hostname", "lab", "busybox", "sh", "-c",
               "hostname; ip -4 addr show eth0 | grep -c inet")
    assert (proc.returncode, proc.stdout) == (0, "lab\n1\n"), proc.stderr
