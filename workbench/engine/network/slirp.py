"""User-mode networking with slirp4netns: rootless Podman's default network.

slirp4netns runs on the host side, attached to the container's network namespace through a tap
device: the container gets 10.0.2.100/24, the gateway 10.0.2.2 and a DNS forwarder at 10.0.2.3
(or the same places in `cidr=`),
and reaches out through the user's own sockets (no privileges, no bridge, no firewall rules).
Published ports are host sockets slirp4netns listens on, added through its API socket. One
slirp4netns per container, started at init and killed at cleanup; it also exits on its own when
the namespace's last process is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument, WorkbenchError
from .ports import PortMapping

if TYPE_CHECKING:
    from ..container import Container

CIDR = "10.0.2.0/24"  # the container is .100 of it, the gateway (the host) .2, the DNS forwarder .3
MTU = 65520
# `--network slirp4netns:OPTS` as Podman's: option -> how its value is checked
_OPTIONS = {"allow_host_loopback": "bool", "enable_ipv6": "bool", "mtu": "int", "cidr": "cidr",
            "port_handler": ("slirp4netns", "rootlesskit")}
API_SOCKET = "slirp4netns.sock"  # in the container's run directory
READY_TIMEOUT = 10.0


def parse_options(text: str) -> dict[str, Any]:
    """`allow_host_loopback=true,mtu=1500,...` (Podman's slirp4netns options) as a checked dict."""
    import ipaddress

    options: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        kind = _OPTIONS.get(key)
        if kind is None or not sep:
            raise InvalidArgument(f'slirp4netns option "{item}": expected one of '
                                  f'{", ".join(k + "=..." for k in _OPTIONS)}')
        if kind == "bool" and value in ("true", "false"):
            options[key] = value == "true"
        elif kind == "int" and value.isdigit() and 68 <= int(value) <= 65521:
            options[key] = int(value)
        elif kind == "cidr":
            try:
                network = ipaddress.IPv4Network(value)
            except ValueError:
                network = None
            if network is None or network.prefixlen > 25:
                raise InvalidArgument(f'slirp4netns cidr "{value}": an IPv4 network of at least /25')
            options[key] = str(network)
        elif isinstance(kind, tuple) and value in kind:
            options[key] = value
        else:
            raise InvalidArgument(f'slirp4netns option "{item}": invalid value')
    return options


def addresses(options: dict[str, Any]) -> tuple[str, str, str]:
    """(container address, gateway, DNS forwarder) on the slirp4netns network of `options`."""
    import ipaddress

    network = ipaddress.IPv4Network(options.get("cidr", CIDR))
    return tuple(str(network.network_address + n) for n in (100, 2, 3))  # type: ignore[return-value]


def start(c: Container, netns: str, userns: str = "") -> int:
    """Start slirp4netns on namespace file `netns` (owned by user namespace `userns`, when not by
    ours), publish the container's ports; its pid."""
    binary = shutil.which("slirp4netns")
    if binary is None:
        raise WorkbenchError("slirp4netns not found: the slirp4netns network mode (rootless default) needs "
                             "package slirp4netns; or use --network none")
    os.makedirs(c.run_dir, mode=0o700, exist_ok=True)
    opts = c.config.network_options
    api = api_socket(c)
    for path in (api, _log_path(c)):
        _unlink(path)
    ready_r, ready_w = os.pipe()
    try:
        with open(_log_path(c), "wb") as log_file:
            proc = subprocess.Popen(
                [binary, "--configure", f"--mtu={opts.get('mtu', MTU)}", "--enable-sandbox",
                 *([] if opts.get("allow_host_loopback") else ["--disable-host-loopback"]),
                 *(["--enable-ipv6"] if opts.get("enable_ipv6") else []),
                 *([f"--cidr={opts['cidr']}"] if "cidr" in opts else []),
                 f"--api-socket={API_SOCKET}", f"--ready-fd={ready_w}", "--netns-type=path",
                 *([f"--userns-path={userns}"] if userns else []), netns, "tap0"],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, pass_fds=(ready_w,),
                cwd=c.run_dir,  # the socket's path is relative: a run root's full path may exceed 107 bytes
                start_new_session=True)  # outlives this process; killed by stop()
        os.close(ready_w)
        ready_w = -1
        ready = _read_with_timeout(ready_r, READY_TIMEOUT)
    finally:
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)
    if ready != b"1":
        _kill(proc.pid)
        proc.wait()
        raise WorkbenchError(f"slirp4netns did not set up the network of {c.id}: {_log_tail(c) or 'no output'}")
    proc.returncode = 0  # not ours to reap: Popen must not warn about a running child
    try:
        for port in (PortMapping(**p) for p in c.config.ports):
            publish(api, port, addresses(opts)[0])
    except BaseException:
        stop(proc.pid, c)
        raise
    return proc.pid


def publish(api: str, port: PortMapping, guest: str) -> None:
    """Forward host `port.host_ip:host_port` to the container (slirp4netns's add_hostfwd)."""
    request = {"execute": "add_hostfwd", "arguments": {
        "proto": port.protocol, "host_addr": port.host_ip or "0.0.0.0", "host_port": port.host_port,
        "guest_addr": guest, "guest_port": port.container_port}}
    answer = _call(api, request)
    if "error" in answer:
        desc = answer["error"].get("desc", answer["error"]) if isinstance(answer["error"], dict) else answer["error"]
        raise WorkbenchError(f"cannot publish {port.host_ip or '0.0.0.0'}:{port.host_port}/{port.protocol}: "
                             f"{desc}")


def stop(pid: int, c: Container) -> None:
    """Kill the container's slirp4netns (when it is still that process) and remove its files."""
    if pid and _is_slirp(pid):
        _kill(pid)
    for path in (api_socket(c), _log_path(c)):
        _unlink(path)


def api_socket(c: Container) -> str:
    return os.path.join(c.run_dir, API_SOCKET)


def _log_path(c: Container) -> str:
    return os.path.join(c.run_dir, "slirp4netns.log")


def _call(api: str, request: dict) -> dict:
    """One request on the API socket, reached through a directory fd (its full path may be too long)."""
    dir_fd = os.open(os.path.dirname(api), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(READY_TIMEOUT)
            sock.connect(f"/proc/self/fd/{dir_fd}/{os.path.basename(api)}")
            return _exchange(sock, request)
    finally:
        os.close(dir_fd)


def _exchange(sock: socket.socket, request: dict) -> dict:
    sock.sendall(json.dumps(request).encode())
    sock.shutdown(socket.SHUT_WR)
    chunks = []
    while chunk := sock.recv(4096):
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        return {"error": {"desc": b"".join(chunks).decode(errors="replace")}}


def _read_with_timeout(fd: int, timeout: float) -> bytes:
    import select

    readable, _, _ = select.select([fd], [], [], timeout)
    return os.read(fd, 1) if readable else b""


def _is_slirp(pid: int) -> bool:
    """Whether `pid` is a live slirp4netns (a zombie is dead: its sockets are closed)."""
    from ..exits import process_status

    status = process_status(pid)
    return status is not None and status[0] == "slirp4netns" and status[1] != "Z"


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)  # started by this process: reap it
    except ChildProcessError:  # another process's child (init reaps it): wait until its ports are free
        deadline = time.monotonic() + 2
        while _is_slirp(pid) and time.monotonic() < deadline:
            time.sleep(0.005)


def _log_tail(c: Container) -> str:
    try:
        with open(_log_path(c), "rb") as f:
            return f.read()[-500:].decode(errors="replace").strip()
    except OSError:
        return ""


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
