"""Bridges and veth pairs through netlink (pyroute2): the links of bridge networks.

A container is plugged into a bridge by a veth pair: the host end is enslaved to the bridge,
the other end moves into the container's namespace as eth<N> with the leased address. pyroute2
is imported only here, inside the functions (it costs ~0.3 s to import).
"""

from __future__ import annotations

import errno
import functools
import importlib
import importlib.util
import os
import socket
import sys
import types
from typing import Any, Callable, TypeVar

from ..errors import WorkbenchError

HOST_PREFIX = "wb"  # host ends of veths: wb<8 hex of the container id><index>


def host_ifname_for(container_id: str, index: int = 0) -> str:
    """The host-side veth name (at most 15 characters); two containers whose IDs share their first
    8 hex digits cannot be plugged in at once: `attach` then says the name is taken."""
    return f"{HOST_PREFIX}{container_id[:8]}{index}"


F = TypeVar("F", bound=Callable[..., Any])


def _off_the_event_loop(fn: F) -> F:
    """Run `fn` on a thread of its own when the caller's thread runs an asyncio loop (a Jupyter
    kernel's main thread does): pyroute2 drives its own loop with run_until_complete, which a
    running loop refuses."""
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop running here: the usual case (CLI, scripts)
            return fn(*args, **kwargs)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-netlink") as pool:
            return pool.submit(fn, *args, **kwargs).result()
    return call  # type: ignore[return-value]


def _iproute(**kwargs: Any) -> Any:
    """An IPRoute: the host's, or `fileno=` a netlink socket's (in another namespace)."""
    return _iproute_class()(**kwargs)


def _iproute_class() -> Any:
    """pyroute2's IPRoute. Its package `__init__` imports every protocol pyroute2 has (~0.1 s of a
    CLI `run`): unless pyroute2 is already loaded, the one module needed is imported with a bare
    package in `sys.modules`, which is taken out again so that a later `import pyroute2` (in a
    notebook, say) runs the real `__init__` and gets the same submodules."""
    loaded = sys.modules.get("pyroute2.iproute.linux")
    if loaded is None and "pyroute2" in sys.modules:
        from pyroute2 import IPRoute

        return IPRoute
    if loaded is None:
        spec = importlib.util.find_spec("pyroute2")
        if spec is None or spec.submodule_search_locations is None:
            raise WorkbenchError("pyroute2 is not installed: pip install pyroute2 (bridge networking needs it)")
        bare = types.ModuleType("pyroute2")
        bare.__path__ = list(spec.submodule_search_locations)
        bare.__spec__ = spec
        sys.modules["pyroute2"] = bare
        try:
            loaded = importlib.import_module("pyroute2.iproute.linux")
        finally:
            if sys.modules.get("pyroute2") is bare:
                del sys.modules["pyroute2"]
    return loaded.IPRoute


def _netlink_error(exc: Exception) -> int:
    return getattr(exc, "code", 0) or (exc.errno if isinstance(exc, OSError) else 0) or 0


@_off_the_event_loop
def ensure_bridge(name: str, gateway: str, prefix: int, mtu: int = 1500) -> None:
    """The bridge `name` exists, holds `gateway/prefix` and is up; idempotent, and safe when
    processes race to make the same bridge (EEXIST is success)."""
    with _iproute() as ipr:
        try:
            ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
        except Exception as exc:
            if _netlink_error(exc) != errno.EEXIST:
                raise WorkbenchError(f"creating bridge {name}: {exc}") from None
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise WorkbenchError(f"bridge {name} vanished while being set up (removed by another process?)")
        link = ipr.get_links(found[0])[0]
        kind = (link.get_attr("IFLA_LINKINFO") or link).get_attr("IFLA_INFO_KIND")
        if kind != "bridge":
            raise WorkbenchError(f"cannot use {name} as a bridge: the host has a {kind or 'non-bridge'} link "
                                 "of that name")
        try:
            ipr.addr("add", index=found[0], address=gateway, prefixlen=prefix)
        except Exception as exc:
            if _netlink_error(exc) != errno.EEXIST:
                raise WorkbenchError(f"giving bridge {name} address {gateway}/{prefix}: {exc}") from None
        try:
            ipr.link("set", index=found[0], state="up")
        except Exception as exc:
            raise WorkbenchError(f"setting bridge {name} up: {exc}") from None


@_off_the_event_loop
def remove_bridge(name: str) -> None:
    """Delete the bridge; a missing one is fine."""
    _delete_link(name, "bridge")


def _delete_link(name: str, what: str) -> None:
    with _iproute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if found:
            try:
                ipr.link("del", index=found[0])
            except Exception as exc:
                if _netlink_error(exc) != errno.ENODEV:
                    raise WorkbenchError(f"removing {what} {name}: {exc}") from None


@_off_the_event_loop
def attach(netns_path: str, bridge: str, host_ifname: str, address: str, prefix: int, gateway: str | None,
           mac: str | None = None, mtu: int = 1500, ifname: str = "eth0",
           inside: socket.socket | None = None) -> str:
    """Plug the namespace at `netns_path` into `bridge` as `ifname` with `address/prefix`, lo up, and
    a default route via `gateway` (None: an internal network, no way out). Returns the MAC.

    The veth's inner end is made inside the namespace at once: moving a link between namespaces
    waits for an RCU grace period (~15 ms here). `inside` is a netlink socket in the namespace
    (netns.create's); without one, one is opened."""
    with _iproute() as ipr:
        found = ipr.link_lookup(ifname=bridge)
        if not found:
            raise WorkbenchError(f"cannot attach to bridge {bridge}: no such bridge on the host")
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise WorkbenchError(f"opening network namespace {netns_path}: {exc.strerror}") from None
        peer = {"ifname": ifname, "net_ns_fd": fd, "mtu": mtu, **({"address": mac} if mac else {})}
        try:
            ipr.link("add", ifname=host_ifname, kind="veth", mtu=mtu, master=found[0], state="up", peer=peer)
        except Exception as exc:
            taken = " (the name is taken: another container's ID starts alike?)" if \
                _netlink_error(exc) == errno.EEXIST else ""
            raise WorkbenchError(f"creating veth {host_ifname}: {exc}{taken}") from None
        finally:
            os.close(fd)
    try:
        if inside is not None:
            return _configure_inside(inside, ifname, address, prefix, gateway)
        from . import netns

        with netns.route_socket(netns_path) as opened:
            return _configure_inside(opened, ifname, address, prefix, gateway)
    except BaseException as exc:
        detach(host_ifname)
        if isinstance(exc, WorkbenchError) or not isinstance(exc, Exception):
            raise
        raise WorkbenchError(f"plugging {netns_path} into bridge {bridge}: {exc}") from None


_LOOPBACK_INDEX = 1  # every network namespace registers lo first


def _configure_inside(inside: socket.socket, ifname: str, address: str, prefix: int, gateway: str | None) -> str:
    """Address, up, lo up and the default route, through a netlink socket in the namespace; the MAC."""
    with _iproute(fileno=os.dup(inside.fileno())) as ns:  # pyroute2 takes over (and closes) the fd given
        (link,) = ns.link("get", ifname=ifname)
        index = link["index"]
        ns.addr("add", index=index, address=address, prefixlen=prefix)
        ns.link("set", index=index, state="up")
        ns.link("set", index=_LOOPBACK_INDEX, state="up")
        if gateway:
            ns.route("add", dst="0.0.0.0/0", gateway=gateway)
        return link.get_attr("IFLA_ADDRESS")


@_off_the_event_loop
def detach(host_ifname: str) -> None:
    """Delete a container's veth (both ends); a missing one is fine."""
    _delete_link(host_ifname, "veth")


@_off_the_event_loop
def list_links(prefix: str) -> list[str]:
    """Names of the host's links that start with `prefix`."""
    try:
        return sorted(name for name in os.listdir("/sys/class/net") if name.startswith(prefix))
    except OSError:
        return []
