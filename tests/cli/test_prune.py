"""Prunes and `system df` through the CLI: what goes, what stays, the question asked first."""

from __future__ import annotations

import os


def _names(cli) -> list[str]:
    return sorted(cli("ps", "-a", "--format", "{{.Names}}").stdout.split())


def test_container_prune_removes_every_container_not_running(cli, image):
    cli("run", "-d", "--name", "up", image, "sleep", "100")
    made = cli("create", "--name", "made", image, "true").stdout.strip()
    assert cli("run", "--name", "done", "-l", "keep=yes", image, "true").returncode == 0
    done = cli("inspect", "-f", "{{.Id}}", "done").stdout
    proc = cli("container", "prune", input="")  # no answer: nothing happens, the user is told how to confirm
    assert proc.returncode == 125 and "confirm with -f/--force" in proc.stderr
    proc = cli("container", "prune", input="n\n")
    assert proc.returncode == 0 and proc.stdout.startswith("WARNING! This will remove all non running containers.")
    assert _names(cli) == ["done", "made", "up"]
    proc = cli("container", "prune", "-f", "--filter", "label!=keep")  # keeps the labelled one
    assert (proc.returncode, proc.stdout) == (0, made + "\n")
    assert cli("container", "prune", "-f", "--filter", "until=1h").stdout == ""  # made within the hour
    proc = cli("container", "prune", input="y\n")
    assert proc.stdout.endswith("[y/N] " + done)
    assert _names(cli) == ["up"]
    proc = cli("container", "prune", "-f", "--filter", "color=red")
    assert proc.returncode == 125 and "container prune supports label, label! and until" in proc.stderr


def test_system_prune_lists_what_went_and_the_space(cli, image, tmp_path):
    cli("run", "-d", "--name", "up", image, "sleep", "100")
    cli("run", "--name", "writer", "-v", "/scratch", image, "sh", "-c", "head -c 300000 /dev/zero > /big")
    cli("volume", "create", "kept-by-up")
    cli("volume", "create", "unused")
    cli("network", "create", "spare")
    cli("tag", image, "second")
    cli("rmi", image)  # the image stays, as second: busybox was a name of it
    proc = cli("system", "prune", "-f")
    lines = proc.stdout.splitlines()
    assert lines[0] == "Deleted Containers" and len(lines[1]) == 64
    assert lines[2:4] == ["Deleted Networks", "spare"]
    assert lines[4].startswith("Total reclaimed space: 30") and lines[4].endswith("kB")  # the writer's 300 kB
    assert cli("volume", "ls", "-q").stdout.split() != []  # volumes only with --volumes
    cli("stop", "-t", "0", "up")
    proc = cli("system", "prune", "-f", "--all", "--volumes")
    sections = [line for line in proc.stdout.splitlines() if line.startswith("Deleted ")]
    assert sections == ["Deleted Containers", "Deleted Volumes", "Deleted Images"]
    assert "unused" in proc.stdout and "kept-by-up" in proc.stdout
    assert cli("images", "-q").stdout == "" and cli("volume", "ls", "-q").stdout == "" and _names(cli) == []


def test_system_df_counts_what_is_used_and_what_a_prune_gives_back(cli, image, store):
    cli("run", "-d", "--name", "up", image, "sleep", "100")
    cli("run", "--name", "writer", image, "sh", "-c", "head -c 200000 /dev/zero > /big")
    cli("volume", "create", "idle")
    with open(os.path.join(store["root"], "volumes", "idle", "_data", "blob"), "wb") as f:
        f.write(b"x" * 50_000)
    proc = cli("system", "df", "--format", "{{.Type}}|{{.Total}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}")
    rows = [line.split("|") for line in proc.stdout.splitlines()]
    assert rows[0][:3] == ["Images", "1", "1"] and rows[0][4] == "0B (0%)"
    assert rows[1] == ["Containers", "2", "1", "200kB", "200kB (100%)"]
    assert rows[2] == ["Local Volumes", "1", "0", "50kB", "50kB (100%)"]
    table = cli("system", "df").stdout.splitlines()
    assert table[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
