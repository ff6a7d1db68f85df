"""A container's own mounts: `-v/--volume`, `--mount`, `--tmpfs` and `--read-only`, in Podman
4.3's spellings, checked once at create and kept in the config as OCI mounts.

Bind mounts take a host path (absolute, or relative from "."), which must exist: it is the user's
own directory, mounted by runc, which resolves the destination inside the root file system
safely. A volume mount (`-v NAME:/path`, or `-v /path` for an anonymous one) is a bind mount of a
volume's directory: `parse` leaves its `source` empty with the name in `volume` ("" when
anonymous), and create fills it in (volumes.py).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Sequence

from .errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Options of a tmpfs Podman adds after the user's (`--tmpfs`, `--read-only`'s /run, /tmp, /var/tmp).
TMPFS_DEFAULTS = ("rw", "rprivate", "nosuid", "nodev", "tmpcopyup")
#: What `--read-only` leaves writable, as Podman's --read-only-tmpfs (on by default).
READ_ONLY_TMPFS = ("/run", "/tmp", "/var/tmp")

_PROPAGATION = {"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"}
_FLAG_PAIRS = {"nosuid": "suid", "nodev": "dev", "noexec": "exec"}
_FLAGS = set(_FLAG_PAIRS) | set(_FLAG_PAIRS.values())
_SIZE = re.compile(r"^[0-9]+[kmgKMG%]?$")


def parse(volumes: Sequence[str] = (), mounts: Sequence[str] = (), tmpfs: Sequence[str] = (),
          read_only: bool = False) -> list[dict[str, Any]]:
    """The OCI mounts for a container's flags; InvalidArgument names the bad one."""
    out = [_volume(spec) for spec in volumes] + [_mount(spec) for spec in mounts] + [_tmpfs(spec) for spec in tmpfs]
    seen: set[str] = set()
    for m in out:
        if m["destination"] in seen:
            raise InvalidArgument(f"{m['destination']}: duplicate mount destination")
        seen.add(m["destination"])
    if read_only:
        out += [{"destination": d, "type": "tmpfs", "source": "tmpfs", "options": list(TMPFS_DEFAULTS)}
                for d in READ_ONLY_TMPFS if d not in seen]
    return out


def shared(spec: str, options: str, mounts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`--volumes-from NAME[:OPTIONS]`: another container's bind mounts and volumes (not its
    tmpfs mounts) at the same destinations, in their own mode or the `ro`/`rw` of `options`."""
    mode = ""
    for option in filter(None, options.split(",")):
        if option in ("ro", "rw"):
            if mode:
                raise InvalidArgument(f'"{spec}": cannot set ro or rw options more than once')
            mode = option
        elif option not in ("z", "Z"):  # SELinux relabelling: nothing to do where SELinux is off
            raise InvalidArgument(f'"{spec}": invalid option "{option}": --volumes-from takes ro, rw and z')
    out = []
    for m in mounts:
        if m["type"] == "bind":
            options_list = [mode if mode and o in ("ro", "rw") else o for o in m["options"]]
            out.append({**m, "options": options_list})
    return out


def merged(defaults: Iterable[dict[str, Any]], own: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The spec's mounts: the defaults a user mount does not replace, then the user's, parents
    before what is mounted inside them (a stable sort on the destination's depth, as Podman)."""
    own = list(own)
    replaced = {m["destination"] for m in own}
    kept = [m for m in defaults if m["destination"] not in replaced]
    return sorted(kept + own, key=lambda m: m["destination"].rstrip("/").count("/"))


def inspect_entries(own: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Podman's inspect `Mounts`: bind mounts and volumes, with RW and Propagation split out."""
    entries = []
    for m in own:
        if m["type"] != "bind":
            continue
        options = [o for o in m["options"] if o not in ("ro", "rw") and o not in _PROPAGATION]
        propagation = next((o for o in m["options"] if o in _PROPAGATION), "rprivate")
        kind = {"Type": "volume", "Name": m["volume"]} if "volume" in m else {"Type": "bind"}
        entries.append({**kind, "Source": m["source"], "Destination": m["destination"],
                        "Driver": "local" if "volume" in m else "", "Mode": "", "Options": options,
                        "RW": "ro" not in m["options"], "Propagation": propagation})
    return entries


def host_config(own: Iterable[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """Podman's HostConfig.Binds ("src:dst:options") and HostConfig.Tmpfs (dst -> options)."""
    binds, tmpfs = [], {}
    for m in own:
        if m["type"] == "bind":
            binds.append(f"{m.get('volume') or m['source']}:{m['destination']}:{','.join(m['options'])}")
        else:
            tmpfs[m["destination"]] = ",".join(m["options"])
    return binds, tmpfs


# -- the three spellings ---------------------------------------------------------------------------
def _volume(spec: str) -> dict[str, Any]:
    """`-v SRC:DST[:OPTIONS]`, `-v NAME:DST[:OPTIONS]` or `-v DST` (an anonymous volume)."""
    parts = spec.split(":")
    if not parts[0]:
        raise InvalidArgument(f'incorrect volume format "{spec}": use SRC:DST[:OPTIONS]')
    if len(parts) == 1:
        return _volume_mount(spec, "", parts[0], [])
    if len(parts) > 3:
        raise InvalidArgument(f'incorrect volume format "{spec}": use SRC:DST[:OPTIONS]')
    source, destination = parts[0], parts[1]
    options = [o for o in parts[2].split(",") if o] if len(parts) == 3 else []
    if not source.startswith(("/", ".")):
        return _volume_mount(spec, source, destination, options)
    return _bind(spec, source, destination, options)


def _mount(spec: str) -> dict[str, Any]:
    """`--mount type=bind|tmpfs,source=...,destination=...,...`."""
    fields: dict[str, str] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not key:
            continue
        if key in fields:
            raise InvalidArgument(f'--mount "{spec}": {key} is given twice')
        fields[key] = value if sep else "true"
    kind = fields.pop("type", "")
    destination = next((fields.pop(k) for k in ("destination", "dst", "target") if k in fields), "")
    source = next((fields.pop(k) for k in ("source", "src") if k in fields), "")
    if kind in ("image", "devpts", "glob", "ramfs"):
        raise InvalidArgument(f'--mount "{spec}": type={kind} is not supported yet: use bind, volume or tmpfs')
    if kind not in _MOUNT_KEYS:
        raise InvalidArgument(f'--mount "{spec}": give type=bind, type=volume or type=tmpfs')
    options = []
    for key, value in fields.items():
        if key in ("ro", "readonly"):
            options.append("ro" if _true(spec, key, value) else "rw")
        elif key in _MOUNT_KEYS[kind]:
            option = _MOUNT_KEYS[kind][key](spec, key, value)
            if option:
                options.append(option)
        else:
            raise InvalidArgument(f'--mount "{spec}": unknown {kind} option "{key}"')
    if kind == "bind":
        return _bind(spec, source, destination, options)
    if kind == "volume":
        return _volume_mount(spec, source, destination, options)
    if source:
        raise InvalidArgument(f'--mount "{spec}": a tmpfs has no source')
    return _tmpfs_mount(spec, destination, options)


#: The `--mount` keys of each type besides ro/readonly, as the -v/--tmpfs option each stands for
#: ("" when accepted with nothing to do).
_MOUNT_KEYS: dict[str, dict[str, Any]] = {
    "bind": {"bind-propagation": lambda spec, key, value: value,
             "relabel": lambda spec, key, value: ""},  # no SELinux to relabel for, as Podman there
    "tmpfs": {"tmpfs-size": lambda spec, key, value: f"size={value}",
              "tmpfs-mode": lambda spec, key, value: f"mode={value}"},
    "volume": {name: lambda spec, key, value: "nocopy" if _true(spec, key, value) else ""
               for name in ("volume-nocopy", "nocopy")},
}


def _tmpfs(spec: str) -> dict[str, Any]:
    """`--tmpfs DST[:OPTIONS]`."""
    destination, _, options = spec.partition(":")
    return _tmpfs_mount(spec, destination, [o for o in options.split(",") if o])


# -- checks ----------------------------------------------------------------------------------------
def _bind(spec: str, source: str, destination: str, options: list[str]) -> dict[str, Any]:
    if not source:
        raise InvalidArgument(f'"{spec}": a bind mount needs a source (a host path)')
    if not source.startswith(("/", ".")):
        raise InvalidArgument(f'"{spec}": a bind mount\'s source is a host path (absolute, or ./{source} '
                              "for one under the current directory); use type=volume for a named volume")
    source = os.path.abspath(source)
    try:
        os.stat(source)
    except OSError as exc:
        raise InvalidArgument(f"statfs {source}: {exc.strerror.lower() if exc.strerror else exc}") from None
    mode, propagation, recursive, flags, _ = _bind_options(spec, options)
    return {"destination": _destination(spec, destination), "type": "bind", "source": source,
            "options": [mode or "rw", *flags, propagation or "rprivate", recursive]}


def _volume_mount(spec: str, name: str, destination: str, options: list[str]) -> dict[str, Any]:
    """A volume's mount: Podman's options (nosuid, nodev unless asked otherwise); `nocopy` skips
    filling a new volume from the image."""
    from .volumes import check_name

    if name:
        check_name(name)
    mode, propagation, recursive, flags, nocopy = _bind_options(spec, options)
    defaults = [d for d in ("nosuid", "nodev") if d not in flags and _FLAG_PAIRS[d] not in flags]
    mount = {"destination": _destination(spec, destination), "type": "bind", "source": "", "volume": name,
             "options": [mode or "rw", *flags, propagation or "rprivate", *defaults, recursive]}
    if nocopy:
        mount["nocopy"] = True
    return mount


def _bind_options(spec: str, options: list[str]) -> tuple[str, str, str, list[str], bool]:
    """(ro|rw, propagation, bind|rbind, flags, nocopy) from `-v`/`--mount` options."""
    mode, propagation, recursive, flags, nocopy = "", "", "rbind", [], False
    for option in options:
        if option in ("ro", "rw"):
            if mode:
                raise InvalidArgument(f'"{spec}": cannot set ro or rw options more than once')
            mode = option
        elif option in _PROPAGATION:
            if propagation:
                raise InvalidArgument(f'"{spec}": cannot set a propagation option more than once')
            propagation = option
        elif option in ("bind", "rbind"):
            recursive = option
        elif option in _FLAGS:
            flags.append(option)
        elif option in ("z", "Z"):
            continue  # SELinux relabelling: nothing to do where SELinux is off, as Podman
        elif option == "nocopy":
            nocopy = True
        elif option in ("U", "O", "idmap") or option.startswith(("idmap=", "upperdir=", "workdir=")):
            raise InvalidArgument(f'"{spec}": option "{option}" is not supported yet')
        else:
            raise InvalidArgument(f'"{spec}": invalid option type "{option}"')
    _check_flags(spec, flags)
    return mode, propagation, recursive, flags, nocopy


def _tmpfs_mount(spec: str, destination: str, options: list[str]) -> dict[str, Any]:
    flags = []
    for option in options:
        key, _, value = option.partition("=")
        if key == "size" and _SIZE.match(value):
            continue
        if key == "mode" and re.fullmatch(r"[0-7]{3,4}", value):
            continue
        if key in ("uid", "gid", "nr_inodes") and value.isdigit():
            continue
        if option in _FLAGS or option in ("ro", "rw", "notmpcopyup", "tmpcopyup"):
            flags.append(option)
            continue
        raise InvalidArgument(f'tmpfs "{spec}": invalid option "{option}"')
    _check_flags(spec, flags)
    defaults = [d for d in TMPFS_DEFAULTS if not (
        (d == "rw" and "ro" in options) or (d == "tmpcopyup" and "notmpcopyup" in options)
        or (d in _FLAG_PAIRS and _FLAG_PAIRS[d] in options))]
    own = [o for o in options if o not in ("notmpcopyup",) and o not in defaults]
    return {"destination": _destination(spec, destination), "type": "tmpfs", "source": "tmpfs",
            "options": own + defaults}


def _check_flags(spec: str, flags: list[str]) -> None:
    for off, on in _FLAG_PAIRS.items():
        if off in flags and on in flags:
            raise InvalidArgument(f'"{spec}": {off} and {on} contradict each other')


def _destination(spec: str, destination: str) -> str:
    if not destination:
        raise InvalidArgument(f'"{spec}": a mount needs a destination in the container')
    if not destination.startswith("/"):
        raise InvalidArgument(f'invalid container path "{destination}", must be an absolute path')
    cleaned = posixpath.normpath(destination)
    cleaned = "/" + cleaned.lstrip("/")
    if cleaned == "/":
        raise InvalidArgument(f'"{spec}": the container\'s root cannot be a mount destination')
    return cleaned


def _true(spec: str, key: str, value: str) -> bool:
    if value.lower() in ("true", "1", "yes", ""):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidArgument(f'--mount "{spec}": {key}={value} is not a boolean')
