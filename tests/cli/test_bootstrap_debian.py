"""`image bootstrap debian`: a real Debian image from the mirrors with mmdebstrap (tens of seconds)."""

from __future__ import annotations


def test_bootstrap_debian_image_runs(cli):
    proc = cli("image", "bootstrap", "debian", "deb", timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip()) == 64
    run = cli("run", "--rm", "deb", "sh", "-c", "cat /etc/debian_version; command -v apt-get")
    assert run.returncode == 0, run.stderr
    version, apt = run.stdout.split()
    assert version.startswith("12.") and apt == "/usr/bin/apt-get"
    assert cli("inspect", "--format", "{{.Config.Cmd}}", "deb").stdout.strip() == "[bash]"
    cli("rmi", "deb")
