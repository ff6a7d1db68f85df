"""Rootless mode (issue 10), for real: an ordinary user runs the engine with its own store, a user
namespace held by a pause process, slirp4netns networking and no cgroups (this host is cgroup v1)."""

from __future__ import annotations

import json
import os
import socket
import textwrap
import time
import urllib.request

from workbench.engine.exits import process_status
from workbench.engine.rootless import subordinate_ids


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_info_reports_rootless_mode_and_the_users_own_store(store):
    info = json.loads(store.ok("info", "--format", "json"))
    assert info["Host"]["Rootless"] is True
    assert info["Store"]["GraphRoot"] == store.root
    assert info["Store"]["RunRoot"] == store.runroot
    owner = os.stat(store.root)
    assert (owner.st_uid, owner.st_mode & 0o777) == (store.user.pw_uid, 0o700)
    sub = subordinate_ids("/etc/subuid", store.user.pw_uid)
    assert info["Host"]["IDMappings"]["UIDMap"] == [
        {"ContainerID": 0, "HostID": store.user.pw_uid, "Size": 1},
        {"ContainerID": 1, "HostID": sub.start, "Size": sub.count}]
    assert info["Host"]["Capabilities"] == {
        "DefaultNetwork": "slirp4netns", "BridgeNetworks": False, "CgroupLimits": False, "Pause": False,
        "KeepID": True, "Slirp4netns": "/usr/bin/slirp4netns"}


def test_a_pause_process_holds_the_namespace_with_the_subordinate_ids(store):
    store.ok("ps")
    pid = store.pause_pid()
    assert pid is not None
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "catatonit"
    with open(f"/proc/{pid}/uid_map") as f:
        ranges = [line.split() for line in f.read().splitlines()]
    sub = subordinate_ids("/etc/subuid", store.user.pw_uid)
    assert ranges == [["0", str(store.user.pw_uid), "1"], ["1", str(sub.start), str(sub.count)]]
    assert os.stat(f"/proc/{pid}").st_uid == store.user.pw_uid
    store.ok("ps")
    assert store.pause_pid() == pid  # every later command joins the same one


def test_the_lifecycle_runs_as_the_user(store):
    proc = store.wb("run", "--rm", "bb", "sh", "-c", "id; echo oops >&2; exit 3")
    assert (proc.returncode, proc.stdout.split()[:2], proc.stderr) == (3, ["uid=0(root)", "gid=0(root)"], "oops\n")
    ctr = store.ok("run", "-d", "--name", "life", "bb", "sh", "-c", "echo started; sleep 300").strip()
    pid = int(store.ok("inspect", "--format", "{{.State.Pid}}", "life"))
    assert os.stat(f"/proc/{pid}").st_uid == store.user.pw_uid  # root inside is the user outside
    assert "life" in store.ok("ps")
    assert store.ok("exec", "life", "cat", "/etc/hostname").strip() == ctr[:12]
    assert store.ok("exec", "-t", "life", "tty").strip().startswith("/dev/pts/")
    assert store.ok("logs", "life") == "started\n"
    top = store.ok("top", "life", "user", "args")
    assert "root" in top and "sleep 300" in top
    stats = json.loads(store.ok("stats", "--no-stream", "--format", "json", "life"))
    assert stats[0]["pids"] == "2" or int(stats[0]["pids"]) >= 1
    refused = store.wb("pause", "life")
    assert refused.returncode == 125
    assert "can not pause containers on rootless containers with cgroup V1" in refused.stderr
    store.ok("stop", "-t", "0", "life")
    assert store.ok("inspect", "--format", "{{.State.Status}}", "life").strip() == "exited"
    store.ok("start", "life")
    store.ok("rm", "-f", "-t", "0", "life")
    assert store.ok("ps", "-a", "-q") == ""
    assert sorted(os.listdir(os.path.join(store.runroot, "containers"))) == []


def test_limits_are_ignored_with_podmans_warning(store):
    proc = store.wb("run", "--rm", "--memory", "64m", "bb", "true")
    assert proc.returncode == 0, proc.stderr
    assert "Resource limits are not supported and ignored on cgroups V1 rootless systems" in proc.stderr


def test_files_made_in_a_bind_mount_belong_to_the_user_or_its_subordinate_ids(store):
    store.ok("run", "--rm", "-v", f"{store.work}:/data", "bb", "sh", "-c",
             "echo root > /data/by-root; mkdir /data/d; chown 1000:1000 /data/d")
    assert os.stat(os.path.join(store.work, "by-root")).st_uid == store.user.pw_uid
    sub = subordinate_ids("/etc/subuid", store.user.pw_uid)
    assert os.stat(os.path.join(store.work, "d")).st_uid == sub.start + 999


def test_keep_id_makes_the_user_itself_inside_and_what_it_writes_the_users(store):
    uid, gid = store.user.pw_uid, store.user.pw_gid
    out = store.ok("run", "--rm", "--userns", "keep-id", "-v", f"{store.work}:/nb", "bb", "sh", "-c",
                   "id -u; id -g; stat -c %u:%g /etc/passwd /nb; echo kept > /nb/kept; touch /etc/x 2>&1; true")
    lines = out.splitlines()
    assert lines[:4] == [str(uid), str(gid), "0:0", f"{uid}:{gid}"]  # the image's root is still root
    assert "Permission denied" in lines[4]
    kept = os.stat(os.path.join(store.work, "kept"))
    assert (kept.st_uid, kept.st_gid) == (uid, gid)
    port = _free_port()
    store.ok("run", "-d", "--name", "kid", "--userns", "keep-id", "-p", f"127.0.0.1:{port}:8080", "bb",
             "httpd", "-f", "-p", "8080", "-h", "/etc")
    try:
        assert store.ok("exec", "kid", "id", "-u").strip() == str(uid)
        assert store.ok("exec", "-u", "0", "kid", "id", "-u").strip() == "0"
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=5) as answer:
                    assert answer.read().strip() == store.ok("inspect", "--format", "{{.Id}}", "kid")[:12].encode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        store.ok("rm", "-f", "-t", "0", "kid")
    bad = store.wb("run", "--rm", "--userns", "nobody-knows", "bb", "true")
    assert bad.returncode == 125
    assert bad.stderr.strip() == 'Error: --userns "nobody-knows": only host and keep-id are supported'


def test_a_rootless_container_cannot_write_outside_the_users_own_files(store):
    proc = store.wb("run", "--rm", "-v", "/etc:/hostetc", "-v", "/root:/hostroot", "bb", "sh", "-c",
                    "touch /hostetc/wb-rootless-was-here; ls /hostroot")
    assert proc.returncode != 0
    assert "Permission denied" in proc.stderr
    assert not os.path.exists("/etc/wb-rootless-was-here")


def test_published_port_is_reached_from_the_host_and_freed_after(store):
    port = _free_port()
    store.ok("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "bb", "sh", "-c",
             "echo served-rootless > /srv.txt; exec httpd -f -p 80 -h /")
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/srv.txt", timeout=5) as answer:
                    assert answer.read() == b"served-rootless\n"
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert store.ok("port", "web").strip() == f"80/tcp -> 127.0.0.1:{port}"
        outbound = store.wb("exec", "web", "sh", "-c", "cat /etc/resolv.conf; ip -4 addr show tap0")
        assert "nameserver 10.0.2.3" in outbound.stdout and "10.0.2.100/24" in outbound.stdout
    finally:
        store.ok("rm", "-f", "-t", "0", "web")
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the served connection may be in TIME_WAIT
        s.bind(("127.0.0.1", port))  # slirp4netns let go of its listening socket
        s.listen()


def test_commit_push_and_pull_through_a_registry(store, registry):
    store.ok("run", "--name", "maker", "bb", "sh", "-c", "echo made-rootless > /made.txt")
    store.ok("commit", "maker", "made:1")
    store.ok("rm", "maker")
    assert store.ok("run", "--rm", "made:1", "cat", "/made.txt") == "made-rootless\n"
    ref = f"{registry.host}/rootless/made:1"
    store.ok("push", "--tls-verify=false", "made:1", ref)
    store.ok("rmi", "made:1")
    store.ok("pull", "--tls-verify=false", ref)
    assert store.ok("run", "--rm", ref, "cat", "/made.txt") == "made-rootless\n"
    store.ok("rmi", ref)


def test_build_cp_volumes_and_the_host_network_work_rootless(store):
    context = os.path.join(store.work, "ctx")
    os.mkdir(context)
    with open(os.path.join(context, "Containerfile"), "w") as f:
        f.write('FROM bb\nRUN echo built-rootless > /built.txt\nCMD ["cat", "/built.txt"]\n')
    os.chown(context, store.user.pw_uid, store.user.pw_gid)
    store.ok("build", "-t", "built:1", context)  # RUN steps on slirp4netns, no pause for the commit
    assert store.ok("run", "--rm", "built:1") == "built-rootless\n"
    store.ok("rmi", "built:1")
    store.ok("run", "-d", "--name", "copied", "-v", "data:/data", "bb", "sleep", "300")
    try:
        source = os.path.join(store.work, "in.txt")
        with open(source, "w") as f:
            f.write("copied-in\n")
        store.ok("cp", source, "copied:/data/in.txt")  # into a running container: cp would pause it as root
        assert store.ok("exec", "copied", "cat", "/data/in.txt") == "copied-in\n"
    finally:
        store.ok("rm", "-f", "-t", "0", "copied")
    assert store.ok("run", "--rm", "-v", "data:/data", "bb", "cat", "/data/in.txt") == "copied-in\n"
    store.ok("volume", "rm", "data")
    host = store.ok("run", "--rm", "--network", "host", "bb", "sh", "-c", "ls /sys/class/net")
    assert "lo" in host.split()
    refused = store.wb("network", "create", "lab")
    assert refused.returncode == 125 and "bridge networks need root" in refused.stderr


def test_a_kernel_with_threads_runs_commands_in_a_forked_child(store):
    script = textwrap.dedent("""
        import threading, time
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()  # a kernel has threads
        from workbench.notebook import ctr
        r = ctr("run --rm bb sh -c 'echo out; echo err >&2; exit 4'")
        print("RESULT", r.exit_code, repr(r.stdout))
        d = ctr("inspect bb")
        print("INSPECT", d.exit_code, d[0]["RepoTags"] if isinstance(d.data, list) else d.data)
        r = ctr("pause nosuch")
        print("ERROR", r.exit_code, r.errors)
    """)
    proc = store.run(["/usr/bin/python3", "-c", script])
    assert proc.returncode == 0, proc.stderr
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in proc.stdout.splitlines()
             if line.startswith(("RESULT", "INSPECT", "ERROR"))}
    assert lines["RESULT"] == "4 'out\\n'"
    assert lines["INSPECT"] == "0 ['localhost/bb:latest']"
    assert lines["ERROR"].startswith("125 ['no container with name or ID \"nosuch\" found")


def test_a_store_of_another_user_is_refused_plainly(store):
    proc = store.wb("--root", "/var/lib", "ps")
    assert proc.returncode == 125
    assert proc.stderr.startswith(f"Error: /var/lib: this store belongs to uid 0, not to uid {store.user.pw_uid}")


def test_a_user_without_subordinate_ids_gets_one_mapped_id_and_a_warning(nobody_store):
    proc = nobody_store.wb("image", "bootstrap", "busybox", "bb")
    assert proc.returncode == 0, proc.stderr
    assert "has no subordinate ids in /etc/subuid and /etc/subgid: only one uid and gid are mapped" in proc.stderr
    assert nobody_store.ok("run", "--rm", "-t", "bb", "sh", "-c", "id -u; tty").split() == ["0", "/dev/pts/0"]


def test_the_quickstart_notebook_runs_end_to_end_as_the_user(store):
    proc = store.notebook(os.path.join(os.path.dirname(store.base), "pkg", "quickstart.ipynb"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "code cells ran" in proc.stdout
    assert "hello from a container" in proc.stdout


def test_a_console_in_a_rootless_kernel_takes_keys_and_sizes(store):
    cells = [
        "%load_ext workbench",
        "%ctr run -d --name typed bb sleep 300",
        "console = %ctr exec -it typed sh\nassert type(console).__name__ == 'Console', console",
        textwrap.dedent("""
            import time

            def seen(text, timeout=20):
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    if text.encode() in bytes(console._ring) + bytes(console._pending):
                        return True
                    time.sleep(0.05)
                raise AssertionError(f"{text!r} not in {bytes(console._ring) + bytes(console._pending)!r}")

            console.write("echo typed-$((6*7))\\n")
            seen("typed-42")
            console._queue_resize(31, 97)
            time.sleep(0.5)
            console.write("stty size\\n")
            seen("31 97")
            print("CONSOLE-OK", console.status)
        """),
        "console.close()\nprint('CLOSED', console.status)\n%ctr rm -f -t 0 typed",
    ]
    proc = store.cells(cells)
    assert "CONSOLE-OK running" in proc.stdout and "CLOSED closed" in proc.stdout


def test_layer_owners_are_shifted_into_the_subordinate_ids_and_unmapped_ones_refused(store):
    import io
    import tarfile

    def tar_of(owners: dict[str, int]) -> str:
        path = os.path.join(store.work, f"owners-{len(owners)}.tar")
        with tarfile.open(path, "w") as t:
            for name, uid in owners.items():
                info = tarfile.TarInfo(name)
                info.size, info.uid, info.gid = 1, uid, uid
                t.addfile(info, io.BytesIO(b"x"))
        os.chown(path, store.user.pw_uid, store.user.pw_gid)
        return path
    images = store.ok("images", "-q")
    layers = sorted(os.listdir(os.path.join(store.root, "layers")))
    refused = store.wb("import", tar_of({"ok.txt": 1000, "far.txt": 70000}), "far:1")
    assert refused.returncode == 125
    assert "'far.txt': owner 70000:70000 is not mapped in this user namespace" in refused.stderr
    assert store.ok("images", "-q") == images and sorted(os.listdir(os.path.join(store.root, "layers"))) == layers
    image = store.ok("import", tar_of({"by-1000.txt": 1000}), "owned:1").strip()
    sub = subordinate_ids("/etc/subuid", store.user.pw_uid)
    layer_dirs = [d for d in os.listdir(os.path.join(store.root, "layers")) if d not in layers]
    owners = {os.stat(os.path.join(store.root, "layers", d, "diff", "by-1000.txt")).st_uid for d in layer_dirs}
    assert owners == {sub.start + 999}, (image, layer_dirs)
    store.ok("rmi", "owned:1")


def test_the_kernel_overlay_is_used_and_opaque_directories_survive_commit_and_load(store):
    store.ok("run", "--name", "layered", "bb", "sh", "-c", "mkdir /data; echo old > /data/old")
    store.ok("commit", "layered", "layered:1")
    store.ok("rm", "layered")
    ctr = store.ok("run", "-d", "--name", "opaque", "layered:1", "sh", "-c",
                   "rm -rf /data; mkdir /data; echo fresh > /data/new; sleep 300").strip()
    try:
        mounts = store.ok("unshare", "cat", "/proc/self/mountinfo")
        line = next(line for line in mounts.splitlines() if ctr in line and "/merged " in line)
        assert " - overlay " in line and "userxattr" in line, line  # user.overlay.* xattrs, no FUSE
        store.ok("commit", "opaque", "opaque:1")
    finally:
        store.ok("rm", "-f", "-t", "0", "opaque")
    archive = os.path.join(store.work, "opaque.tar")
    store.ok("save", "-o", archive, "opaque:1")
    store.ok("rmi", "opaque:1")
    store.ok("load", "-i", archive)
    assert store.ok("run", "--rm", "opaque:1", "ls", "-A", "/data") == "new\n"  # old is gone: opaque
    store.ok("rmi", "opaque:1")
    # a keep-id container's storage is fuse-overlayfs's, which marks opaque directories its own way
    store.ok("run", "--name", "kept", "--userns", "keep-id", "--user", "0", "layered:1", "sh", "-c",
             "rm -rf /data; mkdir /data; echo fresh > /data/new")
    changes = [line for line in store.ok("diff", "kept").splitlines() if "/data" in line]
    assert changes == ["C /data", "A /data/new"]
    store.ok("commit", "kept", "kept:1")
    store.ok("rm", "kept")
    assert store.ok("run", "--rm", "kept:1", "ls", "-A", "/data") == "new\n"
    store.ok("rmi", "kept:1", "layered:1")


def test_fuse_overlayfs_mounts_the_storage_when_asked_or_when_the_kernel_refuses_overlay(store):
    fuse = {"WORKBENCH_MOUNT_PROGRAM": "fuse-overlayfs"}  # as storage.conf's mount_program
    ctr = store.ok("run", "-d", "--name", "fused", "bb", "sleep", "300", env=fuse).strip()
    try:
        mounts = store.ok("unshare", "cat", "/proc/self/mountinfo")
        assert any(ctr in line and "fuse.fuse-overlayfs" in line for line in mounts.splitlines())
        store.ok("exec", "fused", "sh", "-c", "echo through-fuse > /made.txt", env=fuse)
        assert "A /made.txt" in store.ok("diff", "fused", env=fuse)
    finally:
        store.ok("rm", "-f", "-t", "0", "fused", env=fuse)
    missing = store.wb("run", "--rm", "bb", "true", env={"WORKBENCH_MOUNT_PROGRAM": "no-such-mounter"})
    assert missing.returncode == 125
    assert "no-such-mounter not found: mounting this container's storage needs it" in missing.stderr


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, which this VM's init reaps lazily, does not)."""
    status = process_status(pid)
    return status is not None and status[1] != "Z"



def test_without_newuidmap_the_user_is_told_to_install_uidmap_and_nothing_is_started(store):
    tools = os.path.join(store.work, "tools-without-newuidmap")
    os.mkdir(tools)
    os.symlink("/usr/bin/catatonit", os.path.join(tools, "catatonit"))
    runtime_dir = os.path.join(store.work, "fresh-run")
    os.mkdir(runtime_dir, 0o700)
    os.chown(runtime_dir, store.user.pw_uid, store.user.pw_gid)
    before = store.live_pids("catatonit")
    proc = store.wb("ps", env={"PATH": tools, "XDG_RUNTIME_DIR": runtime_dir,
                               "XDG_DATA_HOME": os.path.join(store.work, "fresh-data")})
    assert proc.returncode == 125
    assert proc.stderr.strip() == ("Error: newuidmap not found: mapping the subordinate ids needs it; install "
                                   "package uidmap")
    assert store.live_pids("catatonit") == before
    assert not os.path.exists(os.path.join(runtime_dir, "workbench", "pause.pid"))


def test_without_xdg_runtime_dir_a_private_tmp_run_root_is_used_and_a_foreign_one_refused(store):
    fallback = f"/tmp/workbench-run-{store.user.pw_uid}"
    env = {"XDG_RUNTIME_DIR": "", "XDG_DATA_HOME": os.path.join(store.work, "fallback-data")}
    import shutil

    shutil.rmtree(fallback, ignore_errors=True)
    os.mkdir(fallback, 0o755)  # a directory others can read: not private
    try:
        refused = store.wb("ps", env=env)
        assert refused.returncode == 125
        assert f"{fallback}: the run root fallback is not a private directory owned by uid" in refused.stderr
        os.rmdir(fallback)
        info = json.loads(store.ok("info", "--format", "json", env=env))
        assert info["Store"]["RunRoot"] == f"{fallback}/workbench"
        st = os.stat(fallback)
        assert (st.st_uid, st.st_mode & 0o777) == (store.user.pw_uid, 0o700)
    finally:
        pid_file = os.path.join(fallback, "workbench", "pause.pid")
        if os.path.exists(pid_file):
            with open(pid_file) as f:
                os.kill(int(f.read()), 9)
        shutil.rmtree(fallback, ignore_errors=True)


def test_live_views_in_a_rootless_kernel_list_act_and_plot(store):
    cells = [
        "%load_ext workbench",
        "%ctr run -d --name viewed bb sh -c 'trap \"exit 0\" TERM; sleep 300 & wait'",
        textwrap.dedent("""
            table = %ctr ps -a --widget
            assert table.row("viewed")["state"] == "running", table.rows
            table.act("stop", "viewed").join(60)
            assert table.row("viewed")["state"] in ("stopped", "exited"), (table.rows, table.message)
            table.act("start", "viewed").join(60)
            assert table.row("viewed")["state"] == "running", (table.rows, table.message)
            print("TABLE-OK")
        """),
        textwrap.dedent("""
            import time
            plot = %ctr stats --plot -i 1 viewed
            deadline = time.monotonic() + 20
            while len(plot.samples.get("viewed", [])) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(plot.samples.get("viewed", [])) >= 2, (plot.samples, plot.message)
            print("PLOT-OK")
        """),
        textwrap.dedent("""
            info = %ctr inspect viewed
            view = info.widget
            view.refresh()
            assert view.data["State"]["Status"] == "running", view.data
            print("INSPECT-OK")
            missing = %ctr inspect no-such-container
            print("MISSING", missing.exit_code)
        """),
        "table.close(); plot.close()\n%ctr rm -f -t 0 viewed",
    ]
    proc = store.cells(cells)
    for marker in ("TABLE-OK", "PLOT-OK", "INSPECT-OK", "MISSING 125"):
        assert marker in proc.stdout, proc.stdout[-3000:]


def test_system_migrate_stops_the_containers_and_the_pause_process(store):
    ctr = store.ok("run", "-d", "--name", "migrated", "bb", "sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait").strip()
    old = store.pause_pid()
    assert store.ok("system", "migrate").split() == [ctr]
    assert store.ok("inspect", "--format", "{{.State.Status}}", "migrated").strip() == "exited"
    assert not _alive(old)
    try:
        store.ok("start", "migrated")
        assert store.pause_pid() not in (None, old)  # a new user namespace
        assert store.ok("exec", "migrated", "echo", "alive") == "alive\n"
    finally:
        store.ok("rm", "-f", "-t", "0", "migrated")


def test_the_vfs_driver_copies_the_image_and_diffs_commits_and_exports_the_copy(store):
    vfs = {"WORKBENCH_STORAGE_DRIVER": "vfs"}
    store.ok("run", "--name", "base", "bb", "sh", "-c", "mkdir /data; echo old > /data/old; echo keep > /data/keep")
    store.ok("commit", "base", "base:1")
    store.ok("rm", "base")
    ctr = store.ok("run", "--name", "copied", "base:1", "sh", "-c", "rm -rf /data; mkdir /data; echo new > /data/new; "
                   "rm /bin/vi; echo x > /added; echo changed >> /etc/passwd", env=vfs)
    assert ctr == ""
    changes = store.ok("diff", "copied", env=vfs).splitlines()
    for change in ("A /added", "D /bin/vi", "D /data/keep", "A /data/new", "D /data/old", "C /etc/passwd"):
        assert change in changes, changes
    mounts = store.ok("unshare", "cat", "/proc/self/mountinfo")
    cid = store.ok("inspect", "--format", "{{.Id}}", "copied").strip()
    assert cid not in mounts  # a copy: nothing is mounted
    exported = os.path.join(store.work, "copied.tar")
    store.ok("export", "-o", exported, "copied", env=vfs)
    import tarfile

    with tarfile.open(exported) as t:
        names = set(t.getnames())
    assert {"added", "data/new"} <= names and "bin/vi" not in names and "data/old" not in names
    store.ok("commit", "copied", "copied:1", env=vfs)
    store.ok("rm", "copied", env=vfs)
    out = store.ok("run", "--rm", "copied:1", "sh", "-c", "ls -A /data; cat /added; tail -1 /etc/passwd; ls /bin/vi || true")
    assert out.splitlines()[:3] == ["new", "x", "changed"]
    store.ok("rmi", "copied:1", "base:1")
    bad = store.wb("run", "--rm", "bb", "true", env={"WORKBENCH_STORAGE_DRIVER": "zfs"})
    assert bad.returncode == 125 and "storage driver 'zfs' is not known: overlay or vfs" in bad.stderr


def test_slirp4netns_options_as_podmans(store):
    """`--network slirp4netns:allow_host_loopback=true,mtu=...,cidr=...`: the host's loopback services
    are reached through the gateway only when allowed."""
    import http.server
    import threading

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello-from-the-host\n")

        def log_message(self, *args) -> None:
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ask = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 10.0.2.2 {server.server_port} 2>&1 | tail -1"
    try:
        assert "hello-from-the-host" not in store.ok("run", "--rm", "bb", "sh", "-c", ask)
        allowed = store.ok("run", "--rm", "--network", "slirp4netns:allow_host_loopback=true,mtu=1500", "bb",
                           "sh", "-c", ask + "; ip link show tap0")
        assert "hello-from-the-host" in allowed and "mtu 1500" in allowed
    finally:
        server.shutdown()
    other = store.ok("run", "--rm", "--network", "slirp4netns:cidr=10.41.0.0/24", "bb", "sh", "-c",
                     "ip -4 addr show tap0; grep nameserver /etc/resolv.conf; grep host.containers.internal /etc/hosts")
    assert "inet 10.41.0.100/24" in other and "nameserver 10.41.0.3" in other and "10.41.0.2\thost.containers" in other
    bad = store.wb("run", "--rm", "--network", "slirp4netns:mtu=huge", "bb", "true")
    assert bad.returncode == 125 and 'slirp4netns option "mtu=huge": invalid value' in bad.stderr
