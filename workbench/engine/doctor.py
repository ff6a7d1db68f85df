"""What works on this machine: each capability probed for real, with the fix where it does not.

`checks()` runs quickly (a few ms per probe, no container started) and never raises: a probe
that cannot run reports why. Used by `workbench doctor`, `%ctr doctor` and the notebooks' first
cell, so that a Binder-like host without namespaces says so plainly instead of failing later.
"""

from __future__ import annotations

import os
import subprocess
from typing import Callable
from .records import NamedTuple

OK, WARN, MISSING = "ok", "warn", "missing"


class Check(NamedTuple):
    """One capability: its status (ok, warn, missing), what was found, and the fix."""

    name: str
    status: str
    detail: str
    fix: str = ""


def _run(argv: list[str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return proc.returncode, (proc.stdout or proc.stderr).strip()


def _which(name: str) -> str | None:
    from .oci.runc import which

    return which(name)


def privileges() -> Check:
    from .rootless import host_uid, is_rootless

    if not is_rootless():
        return Check("privileges", OK, "root: rootful mode (bridge networks, cgroup limits)")
    return Check("privileges", OK, f"uid {host_uid()}: rootless mode (a store of your own, slirp4netns "
                 "networking; no cgroup limits on cgroup v1)")


def rootless_check() -> Check:
    """What rootless mode needs: subordinate ids and newuidmap, catatonit, slirp4netns, /dev/net/tun."""
    from .rootless import host_uid, is_rootless, subordinate_ids

    if not is_rootless():
        return Check("rootless", OK, "not used (running as root)")
    if not _which("catatonit"):
        return Check("rootless", MISSING, "no catatonit: the pause process that holds the user namespace",
                     "apt-get install catatonit")
    uid = host_uid()
    has_ids = subordinate_ids("/etc/subuid", uid) and subordinate_ids("/etc/subgid", uid)
    if has_ids and not (_which("newuidmap") and _which("newgidmap")):
        return Check("rootless", MISSING, "subordinate ids but no newuidmap/newgidmap to map them",
                     "apt-get install uidmap")
    problems, fixes = [], []
    if not has_ids:
        problems.append("no subordinate ids: one uid and gid only (images owned by other ids fail)")
        fixes.append(f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {_user_name(uid)}")
    if not _which("slirp4netns"):
        problems.append("no slirp4netns: only --network none")
        fixes.append("apt-get install slirp4netns")
    elif not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        problems.append("/dev/net/tun is not usable by you: only --network none")
        fixes.append("chmod 0666 /dev/net/tun (as root; Debian's default)")
    if problems:
        return Check("rootless", WARN, "; ".join(problems), "; ".join(fixes))
    return Check("rootless", OK, "subordinate ids mapped by newuidmap, catatonit, slirp4netns")


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def user_namespaces() -> Check:
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            allowed = int(f.read())
    except (OSError, ValueError):
        allowed = -1
    if allowed == 0:
        return Check("user namespaces", MISSING, "user.max_user_namespaces is 0",
                     "sysctl -w user.max_user_namespaces=15000")
    code, out = _run(["unshare", "--user", "--map-root-user", "true"])
    if code != 0:
        return Check("user namespaces", WARN, f"unshare --user failed: {out[-200:]}",
                     "allow unprivileged user namespaces (kernel.unprivileged_userns_clone=1), or run as root")
    return Check("user namespaces", OK, "unshare --user works")


def namespaces() -> Check:
    """The namespaces every container needs (pid, mount, ipc, uts, net), created for real."""
    as_user = ["--user", "--map-root-user"] if os.geteuid() != 0 else []
    code, out = _run(["unshare", *as_user, "--pid", "--mount", "--ipc", "--uts", "--net", "--fork", "true"])
    if code != 0:
        return Check("namespaces", MISSING, f"cannot create namespaces: {out[-200:]}",
                     "this host (a Binder-like sandbox?) forbids namespaces: containers cannot run here")
    return Check("namespaces", OK, "pid, mount, ipc, uts and network namespaces can be created")


def overlayfs() -> Check:
    try:
        with open("/proc/filesystems") as f:
            known = "overlay" in f.read().split()
    except OSError:
        known = False
    if not known and _run(["modprobe", "overlay"])[0] != 0:
        return Check("overlayfs", MISSING, "the kernel has no overlay file system", "modprobe overlay")
    if os.geteuid() != 0:
        return Check("overlayfs", OK, "overlay is in /proc/filesystems (mount not probed without root)")
    import tempfile

    from .storage.layers import mount, unmount

    with tempfile.TemporaryDirectory(prefix="wb-doctor-") as tmp:
        lower, upper, work, merged = (os.path.join(tmp, d) for d in ("l", "u", "w", "m"))
        for d in (lower, upper, work, merged):
            os.mkdir(d)
        try:
            mount("overlay", merged, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}")
        except OSError as exc:
            return Check("overlayfs", MISSING, f"overlay mount failed: {exc}",
                         "use a kernel with overlayfs, and a graph root on ext4/xfs/btrfs (not overlay itself)")
        unmount(merged)
    return Check("overlayfs", OK, "an overlay mount works")


def cgroups_check() -> Check:
    from . import cgroups

    if not cgroups.containers_have_cgroups():
        return Check("cgroups", WARN, f"{cgroups.layout()}: rootless containers get no cgroup of their own: "
                     "--memory and the like are ignored, pause is refused, stats come from /proc",
                     "run as root for limits")
    layout = cgroups.layout()
    if layout == "v2":
        try:
            with open(os.path.join(cgroups.ROOT, "cgroup.controllers")) as f:
                controllers = f.read().split()
        except OSError:
            controllers = []
    else:
        controllers = cgroups.v1_controllers()
    wanted = {"memory", "pids", "cpu"}
    missing = sorted(wanted - set(controllers))
    detail = f"{layout} ({', '.join(sorted(controllers)) or 'no controllers'})"
    if missing:
        return Check("cgroups", WARN, f"{detail}; missing {', '.join(missing)}: those limits and stats are unavailable",
                     "boot with the controllers enabled (e.g. cgroup_enable=memory)")
    return Check("cgroups", OK, detail)


def oci_runtime() -> Check:
    from .errors import WorkbenchError
    from .oci.runc import detect_runtime

    try:
        path = detect_runtime()
    except WorkbenchError as exc:
        return Check("OCI runtime", MISSING, str(exc), "apt-get install runc")
    code, out = _run([path, "--version"])
    if code != 0:
        return Check("OCI runtime", MISSING, f"{path} does not run: {out[-200:]}", "apt-get install --reinstall runc")
    return Check("OCI runtime", OK, f"{path}: {out.splitlines()[0]}")


def conmon() -> Check:
    path = _which("conmon")
    if not path:
        return Check("conmon", MISSING, "conmon not found", "apt-get install conmon")
    code, out = _run([path, "--version"])
    if code != 0:
        return Check("conmon", MISSING, f"{path} does not run: {out[-200:]}", "apt-get install --reinstall conmon")
    return Check("conmon", OK, f"{path}: {out.splitlines()[0]}")


def networking() -> Check:
    from .rootless import is_rootless

    if is_rootless():
        return Check("networking", OK, "rootless: slirp4netns (outbound access, published ports); bridge "
                     "networks need root")
    missing = [tool for tool in ("nft",) if not _which(tool)]
    try:
        import importlib.util

        pyroute2 = importlib.util.find_spec("pyroute2") is not None
    except ValueError:
        pyroute2 = False
    if not pyroute2:
        missing.append("pyroute2 (Python)")
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            forwarding = f.read().strip() == "1"
    except OSError:
        forwarding = False
    if missing:
        return Check("networking", WARN, f"missing {', '.join(missing)}: only --network none and host work",
                     "apt-get install nftables; pip install pyroute2")
    note = "" if forwarding else " (IPv4 forwarding is off; the first bridge network turns it on)"
    return Check("networking", OK, f"nft and pyroute2 found: bridge networks and published ports{note}")


def base_images() -> Check:
    busybox = os.path.exists("/bin/busybox") or _which("busybox")
    mmdebstrap = _which("mmdebstrap")
    if not busybox:
        return Check("base images", WARN, "no busybox: `image bootstrap busybox` cannot build an image",
                     "apt-get install busybox-static")
    detail = "busybox found" + (", mmdebstrap found (Debian images)" if mmdebstrap else "")
    return Check("base images", OK, detail, "" if mmdebstrap else "apt-get install mmdebstrap (Debian images)")


PROBES: tuple[Callable[[], Check], ...] = (privileges, rootless_check, user_namespaces, namespaces, overlayfs,
                                           cgroups_check, oci_runtime, conmon, networking, base_images)


def checks() -> list[Check]:
    """Every probe's answer; a probe that fails unexpectedly reports that instead of raising."""
    out = []
    for probe in PROBES:
        try:
            out.append(probe())
        except Exception as exc:  # a probe must never take the report down with it
            out.append(Check(probe.__name__.replace("_check", "").replace("_", " "), WARN,
                             f"probe failed: {type(exc).__name__}: {exc}"))
    return out


def containers_can_run(results: list[Check]) -> bool:
    """Whether the essentials (namespaces, overlay, runtime, conmon) are all there."""
    essential = {"namespaces", "overlayfs", "OCI runtime", "conmon", "rootless"}
    return all(c.status != MISSING for c in results if c.name in essential)
