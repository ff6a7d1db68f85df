"""`build`: a Containerfile's steps in one build container, its changes committed as one layer;
COPY reads only inside the context; a failing step leaves no container and no image."""

from __future__ import annotations

import json
import os

BUILD = """\
# comments and continuations
ARG BASE=localhost/busybox:latest
FROM $BASE
ARG GREETING=hi
ENV APP_HOME=/app \\
    MODE=test
WORKDIR $APP_HOME
COPY data/ ./data/
COPY top.txt /etc/top.txt
RUN echo "$GREETING $MODE" > built.txt
LABEL project=thesis
EXPOSE 8080
CMD ["cat", "built.txt"]
"""


def _context(tmp_path, containerfile: str = BUILD):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("from the context\n")
    os.symlink("/etc/shadow", tmp_path / "data" / "link")
    (tmp_path / "top.txt").write_text("top\n")
    (tmp_path / "Containerfile").write_text(containerfile)
    return tmp_path


def test_a_containerfile_builds_an_image_that_runs(cli, image, tmp_path):
    context = _context(tmp_path)
    proc = cli("build", "--network", "none", "-t", "built:1", "-t", "built:latest", "--build-arg", "GREETING=hello",
               str(context), timeout=180)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "STEP 1/10: FROM localhost/busybox:latest" and "STEP 7/10: RUN echo \"$GREETING $MODE\" > built.txt" in lines
    assert "Successfully tagged localhost/built:1" in lines and "Successfully tagged localhost/built:latest" in lines
    assert len(lines[-1]) == 64
    assert cli("run", "--rm", "--network", "none", "built:1").stdout == "hello test\n"
    out = cli("run", "--rm", "--network", "none", "built:latest", "sh", "-c",
              "pwd; cat data/a.txt /etc/top.txt; readlink data/link; echo $APP_HOME $MODE").stdout
    assert out == "/app\nfrom the context\ntop\n/etc/shadow\n/app test\n"  # a symlink copied as a symlink
    [info] = json.loads(cli("image", "inspect", "built:1").stdout)
    assert info["Config"]["Labels"] == {"project": "thesis"} and info["Config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert info["Config"]["WorkingDir"] == "/app" and len(info["RootFS"]["Layers"]) == 2
    assert info["History"][-10]["created_by"] == "FROM $BASE"
    assert cli("ps", "-a", "-q").stdout == ""  # the build container is gone


def test_a_failing_step_stops_the_build_and_leaves_nothing(cli, image, tmp_path):
    context = _context(tmp_path, f"FROM {image}\nRUN echo before\nRUN exit 3\nRUN echo never\n")
    before = cli("images", "-q").stdout
    proc = cli("build", "--network", "none", "-t", "broken", str(context), timeout=180)
    assert proc.returncode == 125
    assert proc.stderr == 'Error: building at STEP "RUN exit 3": while running runtime: exit status 3\n'
    assert "before" in proc.stdout and "never" not in proc.stdout
    assert cli("ps", "-a", "-q").stdout == "" and cli("images", "-q").stdout == before


def test_copy_reads_only_inside_the_context(cli, image, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    context = tmp_path / "ctx"
    context.mkdir()
    os.symlink(str(outside), context / "escape")
    (context / "Containerfile").write_text(f"FROM {image}\nCOPY ../outside.txt /stolen\n")
    proc = cli("build", "--network", "none", str(context), timeout=180)
    assert proc.returncode == 125 and "could not be found in the build context" in proc.stderr, proc.stderr
    (context / "Containerfile").write_text(f"FROM {image}\nCOPY escape /stolen\n")  # a link leaving the context
    proc = cli("build", "--network", "none", "-t", "linked", str(context), timeout=180)
    assert proc.returncode == 0, proc.stderr
    out = cli("run", "--rm", "--network", "none", "linked", "sh", "-c", "readlink /stolen; cat /stolen").stdout
    assert out == f"{outside}\n"  # copied as the link it is: its target was never read
    assert cli("ps", "-a", "-q").stdout == ""


def test_unsupported_instructions_and_stages_are_named(cli, image, tmp_path):
    for text, message in [(f'FROM {image}\nSHELL ["/bin/sh", "-ec"]\n', "SHELL is not supported"),
                          (f"FROM {image} AS one\nFROM {image}\n", "multi-stage builds"),
                          ("RUN true\n", "the first instruction must be FROM"),
                          (f"FROM {image}\nADD https://example.com/x /x\n", "ADD from a URL is not supported"),
                          (f"FROM {image}\nADD app.tar.gz /app/\n", "ADD of an archive (unpacking it) is not supported")]:
        (tmp_path / "Containerfile").write_text(text)
        proc = cli("build", "--network", "none", str(tmp_path), timeout=180)
        assert proc.returncode == 125 and message in proc.stderr, (text, proc.stderr)
    assert cli("build", str(tmp_path / "missing")).returncode == 125


def test_a_healthcheck_in_the_containerfile_checks_the_containers(cli, image, tmp_path):
    (tmp_path / "Containerfile").write_text(f"FROM {image}\nHEALTHCHECK --interval=1h --retries=1 CMD test -e /ok\n")
    assert cli("build", "--network", "none", "-t", "checked", str(tmp_path), timeout=180).returncode == 0
    check = json.loads(cli("image", "inspect", "-f", "{{json .Config.Healthcheck}}", "checked").stdout)
    assert check == {"Test": ["CMD-SHELL", "test -e /ok"], "Interval": 3600 * 10**9, "Timeout": 30 * 10**9,
                     "StartPeriod": 0, "Retries": 1}
    cli("run", "-d", "--name", "checked", "checked", "sleep", "100")
    assert cli("healthcheck", "run", "checked").stdout == "unhealthy\n"
    cli("run", "-d", "--name", "unchecked", "--no-healthcheck", "checked", "sleep", "100")
    assert "has no defined healthcheck" in cli("healthcheck", "run", "unchecked").stderr


def test_an_entrypoint_drops_the_base_cmd_unless_a_cmd_follows(cli, image, tmp_path):
    (tmp_path / "Containerfile").write_text(f"FROM {image}\nCMD [\"from-base\"]\n")
    assert cli("build", "--network", "none", "-t", "with-cmd", str(tmp_path), timeout=180).returncode == 0
    (tmp_path / "Containerfile").write_text("FROM with-cmd\nENTRYPOINT [\"echo\", \"entry\"]\n")
    assert cli("build", "--network", "none", "-t", "entry-only", str(tmp_path), timeout=180).returncode == 0
    assert cli("run", "--rm", "--network", "none", "entry-only").stdout == "entry\n"  # not "entry from-base"
    (tmp_path / "Containerfile").write_text("FROM with-cmd\nENTRYPOINT [\"echo\"]\nCMD [\"then\", \"cmd\"]\n")
    assert cli("build", "--network", "none", "-t", "entry-cmd", str(tmp_path), timeout=180).returncode == 0
    assert cli("run", "--rm", "--network", "none", "entry-cmd").stdout == "then cmd\n"
