"""The internal steps behind Container's public methods (libpod's container_internal).

Every function here expects the container lock to be held and the state synced.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

from . import events
from . import exit_command
from . import health
from . import logger
from . import cgroups
from . import resources
from . import rootless
from . import state as states
from .errors import CannotRun, ConmonDied, InvalidArgument, OCIRuntimeError, WorkbenchError
from .exits import handle_exit_file, mark_stopped, pid_alive
from .files import remove_tree
from .network import attach as network
from .oci import conmon
from .oci import spec as ocispec
from .signals import signal_name
from .state import ContainerState as S

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .container import Container

log = logger.get(__name__)

#: How long to wait for conmon to write the exit file after the process died (libpod: 5 s).
EXIT_FILE_TIMEOUT = 5.0
#: How long SIGKILL gets before we give up (libpod's killContainerTimeout).
KILL_TIMEOUT = 5.0


# -- storage and runtime files -------------------------------------------------------
def mount_storage(c: "Container") -> str:
    if c.st.mounted and os.path.ismount(c.rt.layers.merged(c.config.layer_id)):
        return c.st.mountpoint
    image = c.rt.image_store.get(c.config.image_id)
    lowers = list(reversed(image.layers))
    id_maps = rootless.keep_id_maps() if c.config.userns == "keep-id" else None
    c.st.mountpoint = c.rt.layers.mount(c.config.layer_id, lowers, volatile=c.config.auto_remove, id_maps=id_maps)
    c.st.mounted = True
    return c.st.mountpoint


def cleanup_storage(c: "Container") -> None:
    """Unmount the root file system, unless `workbench mount` holds it mounted."""
    if c.st.mount_count > 0:
        return
    c.rt.layers.unmount(c.config.layer_id)
    c.st.mounted = False
    c.st.mountpoint = ""


def _write(path: str, data: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.rename(tmp, path)


def base_hosts() -> str:
    """The host's /etc/hosts, the base of every container's (Podman's base_hosts_file default)."""
    try:
        with open("/etc/hosts") as f:
            base = f.read()
    except OSError:
        base = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    return base if not base or base.endswith("\n") else base + "\n"


def write_runtime_files(c: "Container") -> dict[str, str]:
    """/etc/hosts, /etc/hostname, /etc/resolv.conf and /run/.containerenv in the run dir."""
    os.makedirs(c.run_dir, mode=0o700, exist_ok=True)
    try:
        with open("/etc/resolv.conf") as f:
            host_resolv = f.read().splitlines()
    except OSError:
        host_resolv = []
    cfg = c.config
    files = {
        "/etc/hosts": network.hosts(c, base_hosts()),
        "/etc/hostname": cfg.hostname,  # podman 4.3 writes it without a newline
        "/etc/resolv.conf": network.resolv_conf(host_resolv, cfg.dns, cfg.dns_search, cfg.dns_options,
                                                first=network.own_nameservers(c)),
        "/run/.containerenv": "",
    }
    out = {}
    for dest, data in files.items():
        host = os.path.join(c.run_dir, os.path.basename(dest))
        _write(host, data)
        out[dest] = host
    return out


# -- spec -----------------------------------------------------------------------------
def _command(c: "Container") -> list[str]:
    args = list(c.config.entrypoint) + list(c.config.command)
    if not args:
        raise InvalidArgument("no command or entrypoint provided, and no CMD or ENTRYPOINT from image")
    return args


def _prepare_workdir(c: "Container", rootfs: str, workdir: str) -> None:
    """As Podman: the image's workdir is made when missing; one given with --workdir must be a
    directory of the container already, or a mount's destination (or below one)."""
    from .storage.rootpath import UnsafePath, mkdirs_in_root, open_in_root

    root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if c.config.create_workdir:
            os.close(mkdirs_in_root(root_fd, workdir))
            return
        if any(workdir == m["destination"] or workdir.startswith(m["destination"].rstrip("/") + "/")
               for m in c.config.mounts):
            return
        os.close(open_in_root(root_fd, workdir, os.O_PATH | os.O_DIRECTORY, follow=True))
    except (FileNotFoundError, NotADirectoryError):
        raise CannotRun(f'workdir "{workdir}" does not exist on container {c.id}') from None
    except (OSError, UnsafePath) as exc:
        raise WorkbenchError(f'cannot create workdir "{workdir}" in container {c.id}: {exc}') from exc
    finally:
        os.close(root_fd)


def generate_spec(c: "Container", rootfs: str, bind_files: dict[str, str]) -> dict:
    from .users import resolve_user

    user = resolve_user(rootfs, c.config.user)
    env = list(c.config.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={user.home}")
    workdir = c.config.workdir or "/"
    if workdir != "/":
        _prepare_workdir(c, rootfs, workdir)
    caps = container_capabilities(c)
    if c.config.privileged or c.config.seccomp == "unconfined":
        seccomp = None
    elif c.config.seccomp:
        from .process_options import oci_seccomp

        seccomp = oci_seccomp(c.config.seccomp, caps)
    else:
        seccomp = _default_seccomp(c.rt.runroot, caps)
    extra_gids = list(user.additional_gids)
    if c.config.group_add:
        from .process_options import group_ids

        extra_gids += [gid for gid in group_ids(rootfs, c.config.group_add) if gid not in extra_gids]
    devices: tuple[list, list] = ([], [])
    if c.config.devices and not c.config.privileged:  # privileged: every host device already
        from .process_options import oci_devices

        devices = oci_devices(c.config.devices)
    read_only_files = {}  # container path -> host file, bound read-only
    if c.config.timezone:
        from .process_options import timezone

        read_only_files["/etc/localtime"] = timezone(c.config.timezone)
    if c.config.secrets:
        from .secrets import for_container

        secret_env, secret_files = for_container(c)
        env = [e for e in env if e.split("=", 1)[0] not in secret_env] + [f"{k}={v}" for k, v in secret_env.items()]
        read_only_files.update(secret_files)
    mounts = [*c.config.mounts, *({"destination": dest, "type": "bind", "source": source,
                                   "options": ["bind", "ro", "rprivate"]} for dest, source in read_only_files.items())]
    return ocispec.generate(ocispec.SpecInput(
        ctr_id=c.id, rootfs=rootfs, args=_command(c), env=env, cwd=workdir, uid=user.uid, gid=user.gid,
        additional_gids=extra_gids, hostname=c.config.hostname,
        stop_signal=c.config.stop_signal, auto_remove=c.config.auto_remove, created=c.config.created,
        bind_files=bind_files, annotations=dict(c.config.annotations), namespaces=_namespaces(c),
        cgroup_v2=cgroups.is_v2(), seccomp=seccomp, terminal=c.config.tty,
        resources=c.config.resources or None, rlimits=c.config.ulimits, oom_score_adj=c.config.oom_score_adj,
        shm_size=c.config.shm_size or resources.DEFAULT_SHM_SIZE, capabilities=caps, mounts=mounts,
        read_only=c.config.read_only, init_path=c.config.init_path, privileged=c.config.privileged,
        cgroups=cgroups.containers_have_cgroups(), tty_gid=5 if rootless.gid_mapped(5) else None,
        id_maps=rootless.keep_id_maps() if c.config.userns == "keep-id" else None,
        bind_sys=rootless.is_rootless() and (c.config.userns == "keep-id" or c.config.network == "host"),
        umask=c.config.umask, sysctls=c.config.sysctls, no_new_privileges=c.config.no_new_privileges,
        mask=c.config.mask, unmask=c.config.unmask, devices=devices[0], device_rules=devices[1],
    ))


def container_capabilities(c: "Container") -> list[str]:
    """The container's bounding set (configs from before --cap-add have Podman's defaults)."""
    return list(c.config.capabilities) or list(ocispec.DEFAULT_CAPABILITIES)


def _namespaces(c: "Container") -> dict[str, str]:
    """Namespace kind -> path to join ("" = a new one); a kind left out is the host's."""
    spaces = {"pid": "", "network": "", "ipc": "", "uts": "", "mount": ""}
    mode = c.config.network
    if mode == "host":
        del spaces["network"]
    elif mode in ("bridge", "slirp4netns"):
        spaces["network"] = c.st.netns
    elif mode.startswith("container:"):
        spaces["network"] = _owner_namespace(c, mode.partition(":")[2], "net")
    for kind, owner in c.config.namespaces.items():
        if owner == "host":
            del spaces[kind]
        else:
            spaces[kind] = _owner_namespace(c, owner, kind)
    return spaces


def _owner_namespace(c: "Container", owner_id: str, kind: str) -> str:
    """/proc/<pid>/ns/<kind> of the running container whose namespace c joins."""
    owner = c.rt.container(owner_id)
    if owner.st.state not in (S.RUNNING, S.PAUSED) or not owner.st.pid:
        raise WorkbenchError(f"cannot join the {kind} namespace of container {owner.id}: it is not running "
                             f"(start it first)")
    return f"/proc/{owner.st.pid}/ns/{kind}"


def dependents(c: "Container") -> list[str]:
    """IDs of the containers that join one of c's namespaces."""
    import json

    out = []
    for ctr_id, config in c.rt.db.query("SELECT id, config FROM containers WHERE id != ?", (c.id,)):
        cfg = json.loads(config)
        if cfg.get("network") == f"container:{c.id}" or c.id in (cfg.get("namespaces") or {}).values():
            out.append(ctr_id)
    return out


def _default_seccomp(runroot: str, caps: list[str]) -> dict:
    """The default seccomp profile for a bounding set (some syscalls follow capabilities), compiled
    once per boot, kernel, Workbench version and set, and kept in the run root: importing and
    compiling the rules costs every CLI `run` about 30 ms."""
    source = os.path.join(os.path.dirname(__file__), "oci", "seccomp.py")
    st, uname = os.stat(source), os.uname()
    tag = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in f"{uname.machine}-{uname.release}")
    if sorted(caps) != sorted(ocispec.DEFAULT_CAPABILITIES):
        import hashlib

        tag += "-caps-" + hashlib.sha256(",".join(sorted(caps)).encode()).hexdigest()[:16]
    path = os.path.join(runroot, f"seccomp-{tag}-{st.st_mtime_ns}-{st.st_size}.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        pass
    from .oci.seccomp import default_seccomp

    profile = default_seccomp(caps)
    _write(path, json.dumps(profile))
    return profile


# -- OCI lifecycle ---------------------------------------------------------------------
def _copy_up_volumes(c: "Container", rootfs: str) -> None:
    """A volume mounted for the first time gets what the image has at its mount point."""
    if not any(m.get("volume") and not m.get("nocopy") for m in c.config.mounts):
        return
    from .filesystem import empty_runtime_files
    from .volumes import copy_up

    store = c.rt.volumes
    for m in c.config.mounts:
        if m.get("volume") and not m.get("nocopy"):
            volume = store.get(m["volume"])
            if volume.needs_copy_up:
                inside = m["destination"].strip("/") + "/"
                skip = frozenset(rel[len(inside):] for rel in empty_runtime_files(c) if rel.startswith(inside))
                copy_up(rootfs, m["destination"], volume, skip)
                store.copied_up(volume.name)


def init(c: "Container", retain_retries: bool = False) -> None:
    """Mount, write config.json, conmon + `runc create`: Configured/Exited -> Created. The count
    of restarts by the restart policy starts again, unless this is one (`retain_retries`)."""
    if c.st.state == S.STOPPED:  # not cleaned up yet: the runtime's state and the old network go first
        cleanup_runtime(c, meanwhile=lambda: network.teardown(c))
    conmon.remove_conmon_files(c.bundle, c.run_dir, c.exit_file)
    _command(c)  # fail before touching anything when there is nothing to run
    try:
        rootfs = mount_storage(c)
        _copy_up_volumes(c, rootfs)
        network.setup(c)
        cgroups.prime_attach_lock()  # conmon's move and runc's writes follow in a few ms
        bind_files = write_runtime_files(c)
        spec = generate_spec(c, rootfs, bind_files)
        with open(os.path.join(c.bundle, "config.json"), "w") as f:
            f.write(json.dumps(spec))  # dumps uses the C encoder; dump(f) encodes chunk by chunk
        launch = conmon.ConmonLaunch(
            conmon=c.rt.conmon_path, runtime=c.rt.oci.path, runtime_root=c.rt.oci.root, ctr_id=c.id,
            name=c.config.name, bundle=c.bundle, run_dir=c.run_dir, exit_dir=c.rt.exit_dir,
            log_path=c.log_path if c.config.log_driver != "none" else None, log_size_max=c.config.log_size_max,
            exit_command=c.rt.exit_command(c.id), terminal=c.config.tty,
            place=cgroups.place_conmon,
            stdin=c.config.stdin,
        )
        pid, conmon_pid = conmon.create_container(launch)
        network.setup_created(c, pid)
    except BaseException as exc:
        try:
            c.rt.oci.delete(c.id)
        except WorkbenchError as err:
            log.warning("cleaning up after a failed init of %s: %s", c.id, err)
        network.teardown(c)
        cleanup_storage(c)
        explained = resources.explain_rlimit_error(exc)
        c.st.error = str(explained)
        c.save()
        if explained is not exc:
            raise explained from exc
        raise
    st = c.st
    st.pid, st.conmon_pid = pid, conmon_pid
    st.exit_code, st.exited, st.error, st.stopped_by_user, st.oom_killed = 0, False, "", False, False
    if not retain_retries:
        st.restart_count = 0
    st.state = S.CREATED
    c.save()
    events.container(c, "init")
    if st.network_status:
        network.refresh_peers(c, list(st.network_status))  # the others learn its name


def start(c: "Container", retain_retries: bool = False) -> None:
    """`runc start`: Created -> Running (init first from Configured/Stopped/Exited)."""
    if c.st.state != S.CREATED:
        init(c, retain_retries)
    try:
        c.rt.oci.start(c.id)
    except OCIRuntimeError as exc:
        c.st.error = str(exc)
        cleanup(c)
        c.save()
        raise
    c.st.state = S.RUNNING
    c.st.started_at = time.time()
    health.reset(c)
    health.start_monitor(c)
    c.save()
    events.container(c, "start")


def wait_for_exit(c: "Container", timeout: float | None) -> bool:
    """Wait (unlocked) until the exit file appears or the container is no longer active."""
    def done() -> bool:
        current = c.rt.db.container_state(c.id)
        if current is None or states.ContainerState[current["state"]] not in states.ACTIVE_STATES:
            return True
        conmon_pid = current.get("conmon_pid", 0)
        return bool(conmon_pid) and not pid_alive(conmon_pid)
    return c.rt.exit_watcher.wait_for(c.id, timeout, done)


def stop(c: "Container", timeout: int) -> None:
    """Stop signal, SIGKILL after `timeout` seconds; Running/Created/Stopping -> Stopped."""
    c.st.stopped_by_user = True
    health.stop_monitor(c)
    events.container(c, "stop")
    if c.st.state == S.CREATED:
        # Never started: nothing to signal; drop it from the runtime and unmount (-> Configured).
        cleanup(c)
        return
    c.st.state = S.STOPPING
    c.save()
    with c.unlocked():
        _signal_and_wait(c, timeout)
    c.sync()
    if c.st.state == S.STOPPING:
        c.rt.exit_watcher.wait_for(c.id, EXIT_FILE_TIMEOUT, lambda: not pid_alive(c.st.conmon_pid))
        if not handle_exit_file(c):
            mark_stopped(c, -1, time.time(), "container did not write an exit file")
        c.save()


def _signal_and_wait(c: "Container", timeout: int) -> None:
    pid = c.st.pid
    if not pid_alive(pid):
        return
    if timeout > 0:
        try:
            c.rt.oci.kill(c.id, c.config.stop_signal)
        except OCIRuntimeError as exc:
            if pid_alive(pid):
                raise
            log.debug("stop signal: %s", exc)
        if wait_for_exit(c, timeout):
            return
        log.warning("StopSignal %s failed to stop container %s in %d seconds, resorting to SIGKILL",
                    signal_name(c.config.stop_signal), c.config.name, timeout)
    try:
        c.rt.oci.kill(c.id, 9)
    except OCIRuntimeError as exc:
        if pid_alive(pid):
            raise
        log.debug("SIGKILL: %s", exc)
    if not wait_for_exit(c, KILL_TIMEOUT):
        raise ConmonDied(f"timed out waiting for container {c.id} to exit after SIGKILL")


def kill(c: "Container", signal: int) -> None:
    try:
        c.rt.oci.kill(c.id, signal)
    except OCIRuntimeError:
        c.sync()
        if c.st.state not in (S.RUNNING, S.PAUSED, S.STOPPING):
            return
        raise
    c.st.stopped_by_user = True
    c.save()
    events.container(c, "kill", signal=signal_name(signal))
    if signal == 9:
        with c.unlocked():
            wait_for_exit(c, KILL_TIMEOUT)
        c.sync()


def cleanup_runtime(c: "Container", meanwhile: Callable[[], None] | None = None) -> None:
    """`runc delete`, conmon files: Stopped -> Exited, Created -> Configured.

    `meanwhile` (host-side clean-up) runs while the runtime deletes its state.
    """
    def host_side() -> None:
        try:
            conmon.remove_conmon_files(c.bundle, c.run_dir, c.exit_file)
        finally:
            if meanwhile is not None:
                meanwhile()
    if c.st.state in (S.CREATED, S.STOPPED, S.STOPPING):
        c.rt.oci.delete(c.id, meanwhile=host_side)
    else:
        host_side()
    if c.st.state in (S.STOPPED, S.STOPPING):
        c.st.state = S.EXITED
    elif c.st.state == S.CREATED:
        c.st.state = S.CONFIGURED
    c.st.pid = 0
    c.st.conmon_pid = 0


def cleanup(c: "Container") -> None:
    """Everything a stopped container holds on the host: runtime state, conmon files, mounts."""
    from . import exec as exec_sessions

    errors: list[Exception] = []
    health.stop_monitor(c)
    exec_sessions.remove_all(c)
    networks = list(c.st.network_status)

    def host_side() -> None:
        for step in (network.teardown, cleanup_storage):
            try:
                step(c)
            except (OSError, WorkbenchError) as exc:
                errors.append(exc)
    if c.st.state not in (S.CONFIGURED, S.EXITED):
        try:
            cleanup_runtime(c, meanwhile=host_side)
        except WorkbenchError as exc:
            errors.insert(0, exc)
        events.container(c, "cleanup")
    else:
        host_side()
    c.save()
    if networks:
        network.refresh_peers(c, networks)  # and forget it
    c.rt.db.prune_exit_codes()
    if errors:
        raise errors[0]


def _remove_anonymous_volumes(c: "Container") -> None:
    from .volumes import NoSuchVolume

    store = c.rt.volumes
    for m in c.config.mounts:
        if not m.get("volume"):
            continue
        try:
            # one another container mounts too (it made it, or shares it by --volumes-from) stays
            if store.get(m["volume"]).anonymous and not store.users(m["volume"]):
                store.remove(m["volume"])
        except NoSuchVolume:
            continue
        except WorkbenchError as exc:  # another container mounts it meanwhile: it stays
            log.warning("keeping volume %s of %s: %s", m["volume"], c.id, exc)


def remove(c: "Container", timeout: int | None, *, volumes: bool = False) -> None:
    """Stop if forced, clean up, then delete the layer, files and DB rows (and the anonymous
    volumes, with `volumes` or for an --rm container)."""
    users = dependents(c)
    if users:
        raise WorkbenchError(f"container {c.id} has dependent containers which must be removed before it: "
                             f"{', '.join(users)}: container already exists")
    if c.st.state == S.PAUSED:
        c.rt.oci.kill(c.id, 9)
        try:
            c.rt.oci.resume(c.id)  # runc thaws a frozen container itself on SIGKILL
        except OCIRuntimeError:
            pass
        with c.unlocked():
            wait_for_exit(c, KILL_TIMEOUT)
        c.sync()
    if c.st.state in (S.RUNNING, S.STOPPING, S.CREATED):
        stop(c, c.config.stop_timeout if timeout is None else timeout)
    c.st.mount_count = 0  # a `workbench mount` does not outlive the container
    cleanup(c)
    network.teardown(c, thorough=True)
    c.st.state = S.REMOVING
    c.save()
    c.rt.layers.remove(c.config.layer_id)
    remove_tree(c.static_dir)
    remove_tree(c.run_dir)
    exit_command.forget(c.rt.runroot, c.id)  # a crashed waiter's claim
    try:
        os.unlink(c.exit_file)
    except FileNotFoundError:
        pass
    with c.rt.db.transaction() as cur:
        cur.execute("DELETE FROM layers WHERE id = ?", (c.config.layer_id,))
        cur.execute("DELETE FROM containers WHERE id = ?", (c.id,))
    c.valid = False
    if volumes or c.config.auto_remove:
        _remove_anonymous_volumes(c)
    events.container(c, "remove", exit_code=c.st.exit_code if c.st.exited else None)
