"""The `workbench` command: Podman's output, messages and exit codes, with real containers."""

from __future__ import annotations

import json
import os
import time

import pytest


@pytest.mark.parametrize("code", [0, 1, 3])
def test_run_passes_the_container_exit_code_through(cli, image, code):
    proc = cli("run", "--rm", image, "sh", "-c", f"echo out; echo err >&2; exit {code}")
    assert proc.returncode == code
    assert proc.stdout == "out\n"
    assert proc.stderr == "err\n"
    assert cli("ps", "-aq").stdout == ""


def test_run_missing_command_exits_127(cli, image):
    proc = cli("run", "--rm", image, "/no/such/cmd")
    assert proc.returncode == 127
    assert proc.stderr.startswith("Error: ")
    assert "not found" in proc.stderr or "no such file" in proc.stderr
    assert cli("ps", "-aq").stdout == ""


def test_run_non_executable_exits_126(cli, image):
    proc = cli("run", "--rm", image, "/etc/passwd")
    assert proc.returncode == 126
    assert "permission denied" in proc.stderr.lower()


def test_unknown_image_and_container_are_125_with_podman_messages(cli, image):
    proc = cli("run", "--rm", "--pull", "never", "nosuchimage", "true")
    assert proc.returncode == 125
    assert proc.stderr == "Error: nosuchimage: image not known\n"
    proc = cli("run", "--rm", "nosuchimage", "true")  # pulled when missing: a short name resolves nowhere here
    assert proc.returncode == 125 and 'short-name "nosuchimage" did not resolve' in proc.stderr
    proc = cli("stop", "nosuch")
    assert proc.returncode == 125
    assert proc.stderr == 'Error: no container with name or ID "nosuch" found: no such container\n'
    proc = cli("rm", "nosuch")
    assert proc.returncode == 1


def test_every_name_is_looked_up_before_any_container_is_acted_on(cli, image):
    """As Podman: one name that matches no container fails the command, and nothing is done."""
    cli("run", "-d", "--name", "up", image, "sleep", "100")
    cli("create", "--name", "made", image, "true")
    for args in (["stop", "-t", "0", "up", "nosuch"], ["kill", "up", "nosuch"], ["pause", "up", "nosuch"],
                 ["start", "made", "nosuch"], ["wait", "nosuch", "up"]):
        proc = cli(*args)
        assert (proc.returncode, proc.stdout) == (125, ""), args
        assert proc.stderr == 'Error: no container with name or ID "nosuch" found: no such container\n', args
    proc = cli("rm", "made", "nosuch")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert cli("ps", "-a", "--format", "{{.Names}} {{.State}}").stdout.split("\n") == ["made created", "up running", ""]
    proc = cli("rm", "made", "up")  # one removed, one refused: podman rm's exit code for a running container
    assert (proc.returncode, proc.stdout) == (2, "made\n")
    assert "cannot be removed without force" in proc.stderr
    proc = cli("rm", "-f", "-t", "0", "nosuch", "up")  # --force: a missing name is no error
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "up\n", "")
    assert cli("ps", "-aq").stdout == ""


def test_a_process_that_cannot_start_as_configured_exits_126(cli, image, tmp_path):
    """As podman run: --workdir must exist (the image's WORKDIR is made), the user must be known."""
    proc = cli("run", "--rm", "-w", "/no/such/dir", image, "pwd")
    assert proc.returncode == 126 and proc.stdout == ""
    assert proc.stderr.startswith('Error: workdir "/no/such/dir" does not exist on container ')
    proc = cli("run", "--rm", "-u", "nosuchuser", image, "true")
    assert (proc.returncode, proc.stderr) == (126, "Error: unable to find user nosuchuser: no matching entries in "
                                                   "passwd file\n")
    assert cli("ps", "-aq").stdout == ""
    assert cli("run", "--rm", "-w", "/tmp", image, "pwd").stdout == "/tmp\n"
    assert cli("run", "--rm", "-w", "/data/sub", "-v", f"{tmp_path}:/data/sub", image, "pwd").stdout == "/data/sub\n"
    cli("commit", "--change", "WORKDIR /made/here", cli("create", image, "true").stdout.strip(), "withworkdir")
    assert cli("run", "--rm", "withworkdir", "pwd").stdout == "/made/here\n"


def test_restart_policy_flag(cli, image):
    proc = cli("run", "-d", "--name", "flaky", "--restart", "on-failure:1", image, "sh", "-c", "echo run; exit 3")
    assert proc.returncode == 0
    deadline = time.monotonic() + 15
    fmt = "{{.State.Status}} {{.RestartCount}} {{.HostConfig.RestartPolicy.Name}}"
    while cli("inspect", "-f", fmt, "flaky").stdout != "exited 1 on-failure\n" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cli("inspect", "-f", fmt, "flaky").stdout == "exited 1 on-failure\n"
    assert cli("logs", "flaky").stdout == "run\nrun\n"
    proc = cli("run", "--rm", "--restart", "always", image, "true")
    assert (proc.returncode, proc.stderr) == (
        125, 'Error: the --rm option conflicts with --restart, when the restartPolicy is not "" and "no"\n')
    proc = cli("create", "--restart", "sometimes", image, "true")
    assert proc.returncode == 125 and '"sometimes" is not a valid restart policy' in proc.stderr
    assert cli("ps", "-a", "--format", "{{.Names}}").stdout == "flaky\n"


def test_inspect_format_names_a_missing_field(cli, image):
    cli("create", "--name", "c", "-l", "a=1", image, "true")
    proc = cli("inspect", "-f", "{{.State.Stauts}}", "c")
    assert proc.returncode == 125 and "can't evaluate field Stauts" in proc.stderr
    assert cli("inspect", "-f", "{{.Config.Labels.a}} {{.Config.Labels.b}}", "c").stdout == "1 <no value>\n"


def test_healthcheck_run_and_the_status_in_ps(cli, image):
    cli("run", "-d", "--name", "db", "--health-cmd", "test -e /tmp/ready", "--health-interval", "disable",
        "--health-retries", "1", image, "sleep", "100")
    assert cli("ps", "--format", "{{.Names}} {{.Status}}").stdout.endswith("(starting)\n")
    proc = cli("healthcheck", "run", "db")
    assert (proc.returncode, proc.stdout) == (1, "unhealthy\n")
    cli("exec", "db", "touch", "/tmp/ready")
    assert cli("healthcheck", "run", "db").returncode == 0 and cli("healthcheck", "run", "db").stdout == ""
    assert cli("ps", "--format", "{{.Status}}").stdout.endswith("(healthy)\n")
    assert cli("inspect", "-f", "{{.State.Health.Status}} {{len .State.Health.Log}}", "db").stdout == "healthy 3\n"
    cli("run", "-d", "--name", "plain", image, "sleep", "100")
    proc = cli("healthcheck", "run", "plain")
    assert proc.returncode == 125 and "has no defined healthcheck" in proc.stderr
    proc = cli("run", "--rm", "--health-interval", "5s", image, "true")
    assert proc.returncode == 125 and "need a healthcheck command" in proc.stderr


def test_wait_for_a_condition(cli, image):
    cli("run", "-d", "--name", "db", "--health-cmd", "test -e /tmp/ready", "--health-interval", "1s",
        "--health-retries", "9", image, "sh", "-c", "sleep 1; touch /tmp/ready; sleep 100")
    started = time.monotonic()
    proc = cli("wait", "--condition", "healthy", "-i", "100ms", "db")  # the monitor's checks get there
    assert (proc.returncode, proc.stdout) == (0, "-1\n") and time.monotonic() - started < 15
    assert cli("wait", "--condition", "running", "db").stdout == "-1\n"  # already so: at once
    cli("create", "--name", "later", image, "sh", "-c", "exit 3")
    assert cli("wait", "--condition", "created", "later").stdout == "-1\n"
    assert cli("start", "later").returncode == 0
    assert cli("wait", "--condition", "exited", "--condition", "paused", "later").stdout == "3\n"
    proc = cli("wait", "--condition", "asleep", "db")
    assert proc.returncode == 125 and 'unknown container state: "asleep"' in proc.stderr
    proc = cli("wait", "--condition", "healthy", "later")
    assert proc.returncode == 125 and "has no healthcheck" in proc.stderr


def test_ps_size_and_sort_and_images_sort(cli, image, tmp_path):
    cli("run", "--name", "big", image, "sh", "-c", "head -c 120000 /dev/zero > /f")
    cli("run", "--name", "small", image, "true")
    proc = cli("ps", "-a", "--size", "--sort", "size", "--format", "{{.Names}} {{.Size}}")
    assert proc.stdout.splitlines() == ["small 0B (virtual 2.14MB)", "big 120kB (virtual 2.26MB)"], proc.stdout
    assert cli("ps", "-a", "--sort", "names", "--format", "{{.Names}}").stdout == "big\nsmall\n"
    assert cli("ps", "-a", "-s").stdout.splitlines()[0].split()[-1] == "SIZE"
    committed = cli("commit", "--iidfile", str(tmp_path / "iid"), "big", "zbig").stdout.strip()
    assert (tmp_path / "iid").read_text() == "sha256:" + committed
    assert cli("images", "--sort", "size", "--format", "{{.Repository}}").stdout.splitlines() == [
        "localhost/busybox", "localhost/zbig"]
    assert cli("images", "--sort", "repository", "--format", "{{.Repository}}").stdout.splitlines()[0] == \
        "localhost/busybox"


def test_create_flags_for_names_files_labels_and_environment(cli, image, busybox_tar, tmp_path, monkeypatch):
    cidfile = tmp_path / "cid"
    first = cli("run", "-d", "--name", "svc", "--cidfile", str(cidfile), "--stop-timeout", "0", image,
                "sleep", "100").stdout.strip()
    assert cidfile.read_text() == first
    proc = cli("run", "-d", "--name", "svc", "--cidfile", str(cidfile), image, "true")
    assert proc.returncode == 125 and "container id file exists" in proc.stderr
    second = cli("run", "-d", "--name", "svc", "--replace", "--stop-timeout", "0", image, "sleep", "100").stdout.strip()
    assert cli("ps", "-aq", "--no-trunc").stdout == second + "\n" and second != first
    assert "without --name" in cli("create", "--replace", image, "true").stderr
    (tmp_path / "labels").write_text("# team labels\nteam=ml\nstage\n")
    cid = cli("create", "--label-file", str(tmp_path / "labels"), "-l", "team=data", "--annotation", "note=x",
              image, "true").stdout.strip()
    assert json.loads(cli("inspect", "-f", "{{json .Config.Labels}}", cid).stdout) == {"team": "data", "stage": ""}
    assert cli("inspect", "-f", "{{.Config.Annotations.note}}", cid).stdout == "x\n"
    monkeypatch.setenv("FROM_HOST", "yes")
    assert cli("run", "--rm", "--env-host", "-e", "PATH=/bin", image, "sh", "-c", "echo $FROM_HOST $PATH").stdout == \
        "yes /bin\n"
    env = cli("run", "--rm", "--unsetenv", "TERM", image, "env").stdout.split()
    assert not any(e.startswith("TERM=") for e in env) and any(e.startswith("PATH=") for e in env)
    assert "PATH=" not in cli("run", "--rm", "--unsetenv-all", image, "/bin/env").stdout
    cli("import", busybox_tar, "throwaway")
    assert cli("run", "--rmi", "throwaway", "true").returncode == 0
    assert cli("image", "exists", "throwaway").returncode == 1 and cli("ps", "-aq").stdout.count("\n") == 2


def test_latest_and_cidfile_name_the_containers(cli, image, tmp_path):
    proc = cli("stop", "--latest")
    assert proc.returncode == 125 and "no containers to get latest" in proc.stderr
    cli("run", "-d", "--name", "older", "--stop-timeout", "0", image, "sleep", "100")
    newer = cli("run", "-d", "--name", "newer", "--cidfile", str(tmp_path / "cid"), "--stop-timeout", "0", image,
                "sleep", "100").stdout.strip()
    assert cli("stop", "-l").stdout == newer + "\n"
    assert cli("ps", "--format", "{{.Names}}").stdout == "older\n"
    assert cli("start", "--latest").returncode == 0
    assert cli("kill", "--cidfile", str(tmp_path / "cid")).stdout == newer + "\n"
    assert cli("wait", "-l").stdout == "137\n"
    cli("run", "-d", "--name", "talker", image, "sh", "-c", "echo said; sleep 100")
    assert cli("exec", "-l", "echo", "in-latest").stdout == "in-latest\n"
    assert cli("inspect", "-l", "--format", "{{.Name}}").stdout == "talker\n"
    assert cli("logs", "--latest").stdout == "said\n"
    assert cli("stop", "-t", "0", "--filter", "name=talk").stdout.split() == [
        cli("inspect", "-f", "{{.Id}}", "talker").stdout.strip()]
    assert cli("ps", "--format", "{{.Names}}").stdout == "older\n"
    assert cli("start", "--all").returncode == 0
    assert cli("ps", "--format", "{{.Names}}").stdout.split() == ["talker", "newer", "older"]
    assert "takes no container names" in cli("rm", "--filter", "name=x", "older").stderr
    proc = cli("rm", "--cidfile", str(tmp_path / "nope"))
    assert proc.returncode == 125 and "reading CIDFile" in proc.stderr


def test_volume_export_import_and_network_exists(cli, image, tmp_path, store):
    import io
    import tarfile

    cli("run", "--rm", "-v", "src:/d", image, "sh", "-c", "mkdir /d/sub; echo hi > /d/sub/f; chown 33 /d/sub/f")
    assert cli("volume", "export", "src", "-o", str(tmp_path / "src.tar")).returncode == 0
    cli("volume", "create", "copy")
    assert cli("volume", "import", "copy", str(tmp_path / "src.tar")).returncode == 0
    assert cli("run", "--rm", "-v", "copy:/d", image, "stat", "-c", "%u %n", "/d/sub/f").stdout == "33 /d/sub/f\n"
    hostile = io.BytesIO()  # an archive whose entries reach out of the volume
    with tarfile.open(fileobj=hostile, mode="w") as tar:
        for name in ("../escaped", "/abs-escaped"):
            entry = tarfile.TarInfo(name)
            entry.size = 4
            tar.addfile(entry, io.BytesIO(b"evil"))
    proc = cli("volume", "import", "copy", "-", input=hostile.getvalue().decode("latin-1"))
    assert proc.returncode == 125, proc.stderr
    beside = os.path.join(store["root"], "volumes", "copy", "escaped")  # where ../escaped would land
    assert not os.path.exists(beside) and not os.path.exists("/abs-escaped")
    assert cli("volume", "export", "nosuch", "-o", str(tmp_path / "none.tar")).returncode == 125
    assert not (tmp_path / "none.tar").exists()
    assert (cli("network", "exists", "workbench").returncode, cli("network", "exists", "nope").returncode) == (0, 1)


def test_volume_errors_exit_as_podman(cli, image):
    proc = cli("volume", "inspect", "nosuch")
    assert (proc.returncode, proc.stderr) == (125, 'Error: no volume with name "nosuch" found: no such volume\n')
    cli("volume", "create", "spare")
    proc = cli("volume", "rm", "nosuch", "spare")
    assert (proc.returncode, proc.stdout) == (1, "spare\n")


def test_cp_says_which_side_lacks_the_path(cli, image, tmp_path):
    cli("run", "-d", "--name", "box", image, "sleep", "100")
    proc = cli("cp", "box:/no/such/file", str(tmp_path))
    assert proc.returncode == 125
    assert proc.stderr == 'Error: "/no/such/file" could not be found on container box: no such file or directory\n'
    proc = cli("cp", str(tmp_path / "absent"), "box:/tmp")
    assert proc.returncode == 125
    assert proc.stderr == f'Error: "{tmp_path}/absent" could not be found on the host: no such file or directory\n'


def test_debug_adds_the_traceback_to_the_error_line(cli):
    for flags in (["--debug"], ["--log-level", "debug"]):
        proc = cli(*flags, "stop", "nosuch")
        assert proc.returncode == 125
        assert "Traceback (most recent call last)" in proc.stderr and "NoSuchContainer" in proc.stderr
        assert proc.stderr.endswith('Error: no container with name or ID "nosuch" found: no such container\n')


def test_bad_flag_and_bad_signal(cli, image):
    proc = cli("run", "--no-such-flag", image, "true")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: ")
    cid = cli("run", "-d", image, "sleep", "100").stdout.strip()
    proc = cli("kill", "-s", "BOGUS", cid)
    assert proc.returncode == 125
    assert proc.stderr == "Error: invalid signal: BOGUS\n"
    assert cli("inspect", "--format", "{{.State.Status}}", cid).stdout == "running\n"


def test_detached_lifecycle_through_the_cli(cli, image):
    cid = cli("run", "-d", "--name", "web", image, "sh", "-c", "trap 'exit 9' TERM; while true; do sleep 0.05; done").stdout.strip()
    assert len(cid) == 64
    ps = cli("ps").stdout.splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert cid[:12] in ps[1] and ps[1].rstrip().endswith("web")
    assert cli("pause", "web").stdout == "web\n"
    assert cli("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "web").stdout == "paused true\n"
    proc = cli("pause", "web")
    assert proc.returncode == 125 and "is not running, can't pause: container state improper" in proc.stderr
    assert cli("unpause", "web").returncode == 0
    assert cli("stop", "-t", "5", "web").stdout == "web\n"
    assert cli("wait", "web").stdout == "9\n"
    assert cli("ps", "-q").stdout == ""
    assert cli("ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout.startswith("web Exited (9) ")
    assert cli("restart", "web").returncode == 0
    assert cli("ps", "--format", "{{.Names}}").stdout == "web\n"
    proc = cli("rm", "web")
    assert proc.returncode == 2  # podman rm: a container running or paused
    assert "running or paused containers cannot be removed without force" in proc.stderr
    assert cli("rm", "-f", "-t", "0", "web").stdout == "web\n"
    assert cli("container", "exists", "web").returncode == 1


def test_create_init_start_attach(cli, image):
    cid = cli("create", "--name", "c1", image, "sh", "-c", "echo hello; exit 4").stdout.strip()
    assert cli("inspect", "-f", "{{.State.Status}}", "c1").stdout == "created\n"
    assert cli("init", "c1").stdout == "c1\n"
    assert cli("inspect", "-f", "{{.State.Status}}", cid).stdout == "initialized\n"
    proc = cli("start", "-a", "c1")
    assert proc.stdout == "hello\n"
    assert proc.returncode == 4


def test_logs_flags(cli, image):
    cid = cli("run", "-d", image, "sh", "-c", "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three").stdout.strip()
    assert cli("wait", cid).stdout == "0\n"
    proc = cli("logs", cid)
    assert proc.stdout == "one\nthree\n" and proc.stderr == "two\n"
    assert cli("logs", "--tail", "1", cid).stdout == "three\n"
    stamped = cli("logs", "-t", cid).stdout.splitlines()
    assert stamped[0].endswith(" one") and stamped[0][:4].isdigit() and "T" in stamped[0].split()[0]
    assert cli("logs", "--since", "2000-01-01", cid).stdout == "one\nthree\n"
    assert cli("logs", "--until", "2000-01-01", cid).stdout == ""


def test_log_driver_and_max_size(cli, image):
    proc = cli("run", "--name", "quiet", "--log-driver", "none", image, "echo", "hi")
    assert (proc.returncode, proc.stdout) == (0, "hi\n")  # an attached run still shows the output
    proc = cli("logs", "quiet")
    assert proc.returncode == 125 and "using the 'none' log driver, cannot read logs" in proc.stderr
    assert cli("inspect", "-f", "{{.HostConfig.LogConfig.Type}}|{{.HostConfig.LogConfig.Path}}", "quiet").stdout == \
        "none|\n"
    # above max-size (decimal units, as Podman: 1k = 1000 bytes) conmon starts the log afresh
    script = "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done"
    assert cli("run", "--name", "capped", "--log-opt", "max-size=1k", image, "sh", "-c", script).returncode == 0
    kept = cli("logs", "capped").stdout.splitlines()
    assert 0 < len(kept) < 30 and kept[-1] == "line-299", kept
    assert cli("inspect", "-f", "{{.HostConfig.LogConfig.Size}}", "capped").stdout == "1kB\n"
    for flags, message in ((["--log-driver", "journald"], 'the log driver "journald" is not supported here'),
                           (["--log-driver", "syslog2"], 'invalid log driver "syslog2"'),
                           (["--log-opt", "max_size=1k"], 'invalid log option "max_size=1k"'),
                           (["--log-opt", "max-size=lots"], "invalid size: 'lots'")):
        proc = cli("create", *flags, image, "true")
        assert proc.returncode == 125 and message in proc.stderr, (flags, proc.stderr)


def test_logs_follow_ends_when_the_container_exits(cli, image):
    cid = cli("run", "-d", image, "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done").stdout.strip()
    proc = cli("logs", "-f", cid, timeout=30)
    assert proc.stdout == "1\n2\n3\n"


def test_ps_formats(cli, image):
    cid = cli("run", "-d", "--name", "fmt", "--label", "team=ml", image, "sleep", "100").stdout.strip()
    assert cli("ps", "--no-trunc", "-q").stdout == cid + "\n"
    out = cli("ps", "--format", "table {{.ID}}\t{{.Names}}").stdout.splitlines()
    assert out[0].split() == ["CONTAINER", "ID", "NAMES"] and out[1].split() == [cid[:12], "fmt"]
    assert cli("ps", "--format", "{{.Labels.team}} {{.State}}").stdout == "ml running\n"
    assert json.loads(cli("ps", "--format", "{{json .Labels}}").stdout) == {"team": "ml"}
    proc = cli("ps", "--format", "{{.Nope}}")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: ")
    proc = cli("ps", "--format", "{{.Names")
    assert proc.returncode == 125


def test_inspect_json_and_errors(cli, image):
    cid = cli("create", "--name", "insp", "-e", "FOO=bar", image, "true").stdout.strip()
    data = json.loads(cli("inspect", "insp").stdout)
    assert data[0]["Id"] == cid and "FOO=bar" in data[0]["Config"]["Env"]
    image_data = json.loads(cli("inspect", "busybox").stdout)
    assert image_data[0]["RepoTags"] == ["localhost/busybox:latest"]
    proc = cli("inspect", "nothing")
    assert proc.returncode == 125 and 'no such object: "nothing"' in proc.stderr


def test_images_import_change_and_rmi(cli, image, busybox_tar):
    out = cli("images").stdout.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[1].split()[:2] == ["localhost/busybox", "latest"]
    assert cli("import", "--change", "CMD=echo from-cmd", busybox_tar, "withcmd:v1").returncode == 0
    assert cli("run", "--rm", "withcmd:v1").stdout == "from-cmd\n"
    assert cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.count("withcmd") == 1
    cli("create", "--name", "user", "withcmd:v1")
    proc = cli("rmi", "withcmd:v1")
    assert proc.returncode == 2 and "image is in use by a container" in proc.stderr
    assert cli("image", "exists", "withcmd:v1").returncode == 0
    proc = cli("rmi", "-f", "withcmd:v1")
    assert proc.returncode == 0 and "Deleted:" in proc.stdout
    assert cli("image", "exists", "withcmd:v1").returncode == 1
    assert cli("container", "exists", "user").returncode == 1
    assert cli("rmi", "withcmd:v1").returncode == 1


def test_import_of_a_bad_archive_is_a_clear_error(cli, tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"this is not a tar archive at all" * 40)
    proc = cli("import", str(bad), "bad")
    assert proc.returncode == 125 and proc.stderr.startswith("Error: ")
    assert cli("images", "-q").stdout == ""


def test_info_and_version(cli, image):
    info = cli("info").stdout
    assert "ociRuntime:" in info and "graphRoot:" in info
    assert cli("info", "--format", "{{.Host.OCIRuntime.Name}}").stdout == "runc\n"
    assert "  containerStore:\n    number: 0\n" in info
    assert cli("version", "--format", "{{.Version}}").stdout.strip()


def test_cleanup_command_tolerates_a_lost_race(cli, image):
    assert cli("container", "cleanup", "0123456789ab").returncode == 0


def test_container_outlives_the_cli_process(cli, image):
    cid = cli("run", "-d", image, "sleep", "100").stdout.strip()
    time.sleep(0.2)
    assert cli("inspect", "-f", "{{.State.Running}}", cid).stdout == "true\n"


def test_ps_and_images_json_format(cli, image):
    cid = cli("create", "--name", "js", image, "true").stdout.strip()
    rows = json.loads(cli("ps", "-a", "--format", "json").stdout)
    assert [r["Names"] for r in rows] == ["js"] and rows[0]["ID"] == cid[:12]
    images = json.loads(cli("images", "--format", "json").stdout)
    assert images[0]["Repository"] == "localhost/busybox"
    assert cli("ps", "-a", "--format", "table").stdout.startswith("CONTAINER ID")


def test_commit_diff_export_mount_from_the_cli(cli, image, tmp_path):
    assert cli("run", "--name", "work", image, "sh", "-c", "echo data > /result; rm /bin/vi").returncode == 0
    assert cli("diff", "work").stdout == "C /bin\nD /bin/vi\nC /etc\nA /result\n"  # as podman diff
    proc = cli("commit", "-m", "results", "--change", "CMD cat /result", "work", "results")
    assert proc.returncode == 0 and len(proc.stdout.strip()) == 64
    assert cli("run", "--rm", "results").stdout == "data\n"
    out = tmp_path / "fs.tar"
    assert cli("export", "-o", str(out), "work").returncode == 0
    import tarfile
    with tarfile.open(out) as tar:
        assert tar.extractfile("result").read() == b"data\n"
    path = cli("mount", "work").stdout.strip()
    assert open(f"{path}/result").read() == "data\n"
    assert cli("mount").stdout.split() == [cli("inspect", "-f", "{{.Id}}", "work").stdout.strip()[:12], path]
    assert cli("umount", "work").returncode == 0
    assert not os.path.ismount(path)
    cli("rm", "work")
    assert cli("rmi", "results").returncode == 0


def test_tag_untag_and_bootstrap_busybox(cli, image):
    assert cli("tag", image, "again", "registry.example:5000/team/tool:1.0").returncode == 0
    names = cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert {"localhost/again:latest", "registry.example:5000/team/tool:1.0"} <= set(names)
    assert cli("untag", image, "again").returncode == 0
    proc = cli("untag", image, "again")
    assert (proc.returncode, proc.stderr) == (125, "Error: localhost/again:latest: tag not known\n")
    proc = cli("image", "bootstrap", "busybox", "bb2")
    assert proc.returncode == 0, proc.stderr
    assert cli("run", "--rm", "bb2").returncode == 0  # CMD sh, stdin closed: exits at once
    assert cli("run", "--rm", "bb2", "echo", "ok").stdout == "ok\n"


def test_images_filters_and_image_prune(cli, image):
    assert cli("tag", image, "team/tool:2").returncode == 0
    fmt = ["--format", "{{.Repository}}:{{.Tag}}"]
    assert cli("images", "-f", "reference=team/*", *fmt).stdout == "localhost/team/tool:2\n"
    both = cli("images", "-f", "reference=team/*", "-f", "reference=busybox", *fmt).stdout  # one key: any of
    assert sorted(both.split()) == ["localhost/busybox:latest", "localhost/team/tool:2"]
    assert cli("images", "team/tool:2", *fmt).stdout == "localhost/team/tool:2\n"
    assert cli("images", "-f", "dangling=true", "-q").stdout == ""
    assert cli("images", "-f", "nope=1").returncode == 125
    header, row = cli("images", "--digests", "team/tool:2").stdout.splitlines()
    assert header.split()[:4] == ["REPOSITORY", "TAG", "DIGEST", "IMAGE"] and row.split()[2].startswith("sha256:")
    image_id = cli("images", "-q", "--no-trunc").stdout.split()[0].removeprefix("sha256:")
    cli("untag", image)
    assert cli("images", "-f", "dangling=true", "-q").stdout.strip() == image_id[:12]
    assert cli("image", "prune", "-f").stdout == image_id + "\n"
    assert cli("images", "-q").stdout == ""


def test_save_and_load_from_the_cli(cli, image, tmp_path):
    for fmt, out in [("docker-archive", tmp_path / "a.tar"), ("oci-archive", tmp_path / "o.tar"),
                     ("oci-dir", tmp_path / "layout")]:
        proc = cli("save", "--format", fmt, "-o", str(out), image)
        assert proc.returncode == 0, proc.stderr
        assert cli("rmi", image).returncode == 0
        proc = cli("load", "-i", str(out))
        assert (proc.returncode, proc.stdout) == (0, "Loaded image: localhost/busybox:latest\n"), proc.stderr
        assert cli("run", "--rm", image, "echo", "back").stdout == "back\n"
    proc = cli("save", "--format", "oci-archive", "-o", str(tmp_path / "x.tar"), image, image)
    assert proc.returncode == 125 and "use docker-archive to save several" in proc.stderr
    assert not (tmp_path / "x.tar").exists()
    (tmp_path / "bad.tar").write_bytes(b"not an archive at all" * 100)
    proc = cli("load", "-i", str(tmp_path / "bad.tar"))
    assert proc.returncode == 125 and proc.stderr.startswith(f"Error: loading {tmp_path / 'bad.tar'}: ")
    assert cli("images", "-q").stdout.count("\n") == 1


def test_cp_tar_streams_through_stdin_and_stdout(cli, image, store):
    import io
    import subprocess
    import sys
    import tarfile

    assert cli("run", "-d", "--name", "box", image, "sleep", "60").returncode == 0
    exe = [os.path.join(os.path.dirname(sys.executable), "workbench"), "--root", store["root"],
           "--runroot", store["runroot"]]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("in/notes.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"notes\n"))
        evil = tarfile.TarInfo("../../escape")
        tar.addfile(evil, io.BytesIO(b""))
    proc = subprocess.run([*exe, "cp", "-", "box:/tmp"], input=buf.getvalue(), capture_output=True)
    assert proc.returncode == 125 and b"outside" in proc.stderr  # the hostile entry is refused
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("in/notes.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"notes\n"))
    proc = subprocess.run([*exe, "cp", "-", "box:/tmp"], input=buf.getvalue(), capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert cli("exec", "box", "cat", "/tmp/in/notes.txt").stdout == "notes\n"
    proc = subprocess.run([*exe, "cp", "box:/tmp/in", "-"], capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        assert tar.getnames() == ["in", "in/notes.txt"]
        assert tar.extractfile("in/notes.txt").read() == b"notes\n"  # reading a member, not extracting


def test_widget_flags_say_they_need_a_notebook(cli):
    for args in (["ps", "--widget"], ["stats", "--plot"]):
        proc = cli(*args)
        assert proc.returncode == 125
        assert "shows a widget: use it in a notebook" in proc.stderr


def test_volumes_tmpfs_read_only_and_capabilities_from_the_cli(cli, image, tmp_path):
    (tmp_path / "in.txt").write_text("from the host\n")
    proc = cli("run", "--rm", "--network", "none", "-v", f"{tmp_path}:/data", "--tmpfs", "/scratch:size=1m",
               "--read-only", "--cap-drop", "CHOWN,KILL", image, "sh", "-c",
               "cat /data/in.txt; echo back > /data/out.txt; touch /etc/x || echo ro; grep CapBnd /proc/self/status")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["from the host", "ro"] and not int(lines[2].split()[1], 16) & 0b100001  # CHOWN, KILL
    assert (tmp_path / "out.txt").read_text() == "back\n"
    proc = cli("create", "--mount", "type=image,destination=/v", image, "true")
    assert proc.returncode == 125 and "type=image is not supported yet" in proc.stderr


def test_volume_commands_as_podman(cli, image):
    assert cli("volume", "create", "--label", "project=thesis", "data").stdout == "data\n"
    assert cli("run", "--rm", "--network", "none", "-v", "data:/data", image, "sh", "-c",
               "echo kept > /data/f").returncode == 0
    assert cli("run", "--rm", "--network", "none", "-v", "data:/d:ro", image, "cat", "/d/f").stdout == "kept\n"
    assert cli("volume", "ls").stdout.splitlines() == ["DRIVER      VOLUME NAME", "local       data"]
    assert cli("volume", "ls", "--format", "{{.Name}} {{.Labels}}").stdout == "data map[project:thesis]\n"
    [doc] = json.loads(cli("volume", "inspect", "data").stdout)
    assert (doc["Name"], doc["Driver"], doc["Labels"], doc["NeedsCopyUp"]) == ("data", "local", {"project": "thesis"},
                                                                               False)
    cid = cli("create", "--network", "none", "-v", "data:/data", image, "true").stdout.strip()
    proc = cli("volume", "rm", "data")
    assert proc.returncode == 2 and proc.stderr == (f"Error: volume data is being used by the following container(s): "
                                                    f"{cid}: volume is being used\n")
    assert cli("volume", "rm", "-f", "data").stdout == "data\n"  # the container goes first
    assert cli("container", "exists", cid).returncode == 1
    proc = cli("volume", "rm", "nosuch")
    assert proc.returncode == 1 and proc.stderr == 'Error: no volume with name "nosuch" found: no such volume\n'
    cli("volume", "create", "unused")
    assert cli("volume", "prune", input="").returncode == 125  # no answer to the question
    assert cli("volume", "prune", "-f").stdout == "unused\n"
    assert cli("volume", "exists", "unused").returncode == 1


def test_env_file_and_init(cli, image, tmp_path, monkeypatch):
    env_file = tmp_path / "env.list"
    env_file.write_text("# settings\nA=1\n\nB=two words\nFROM_HOST\n")
    monkeypatch.setenv("FROM_HOST", "host-value")
    proc = cli("run", "--rm", "--network", "none", "--env-file", str(env_file), "-e", "A=override", image,
               "sh", "-c", "echo $A/$B/$FROM_HOST")
    assert proc.stdout == "override/two words/host-value\n", proc.stderr
    env_file.write_text("BAD KEY=1\n")
    proc = cli("create", "--env-file", str(env_file), image, "true")
    assert proc.returncode == 125 and "contains whitespaces" in proc.stderr
    cid = cli("run", "-d", "--network", "none", "--init", image, "sleep", "1000").stdout.strip()
    assert cli("exec", cid, "cat", "/proc/1/cmdline").stdout.split("\0")[:3] == ["/run/podman-init", "--", "sleep"]
    env_file.write_text("IN_EXEC=yes\n")
    assert cli("exec", "--env-file", str(env_file), cid, "sh", "-c", "echo $IN_EXEC").stdout == "yes\n"
    assert cli("inspect", "--format", "{{.HostConfig.Init}} {{.Path}}", cid).stdout == "true /run/podman-init\n"
    start = time.monotonic()
    assert cli("stop", cid).returncode == 0  # the init forwards SIGTERM: no 10 s wait for SIGKILL
    assert time.monotonic() - start < 5
    proc = cli("create", "--init-path", "/nonexistent-init", image, "true")
    assert proc.returncode == 125 and "init binary /nonexistent-init is not an executable file" in proc.stderr


def test_history_shows_how_an_image_was_made_newest_first(cli, image):
    cid = cli("run", "-d", "--network", "none", image, "sh", "-c", "echo x > /f").stdout.strip()
    assert cli("wait", cid).stdout == "0\n"
    committed = cli("commit", "-q", "-m", "added f", cid, "step2").stdout.strip()
    lines = cli("history", "step2").stdout.splitlines()
    assert lines[0].split() == ["ID", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    newest, oldest = lines[1], lines[2]
    assert newest.startswith(committed[:12]) and "sh -c echo x > /f" in newest and newest.endswith("added f")
    base_id = cli("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()
    assert oldest.startswith(base_id[:12]) and "2.1" in oldest  # the base image's step, its layer's size
    assert cli("image", "history", "-q", "--no-trunc", "step2").stdout.split() == [committed, base_id]
    rows = json.loads(cli("history", "--format", "json", "step2").stdout)
    assert rows[0]["SizeBytes"] > 0 and rows[0]["Comment"] == "added f"
    cli("rmi", image, "-f")  # the base image gone: its step is <missing>, as in Podman
    assert cli("history", "-q", "step2").stdout.split()[1] == "<missing>"
    assert cli("history", "nosuch").returncode == 125


def test_rename_as_podman(cli, image):
    cid = cli("create", "--name", "before", "--network", "none", image, "true").stdout.strip()
    cli("create", "--name", "taken", "--network", "none", image, "true")
    assert cli("rename", "before", "after").returncode == 0
    assert cli("inspect", "--format", "{{.Name}}", cid).stdout == "after\n"
    assert cli("container", "exists", "before").returncode == 1
    proc = cli("rename", "after", "taken")
    assert proc.returncode == 125 and "already in use" in proc.stderr
    proc = cli("container", "rename", "after", "bad name")
    assert proc.returncode == 125 and "is invalid" in proc.stderr
    assert cli("rename", "nosuch", "x").returncode == 125


def test_ps_filters_as_podman(cli, image):
    up = cli("run", "-d", "--network", "none", "--name", "up-one", "-l", "team=x", image, "sleep", "100").stdout.strip()
    assert cli("run", "--network", "none", "--name", "failed-one", image, "sh", "-c", "exit 3").returncode == 3
    made = cli("create", "--network", "none", "--name", "made-one", "-v", "notes:/notes", image, "true").stdout.strip()

    def names(*flags: str) -> list[str]:
        return sorted(cli("ps", *flags, "--format", "{{.Names}}").stdout.split())
    assert names("--filter", "status=exited") == ["failed-one"]  # a status filter looks at every container
    assert names("-a", "-f", "status=exited", "-f", "status=created") == ["failed-one", "made-one"]  # any of
    assert names("-a", "-f", "name=one$", "-f", "label=team=x") == ["up-one"]  # all of
    assert names("-a", "-f", "exited=3") == ["failed-one"]
    assert names("-a", "-f", "volume=notes") == ["made-one"]
    assert names("-a", "-f", f"id={up[:6]}") == ["up-one"]
    assert names("-a", "-f", f"ancestor={image}") == ["failed-one", "made-one", "up-one"]
    assert names("-a", "-f", f"since={up}") == ["failed-one", "made-one"] and made
    proc = cli("ps", "-f", "status=bogus")
    assert proc.returncode == 125 and "bogus is not a valid status" in proc.stderr
    assert cli("ps", "-f", "colour=red").returncode == 125


def test_version_flag_as_podman(cli):
    from workbench import __version__

    for flag in ("--version", "-v"):
        proc = cli(flag)
        assert (proc.returncode, proc.stdout) == (0, f"workbench version {__version__}\n")


def test_keep_id_is_refused_as_root_with_podmans_message(cli):
    proc = cli("create", "--pull", "never", "--userns", "keep-id", "localhost/not-needed:latest", "true")
    assert (proc.returncode, proc.stderr) == (125, "Error: keep-id is only supported in rootless mode\n")
