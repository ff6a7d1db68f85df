"""The Podman-compatible grammar, shared by the CLI and the notebook magics.

Only the parser of the command being run is built: global flags and the command words are read
first, so start-up does not pay for the whole tree.
"""

from __future__ import annotations

import argparse

from ..engine.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, NoReturn


class UsageError(InvalidArgument):
    """Bad command line (unknown flag, missing argument); exit code 125 like Podman."""


class _Formatter(argparse.HelpFormatter):
    """A fixed width: argparse would otherwise import shutil on every add_argument to ask the terminal."""

    def __init__(self, prog: str):
        super().__init__(prog, width=100)


class _Parser(argparse.ArgumentParser):
    def __init__(self, **kwargs):
        super().__init__(formatter_class=_Formatter, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# -- flag groups ---------------------------------------------------------------------------
def _containers(p: argparse.ArgumentParser, *, all_flag: bool = True, all_short: bool = True) -> None:
    if all_flag:
        p.add_argument(*(["-a"] if all_short else []), "--all", action="store_true")
    p.add_argument("-l", "--latest", action="store_true", help="the container created last")
    p.add_argument("--cidfile", action="append", default=[], help="a file holding a container's ID")
    p.add_argument("--filter", action="append", default=[], help="KEY=VALUE as ps takes them: the containers to act on")
    p.add_argument("containers", nargs="*")


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {value!r}")


def _attach_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detach-keys")
    p.add_argument("--sig-proxy", type=_bool, nargs="?", const=True, default=True)


def _tty_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")


def _create_flags(p: argparse.ArgumentParser) -> None:
    _tty_flags(p)
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("--entrypoint")
    p.add_argument("--stop-signal")
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("--network", "--net", help="none, host, bridge (the default as root), container:NAME or networks")
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("-P", "--publish-all", action="store_true")
    p.add_argument("--network-alias", action="append", default=[])
    p.add_argument("--hostname")
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--dns-search", action="append", default=[])
    p.add_argument("--dns-option", action="append", default=[])
    p.add_argument("--add-host", action="append", default=[])
    p.add_argument("--ip", default="")
    p.add_argument("--mac-address", default="")
    for kind in ("pid", "ipc", "uts"):
        p.add_argument(f"--{kind}", default="", help="private, host or container:NAME")
    p.add_argument("--rm", action="store_true")
    p.add_argument("--secret", action="append", default=[],
                   help="NAME[,type=mount|env][,target=...][,uid=,gid=,mode=]: a secret as a file or a variable")
    p.add_argument("--security-opt", action="append", default=[],
                   help="no-new-privileges, seccomp=unconfined, seccomp=PROFILE.json, mask=PATHS, unmask=PATHS|ALL")
    p.add_argument("--device", action="append", default=[], help="HOST[:CONTAINER][:rwm]: a host device")
    p.add_argument("--sysctl", action="append", default=[], help="KEY=VALUE of a namespace of the container's own")
    p.add_argument("--umask", help="the process's umask (default 0022)")
    p.add_argument("--group-add", action="append", default=[], help="a supplementary group (gid or name)")
    p.add_argument("--tz", help="the time zone: Area/City, UTC, or local (the host's)")
    p.add_argument("--replace", action="store_true", help="remove a container of the same --name first")
    p.add_argument("--cidfile", help="write the container's ID to this file (which must not exist)")
    p.add_argument("--annotation", action="append", default=[], help="KEY=VALUE in the OCI spec's annotations")
    p.add_argument("--label-file", action="append", default=[], help="KEY=VALUE lines of labels")
    p.add_argument("--env-host", action="store_true", help="this environment's variables in the container")
    p.add_argument("--unsetenv", action="append", default=[], help="a variable of the defaults or the image, gone")
    p.add_argument("--unsetenv-all", action="store_true", help="none of the defaults' or the image's variables")
    p.add_argument("--expose", action="append", default=[], help="PORT[-PORT][/PROTO] for -P, as EXPOSE")
    p.add_argument("--pull", default="missing", choices=("always", "missing", "never", "newer"),
                   help="pull the image first: when it is missing (the default), always, never, or when newer")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress while pulling the image")
    p.add_argument("--platform", help="OS/ARCH of the image to pull")
    _registry_flags(p)
    p.add_argument("--log-driver", help="k8s-file (the default: `logs` reads it) or none")
    p.add_argument("--log-opt", action="append", default=[], help="max-size=SIZE: the log starts again above it")
    p.add_argument("--health-cmd", help='a command (shell, or a JSON array) whose exit 0 means healthy; "none"')
    p.add_argument("--health-interval", help='time between checks (default 30s; "disable": only healthcheck run)')
    p.add_argument("--health-timeout", help="time a check may take (default 30s)")
    p.add_argument("--health-start-period", help="time after the start when failures do not count (default 0s)")
    p.add_argument("--health-retries", type=int, help="failures in a row that make it unhealthy (default 3)")
    p.add_argument("--health-on-failure", help="none, kill, restart or stop, once unhealthy")
    p.add_argument("--no-healthcheck", action="store_true", help="no healthcheck, not even the image's")
    p.add_argument("--restart", help="no, on-failure[:N], always or unless-stopped: start the container again "
                                     "when its process exits (not after stop or kill)")
    _resource_flags(p)
    p.add_argument("--oom-score-adj", type=int)
    p.add_argument("--ulimit", action="append", default=[], help="TYPE=SOFT[:HARD], e.g. nofile=1024:2048")
    p.add_argument("--shm-size", help="size of /dev/shm, e.g. 64m")
    p.add_argument("-v", "--volume", action="append", default=[], help="HOST-PATH:CONTAINER-PATH[:ro,...]")
    p.add_argument("--mount", action="append", default=[], help="type=bind|tmpfs,destination=...,...")
    p.add_argument("--tmpfs", action="append", default=[], help="CONTAINER-PATH[:size=64m,mode=1777,...]")
    p.add_argument("--volumes-from", action="append", default=[],
                   help="CONTAINER[:ro|rw]: the bind mounts and volumes of that container")
    p.add_argument("--read-only", action="store_true", help="a read-only root file system (/run, /tmp, "
                                                             "/var/tmp stay writable tmpfs)")
    p.add_argument("--env-file", action="append", default=[], help="KEY=VALUE lines")
    p.add_argument("--init", action="store_true", help="run an init (catatonit) as PID 1: it forwards "
                                                      "signals and reaps zombies")
    p.add_argument("--init-path", help="the init binary (default: catatonit)")
    p.add_argument("--privileged", action="store_true", help="every capability, the host's devices, no seccomp")
    p.add_argument("--userns", default="", help="host (default) or keep-id (rootless: you are yourself inside)")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _resource_flags(p: argparse.ArgumentParser) -> None:
    """cgroup limits: taken by create/run and changed on a running container by update."""
    p.add_argument("-m", "--memory", help="memory limit, e.g. 256m")
    p.add_argument("--memory-swap", help="memory plus swap limit; -1 for unlimited swap")
    p.add_argument("--memory-reservation", help="memory soft limit")
    p.add_argument("--memory-swappiness", type=int)
    p.add_argument("--cpus", help="number of CPUs, e.g. 0.5")
    p.add_argument("-c", "--cpu-shares", type=int)
    p.add_argument("--cpu-quota", type=int)
    p.add_argument("--cpu-period", type=int)
    p.add_argument("--cpuset-cpus")
    p.add_argument("--cpuset-mems")
    p.add_argument("--pids-limit", type=int)
    p.add_argument("--blkio-weight", type=int)


def _create(p): _create_flags(p)
def _run(p):
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--rmi", action="store_true", help="remove the image after the container, unless in use (implies --rm)")
    _attach_flags(p)
    _create_flags(p)
def _init(p): _containers(p)
def _pause(p): _containers(p)
def _wait(p):
    p.add_argument("--condition", action="append", default=[],
                   help="stopped (the default), exited, running, paused, ..., healthy or unhealthy")
    p.add_argument("-i", "--interval", default="250ms", help="time between two looks at the container")
    _containers(p, all_flag=False)
def _exists(p): p.add_argument("container")
def _image_exists(p): p.add_argument("image")


def _start(p):
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    _attach_flags(p)
    _containers(p, all_short=False)  # -a is --attach


def _exec(p):
    _tty_flags(p)
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--detach-keys")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[], help="KEY=VALUE lines")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("-l", "--latest", action="store_true", help="in the container created last")
    p.add_argument("container", nargs="?")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _attach(p):
    p.add_argument("--no-stdin", action="store_true")
    _attach_flags(p)
    p.add_argument("container")


def _stop(p):
    p.add_argument("-t", "--time", type=int)
    p.add_argument("-i", "--ignore", action="store_true")
    _containers(p)


def _restart(p):
    p.add_argument("-t", "--time", type=int)
    _containers(p)


def _kill(p):
    p.add_argument("-s", "--signal", default="KILL")
    _containers(p)


def _rm(p):
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true", help="also remove the anonymous volumes")
    p.add_argument("-t", "--time", type=int)
    p.add_argument("-i", "--ignore", action="store_true")
    _containers(p)


def _ps(p):
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.add_argument("--noheading", action="store_true")
    p.add_argument("--sync", action="store_true")
    p.add_argument("-n", "--last", type=int, default=-1)
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("--widget", action="store_true", help="in a notebook: a live container table")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="KEY=VALUE: id, name, label, status, ancestor, exited, volume, network, before, since")
    p.add_argument("-s", "--size", action="store_true", help="the size of each container's files")
    p.add_argument("--sort", choices=("command", "created", "id", "image", "names", "runningfor", "size", "status"))


def _logs(p):
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int, default=-1)
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("-n", "--names", action="store_true")
    p.add_argument("-l", "--latest", action="store_true", help="the container created last")
    p.add_argument("containers", nargs="*")


def _inspect_common(p):
    p.add_argument("-f", "--format")
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("names", nargs="*")


def _container_inspect(p):
    p.add_argument("-l", "--latest", action="store_true", help="the container created last")
    _inspect_common(p)


def _inspect(p):
    p.add_argument("-t", "--type", default="all", choices=["all", "container", "image"])
    _container_inspect(p)


def _cleanup(p):
    p.add_argument("--rm", action="store_true")
    _containers(p)


def _import(p):
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("path")
    p.add_argument("reference", nargs="?")


def _images(p):
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("--format")
    p.add_argument("--noheading", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--sort", default="created", choices=("created", "id", "repository", "size", "tag"))
    p.add_argument("reference", nargs="?")


def _prune(p):
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")


def _rmi(p):
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-i", "--ignore", action="store_true")
    p.add_argument("images", nargs="*")


def _commit(p):
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-p", "--pause", type=_bool, nargs="?", const=True, default=True)
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--timestamp", type=int, help="seconds since the epoch for every date (reproducible)")
    p.add_argument("--iidfile", help="write the image ID to this file")
    p.add_argument("container")
    p.add_argument("image", nargs="?")


def _cp(p):
    p.add_argument("--pause", type=_bool, nargs="?", const=True, default=True)
    p.add_argument("source")
    p.add_argument("destination")


def _diff(p):
    p.add_argument("--format")
    p.add_argument("container")


def _export(p):
    p.add_argument("-o", "--output")
    p.add_argument("container")


def _save(p):
    p.add_argument("-o", "--output")
    p.add_argument("--format", default="docker-archive", choices=["docker-archive", "oci-archive", "oci-dir"])
    p.add_argument("--compress", action="store_true", help="gzip the layers (oci-archive, oci-dir)")
    p.add_argument("--uncompressed", action="store_true", help="accepted for Podman: layers are stored plain")
    p.add_argument("-m", "--multi-image-archive", action="store_true",
                   help="accepted for Podman: every argument is an image")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--timestamp", type=int, help="seconds since the epoch for every entry (reproducible)")
    p.add_argument("images", nargs="+")


def _load(p):
    p.add_argument("-i", "--input")
    p.add_argument("-q", "--quiet", action="store_true")


def _mount(p):
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("containers", nargs="*")


def _unmount(p):
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("containers", nargs="*")


def _tag(p):
    p.add_argument("image")
    p.add_argument("targets", nargs="+")


def _untag(p):
    p.add_argument("image")
    p.add_argument("targets", nargs="*")


def _bootstrap(p):
    p.add_argument("kind", choices=["busybox", "debian"])
    p.add_argument("name", nargs="?")
    p.add_argument("--suite", default="bookworm")
    p.add_argument("--include", action="append", default=[], help="packages, comma-separated")
    p.add_argument("--mirror")


def _registry_flags(p, *, creds: bool = True):
    p.add_argument("--tls-verify", type=_bool, nargs="?", const=True, default=None)
    p.add_argument("--authfile")
    if creds:
        p.add_argument("--creds")


def _pull(p):
    _registry_flags(p)
    p.add_argument("--platform")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("reference")


def _push(p):
    _registry_flags(p)
    p.add_argument("-f", "--format", choices=["oci", "v2s2"])
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("image")
    p.add_argument("destination", nargs="?")


def _login(p):
    _registry_flags(p, creds=False)
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")
    p.add_argument("registry")


def _logout(p):
    p.add_argument("--authfile")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("registry", nargs="?")


def _build(p):
    p.add_argument("-t", "--tag", action="append", default=[])
    p.add_argument("-f", "--file")
    p.add_argument("--build-arg", action="append", default=[], help="NAME=VALUE")
    p.add_argument("--network", help="for RUN steps (default: as run's)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("context", nargs="?", default=".")


def _rename(p):
    p.add_argument("container")
    p.add_argument("name")


def _history(p):
    p.add_argument("--format")
    p.add_argument("-H", "--human", type=_bool, nargs="?", const=True, default=True)
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("image")


def _volume_create(p):
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("-d", "--driver", default="local", choices=["local"])
    p.add_argument("name", nargs="?")


def _volume_ls(p):
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--noheading", "-n", action="store_true")
    p.add_argument("--format")


def _volume_inspect(p):
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("volumes", nargs="*")


def _volume_rm(p):
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-t", "--time", type=int)
    p.add_argument("volumes", nargs="*")


def _volume_exists(p):
    p.add_argument("volume")


def _network_create(p):
    p.add_argument("--subnet")
    p.add_argument("--gateway")
    p.add_argument("--internal", action="store_true")
    p.add_argument("-d", "--driver", default="bridge", choices=["bridge"])
    p.add_argument("--label", action="append", default=[])
    p.add_argument("name")


def _network_ls(p):
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--noheading", "-n", action="store_true")
    p.add_argument("--format")


def _network_rm(p):
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-t", "--time", type=int, default=10)
    p.add_argument("networks", nargs="+")


def _network_inspect(p):
    p.add_argument("networks", nargs="+")


def _network_connect(p):
    p.add_argument("--ip", default="")
    p.add_argument("network")
    p.add_argument("container")


def _network_disconnect(p):
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("network")
    p.add_argument("container")


def _force_only(p):
    p.add_argument("-f", "--force", action="store_true")


def _secret_create(p):
    p.add_argument("--env", action="store_true", help="SOURCE names an environment variable holding the data")
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("--replace", action="store_true", help="replace a secret of the same name")
    p.add_argument("-d", "--driver", default="file", choices=["file"])
    p.add_argument("name")
    p.add_argument("source", help="a file, - for standard input, or with --env a variable's name")


def _secret_inspect(p):
    p.add_argument("-f", "--format")
    p.add_argument("secrets", nargs="+")


def _secret_rm(p):
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("secrets", nargs="*")


def _container_prune(p):
    _force_only(p)
    p.add_argument("--filter", action="append", default=[], help="label=KEY[=VALUE], label!=..., until=10m")


def _system_prune(p):
    _container_prune(p)
    p.add_argument("-a", "--all", action="store_true", help="every image no container uses, not only dangling ones")
    p.add_argument("--volumes", action="store_true", help="also every volume no container uses")


def _port(p):
    p.add_argument("-a", "--all", action="store_true", help="the ports of every container")
    p.add_argument("container", nargs="?")
    p.add_argument("port", nargs="?")


def _format_only(p):
    p.add_argument("-f", "--format")


def _no_options(p):
    pass


def _unshare(p):
    p.add_argument("command", nargs=argparse.REMAINDER, help="what to run (default: $SHELL)")


def _update(p):
    _resource_flags(p)
    p.add_argument("container")


def _stats(p):
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("--no-stream", action="store_true")
    p.add_argument("--no-reset", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.add_argument("-i", "--interval", type=int, help="seconds between samples (default 5; a --plot: 1)")
    p.add_argument("--plot", action="store_true", help="in a notebook: live CPU and memory plots")
    p.add_argument("containers", nargs="*")


def _top(p):
    p.add_argument("container")
    p.add_argument("descriptors", nargs="*", help="ps-style descriptors, e.g. pid user args")


def _events(p):
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("--since")
    p.add_argument("--until")
    p.add_argument("--stream", type=_bool, nargs="?", const=True, default=True)
    p.add_argument("--no-trunc", type=_bool, nargs="?", const=True, default=True)


# command words -> (handler name, flag builder)
_CONTAINER = {
    "create": ("create", _create), "run": ("run", _run), "init": ("init", _init), "start": ("start", _start),
    "stop": ("stop", _stop), "kill": ("kill", _kill), "wait": ("wait", _wait), "pause": ("pause", _pause),
    "unpause": ("unpause", _pause), "restart": ("restart", _restart), "rm": ("rm", _rm), "ps": ("ps", _ps),
    "logs": ("logs", _logs), "exec": ("exec", _exec), "attach": ("attach", _attach),
    "commit": ("commit", _commit), "diff": ("diff", _diff), "cp": ("cp", _cp), "export": ("export", _export),
    "mount": ("mount", _mount), "unmount": ("unmount", _unmount), "umount": ("unmount", _unmount),
    "update": ("update", _update), "stats": ("stats", _stats), "top": ("top", _top),
}
COMMANDS: dict[tuple[str, ...], tuple[str, Callable]] = {
    **{(word,): entry for word, entry in _CONTAINER.items()},
    **{("container", word): entry for word, entry in _CONTAINER.items()},
    ("container", "remove"): ("rm", _rm),
    ("container", "ls"): ("ps", _ps),
    ("container", "list"): ("ps", _ps),
    ("container", "inspect"): ("container_inspect", _container_inspect),
    ("container", "cleanup"): ("cleanup", _cleanup),
    ("container", "exists"): ("container_exists", _exists),
    ("inspect",): ("inspect", _inspect),
    ("import",): ("import", _import),
    ("images",): ("images", _images),
    ("rmi",): ("rmi", _rmi),
    ("image", "import"): ("import", _import),
    ("image", "ls"): ("images", _images),
    ("image", "list"): ("images", _images),
    ("image", "rm"): ("rmi", _rmi),
    ("image", "remove"): ("rmi", _rmi),
    ("image", "exists"): ("image_exists", _image_exists),
    ("image", "inspect"): ("image_inspect", _inspect_common),
    ("image", "tag"): ("tag", _tag),
    ("image", "prune"): ("image_prune", _prune),
    ("image", "untag"): ("untag", _untag),
    ("image", "bootstrap"): ("bootstrap", _bootstrap),
    ("tag",): ("tag", _tag),
    ("pull",): ("pull", _pull), ("image", "pull"): ("pull", _pull),
    ("push",): ("push", _push), ("image", "push"): ("push", _push),
    ("login",): ("login", _login), ("logout",): ("logout", _logout),
    ("save",): ("save", _save), ("image", "save"): ("save", _save),
    ("load",): ("load", _load), ("image", "load"): ("load", _load),

    ("untag",): ("untag", _untag),
    ("history",): ("history", _history), ("image", "history"): ("history", _history),
    ("rename",): ("rename", _rename), ("container", "rename"): ("rename", _rename),
    ("build",): ("build", _build), ("image", "build"): ("build", _build),
    ("volume", "create"): ("volume_create", _volume_create),
    ("volume", "ls"): ("volume_ls", _volume_ls), ("volume", "list"): ("volume_ls", _volume_ls),
    ("volume", "inspect"): ("volume_inspect", _volume_inspect),
    ("volume", "rm"): ("volume_rm", _volume_rm), ("volume", "remove"): ("volume_rm", _volume_rm),
    ("volume", "prune"): ("volume_prune", _force_only),
    ("volume", "exists"): ("volume_exists", _volume_exists),
    ("volume", "export"): ("volume_export", lambda p: (p.add_argument("-o", "--output"), p.add_argument("volume"))),
    ("volume", "import"): ("volume_import", lambda p: (p.add_argument("volume"), p.add_argument("source"))),
    ("network", "exists"): ("network_exists", lambda p: p.add_argument("network")),
    ("network", "create"): ("network_create", _network_create),
    ("network", "ls"): ("network_ls", _network_ls), ("network", "list"): ("network_ls", _network_ls),
    ("network", "inspect"): ("network_inspect", _network_inspect),
    ("network", "rm"): ("network_rm", _network_rm), ("network", "remove"): ("network_rm", _network_rm),
    ("network", "prune"): ("network_prune", _force_only),
    ("network", "connect"): ("network_connect", _network_connect),
    ("network", "disconnect"): ("network_disconnect", _network_disconnect),
    ("port",): ("port", _port), ("container", "port"): ("port", _port),
    ("events",): ("events", _events), ("system", "events"): ("events", _events),
    ("info",): ("info", _format_only),
    ("doctor",): ("doctor", _format_only), ("system", "doctor"): ("doctor", _format_only),
    ("version",): ("version", _format_only),
    ("unshare",): ("unshare", _unshare),
    ("system", "migrate"): ("migrate", _no_options),
    ("container", "prune"): ("container_prune", _container_prune),
    ("secret", "create"): ("secret_create", _secret_create),
    ("secret", "ls"): ("secret_ls", _volume_ls), ("secret", "list"): ("secret_ls", _volume_ls),
    ("secret", "inspect"): ("secret_inspect", _secret_inspect),
    ("secret", "rm"): ("secret_rm", _secret_rm), ("secret", "remove"): ("secret_rm", _secret_rm),
    ("secret", "exists"): ("secret_exists", lambda p: p.add_argument("secret")),
    ("healthcheck", "run"): ("healthcheck_run", _exists),
    ("system", "prune"): ("system_prune", _system_prune),
    ("system", "df"): ("system_df", _format_only),
}

_GLOBAL_VALUES = {"--root": "root", "--runroot": "runroot", "--runtime": "runtime", "--log-level": "log_level"}
LOG_LEVELS = ("trace", "debug", "info", "warn", "warning", "error", "fatal", "panic")


def _usage() -> str:
    words = sorted({" ".join(k) for k in COMMANDS})
    return "usage: workbench [--root DIR] [--runroot DIR] [--runtime PATH] [--log-level LEVEL] [--debug] [--version] " \
           "COMMAND ...\n" \
           "commands: " + ", ".join(words)


def parse(argv: list[str]) -> argparse.Namespace:
    """Global flags, then the command words, then that command's own flags."""
    ns = argparse.Namespace(root=None, runroot=None, runtime=None, log_level="warn", help=False)
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        flag, eq, value = argv[i].partition("=")
        if flag in ("-h", "--help"):
            ns.help = True
            ns.usage = _usage()
            return ns
        if flag in ("-v", "--version") and not eq:  # `podman --version`: one line, no command
            from .. import __version__

            ns.help = True
            ns.usage = f"workbench version {__version__}"
            return ns
        if flag == "--debug" and not eq:  # --log-level debug: failures also show their traceback
            ns.log_level = "debug"
            i += 1
            continue
        if flag not in _GLOBAL_VALUES:
            raise UsageError(f"unknown flag: {flag}")
        if not eq:
            i += 1
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: {flag}")
            value = argv[i]
        setattr(ns, _GLOBAL_VALUES[flag], value)
        i += 1
    if ns.log_level not in LOG_LEVELS:
        raise UsageError(f'invalid log level "{ns.log_level}": use one of {", ".join(LOG_LEVELS)}')
    words = tuple(argv[i:i + 2])
    key = words if words in COMMANDS else words[:1]
    if key not in COMMANDS:
        if not words:
            raise UsageError("missing command\n" + _usage())
        raise UsageError(f'unrecognized command `workbench {" ".join(words)}`\n' + _usage())
    handler_name, build = COMMANDS[key]
    parser = _Parser(prog="workbench " + " ".join(key))
    build(parser)
    rest = argv[i + len(key):]
    if any(action.nargs == argparse.REMAINDER for action in parser._actions):
        parser.parse_args(rest, namespace=ns)  # `run IMAGE CMD...`: what follows the image is the command's
    else:
        parser.parse_intermixed_args(rest, namespace=ns)  # flags after positionals, as Podman (cobra) allows
    ns.command_name = handler_name
    return ns


def flags_of(key: tuple[str, ...]) -> list[str]:
    """The flags one command takes (for completion), long and short."""
    if key not in COMMANDS:
        return []
    parser = _Parser(prog="workbench " + " ".join(key))
    COMMANDS[key][1](parser)
    return sorted(flag for action in parser._actions for flag in action.option_strings)
