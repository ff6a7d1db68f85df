"""What `run`/`create` may change about the container's process and its confinement, as Podman:
`--security-opt` (no-new-privileges, seccomp=unconfined|PROFILE.json, mask=, unmask=, and the
LSM options that mean nothing without SELinux or AppArmor), `--sysctl`, `--umask`,
`--group-add`, `--tz` and `--device`. Parsed and checked at create time; applied to the OCI
spec at init.
"""

from __future__ import annotations

import json
import os
import re

from .errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

ZONEINFO = "/usr/share/zoneinfo"

# Namespaced sysctls (runc's list): what a container may set in namespaces of its own.
_IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                          "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})
_UTS_SYSCTLS = frozenset({"kernel.domainname", "kernel.hostname"})


def security_opts(options: Sequence[str]) -> dict[str, Any]:
    """`--security-opt` values as config fields: no_new_privileges, seccomp ("" the default,
    "unconfined", or a profile's JSON text), mask and unmask (lists of paths; unmask may be ALL)."""
    out: dict[str, Any] = {"no_new_privileges": False, "seccomp": "", "mask": [], "unmask": []}
    for option in options:
        key, sep, value = option.partition("=") if "=" in option else option.partition(":")
        if key == "no-new-privileges":
            if value not in ("", "true", "false"):
                raise InvalidArgument(f'invalid --security-opt "{option}": no-new-privileges takes true or false')
            out["no_new_privileges"] = value != "false"
        elif key == "seccomp" and sep:
            out["seccomp"] = "unconfined" if value == "unconfined" else _seccomp_profile(value)
        elif key in ("mask", "unmask") and sep:
            paths = value.split(":")
            if not all(p == "ALL" and key == "unmask" or p.startswith("/") for p in paths):
                raise InvalidArgument(f'invalid --security-opt "{option}": {key} takes absolute paths separated '
                                      f'by ":"{" or ALL" if key == "unmask" else ""}')
            out[key] += paths
        elif (key == "apparmor" and value == "unconfined") or key == "label":
            continue  # no AppArmor or SELinux confinement here to change, as Podman on such a host
        else:
            raise InvalidArgument(f'invalid --security-opt "{option}": use no-new-privileges, seccomp=unconfined, '
                                  "seccomp=PROFILE.json, mask=PATHS, unmask=PATHS|ALL, apparmor=unconfined or label=...")
    return out


def _seccomp_profile(path: str) -> str:
    """A seccomp profile file (the containers/Docker JSON format, or OCI's), checked: its text."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(4 << 20)
        doc = json.loads(text)
    except OSError as exc:
        raise InvalidArgument(f"opening seccomp profile {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"seccomp profile {path} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not str(doc.get("defaultAction", "")).startswith("SCMP_ACT_") or not isinstance(
            doc.get("syscalls") or [], list) or not all(
            isinstance(rule, dict) and isinstance(rule.get("names", [rule.get("name")]), list)
            and str(rule.get("action", "")).startswith("SCMP_ACT_") for rule in doc.get("syscalls") or []):
        raise InvalidArgument(f"seccomp profile {path}: needs a defaultAction and syscalls with names and an action "
                              "(SCMP_ACT_...)")
    return text


def oci_seccomp(text: str, capabilities: Sequence[str]) -> dict[str, Any]:
    """A profile as the OCI spec's linux.seccomp: rules kept when their includes/excludes (caps,
    arches) hold for this container and machine; Docker's archMap becomes `architectures`."""
    from .oci.seccomp import runnable_arches

    doc = json.loads(text)
    arch = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}.get(os.uname().machine, "")
    caps = set(capabilities)
    arch_name = arch.removeprefix("SCMP_ARCH_").lower().replace("x86_64", "amd64").replace("aarch64", "arm64")
    arches = doc.get("architectures") or [a for entry in doc.get("archMap") or []
                                           if entry.get("architecture") == arch
                                           for a in [entry["architecture"], *entry.get("subArchitectures", [])]]

    def applies(rule: dict[str, Any]) -> bool:
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        return (all(c in caps for c in inc.get("caps", [])) and (not inc.get("arches") or arch_name in inc["arches"])
                and not any(c in caps for c in exc.get("caps", [])) and arch_name not in exc.get("arches", []))
    syscalls = []
    for rule in doc.get("syscalls") or []:
        if applies(rule):
            names = rule.get("names") or [rule["name"]]
            syscalls.append({"names": names, "action": rule["action"],
                             **{k: rule[k] for k in ("args", "errnoRet") if rule.get(k)}})
    profile: dict[str, Any] = {"defaultAction": doc["defaultAction"], "syscalls": syscalls}
    if arches:
        profile["architectures"] = runnable_arches(list(arches))
    if doc.get("defaultErrnoRet") is not None:
        profile["defaultErrnoRet"] = doc["defaultErrnoRet"]
    return profile


def sysctls(values: Sequence[str], *, own_network: bool, own_ipc: bool, own_uts: bool) -> dict[str, str]:
    """`--sysctl KEY=VALUE`: only sysctls of namespaces the container has of its own."""
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[a-z0-9_.\-/]+", key):
            raise InvalidArgument(f'invalid --sysctl "{item}": use KEY=VALUE')
        key = key.replace("/", ".")
        if key.startswith("net."):
            allowed, space = own_network, "network"
        elif key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            allowed, space = own_ipc, "IPC"
        elif key in _UTS_SYSCTLS:
            allowed, space = own_uts, "UTS"
        else:
            raise InvalidArgument(f'sysctl "{key}" is not allowed: only namespaced ones (net.*, kernel.shm*, '
                                  "kernel.msg*, kernel.sem, fs.mqueue.*, kernel.hostname, kernel.domainname)")
        if not allowed:
            raise InvalidArgument(f'sysctl "{key}" is not allowed: the container shares the {space} namespace '
                                  "of the host or of another container")
        out[key] = value
    return out


def umask(value: str | None) -> int:
    """`--umask`: an octal mask (Podman's default 0022)."""
    if value is None:
        return 0o022
    if not re.fullmatch(r"[0-7]{1,4}", value):
        raise InvalidArgument(f'invalid --umask "{value}": an octal mask such as 0022 or 077')
    return int(value, 8)


def timezone(value: str | None) -> str:
    """`--tz`: "local" (the host's) or a zone of the host's zoneinfo ("Europe/Berlin", "UTC"): the
    host file to mount at /etc/localtime; "" for none."""
    if not value:
        return ""
    if value == "local":
        path = os.path.realpath("/etc/localtime")
    else:
        if value.startswith("/") or ".." in value.split("/") or not re.fullmatch(r"[A-Za-z0-9_+\-/]+", value):
            raise InvalidArgument(f'invalid --tz "{value}": a zone such as Europe/Berlin or UTC, or local')
        path = os.path.join(ZONEINFO, value)
    if not os.path.isfile(path):
        raise InvalidArgument(f'--tz "{value}": no such time zone on this host ({path})')
    return path


def devices(specs: Sequence[str]) -> list[dict[str, str]]:
    """`--device HOST[:CONTAINER][:PERMISSIONS]` (permissions of r, w, m; rwm by default): a host
    device node, or a directory of them, to have in the container."""
    out = []
    for spec in specs:
        host, _, rest = spec.partition(":")
        path, _, perms = rest.partition(":")
        if path and not path.startswith("/") and set(path) <= set("rwm"):  # HOST:PERMISSIONS
            path, perms = "", path
        perms = perms or "rwm"
        if not set(perms) <= set("rwm") or not host.startswith("/") or (path and not path.startswith("/")):
            raise InvalidArgument(f'invalid --device "{spec}": use HOST-PATH[:CONTAINER-PATH][:PERMISSIONS] with '
                                  "absolute paths and permissions of r, w and m")
        from .oci.spec import host_devices

        if not host_devices(host):
            raise InvalidArgument(f'--device "{spec}": {host} is not a device (nor a directory of devices) on '
                                  "this host")
        out.append({"host": host, "path": path or host, "perms": perms})
    return out


def oci_devices(wanted: Sequence[dict[str, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """At init: the OCI `linux.devices` entries and the cgroup rules that allow them, from the
    host's nodes as they are now (numbers may change across reboots)."""
    from .oci.spec import host_devices

    nodes, rules = [], []
    for device in wanted:
        for node in host_devices(device["host"]):
            nodes.append({**node, "path": device["path"] + node["path"][len(device["host"]):]})
            rules.append({"allow": True, "type": node["type"], "major": node["major"], "minor": node["minor"],
                          "access": device["perms"]})
    return nodes, rules


def group_ids(rootfs: str, groups: Sequence[str]) -> list[int]:
    """`--group-add` groups (gids, or names from the container's /etc/group) as gids."""
    from .errors import CannotRun
    from .users import read_account_file

    table = None
    out = []
    for group in groups:
        if group.isdigit():
            out.append(int(group))
            continue
        if table is None:
            table = read_account_file(rootfs, "/etc/group")
        match = next((g for g in table if len(g) >= 3 and g[0] == group and g[2].isdigit()), None)
        if match is None:
            raise CannotRun(f"unable to find group {group}: no matching entries in group file")
        out.append(int(match[2]))
    return out
