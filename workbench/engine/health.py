"""Healthchecks, as Podman's: a command run in the container whose exit code makes it `healthy`,
or after `retries` failures in a row `unhealthy`; failures within the start period do not count.

Podman schedules the checks with systemd timers, which a daemonless engine (and Podman on this
machine, without systemd) does not have. Here each running container with a healthcheck and an
interval has a monitor instead: a shell loop in its own session, started with the container and
killed at pause and clean-up, that runs `workbench healthcheck run` every interval and ends when
the container no longer runs. The results live in `<container dir>/healthcheck.log` (JSON: the
status, the failing streak, the last LOG_ENTRIES runs), as Podman keeps them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from .errors import ContainerStateError, InvalidArgument, WorkbenchError
from .state import ContainerState as S

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .container import Container

SECOND = 1_000_000_000  # durations are nanoseconds, as in Podman's Config.Healthcheck
DEFAULTS = {"Interval": 30 * SECOND, "Timeout": 30 * SECOND, "StartPeriod": 0, "Retries": 3}
LOG_ENTRIES = 5
OUTPUT_LIMIT = 4096  # bytes of a run's output kept in the log
ON_FAILURE = ("none", "kill", "restart", "stop")

# $1 the interval in seconds, then the CLI's argv: a check every interval while it says healthy
# (0) or not (1); anything else (the container stopped, or went away) ends the loop.
_MONITOR = 'interval=$1; shift; while sleep "$interval"; do "$@" >/dev/null 2>&1; [ $? -le 1 ] || exit 0; done'


def parse_test(command: str) -> list[str]:
    """`--health-cmd`: a JSON array (["CMD", "pg_isready"], ["CMD-SHELL", "..."]; other arrays are
    a command as ["CMD", ...]) or a shell command line; "none" disables the image's check."""
    text = command.strip()
    if not text:
        raise InvalidArgument("--health-cmd: empty healthcheck command")
    if text.lower() == "none":
        return ["NONE"]
    if text.startswith("["):
        try:
            words = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"--health-cmd: not a JSON array of strings: {exc}") from None
        if not words or not all(isinstance(w, str) for w in words):
            raise InvalidArgument("--health-cmd: not a JSON array of strings")
        if words[0] in ("CMD", "CMD-SHELL", "NONE"):
            if words[0] != "NONE" and len(words) < 2:
                raise InvalidArgument(f"--health-cmd: {words[0]} needs a command")
            return words
        return ["CMD", *words]
    return ["CMD-SHELL", text]


def from_instruction(value: str) -> dict[str, Any]:
    """A Containerfile's `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--retries=N]
    CMD command` (shell or JSON form), or `HEALTHCHECK NONE`, as an image's Healthcheck."""
    options: dict[str, str] = {}
    rest = value.strip()
    while rest.startswith("--"):
        option, *tail = rest.split(None, 1)
        rest = tail[0] if tail else ""
        name, sep, setting = option[2:].partition("=")
        if name not in ("interval", "timeout", "start-period", "retries") or not sep:
            raise InvalidArgument(f'HEALTHCHECK: unknown option "--{name}"')
        options[name] = setting
    keyword, *tail = rest.split(None, 1) or [""]
    command = tail[0] if tail else ""
    if keyword.upper() == "NONE" and not command:
        return {"Test": ["NONE"]}
    if keyword.upper() != "CMD":
        raise InvalidArgument("HEALTHCHECK: use [OPTIONS] CMD command, or NONE")
    if not command.strip():
        raise InvalidArgument("HEALTHCHECK: CMD needs a command")
    test = parse_test(command)
    try:
        retries = int(options.get("retries", DEFAULTS["Retries"]))
    except ValueError:
        raise InvalidArgument(f'HEALTHCHECK: --retries must be a number, not "{options["retries"]}"') from None
    return {"Test": test, "Interval": _duration(options.get("interval"), "--interval", DEFAULTS["Interval"]),
            "Timeout": _duration(options.get("timeout"), "--timeout", DEFAULTS["Timeout"]),
            "StartPeriod": _duration(options.get("start-period"), "--start-period", 0, allow_disable=True),
            "Retries": retries}


def _duration(value: str | int | float | None, flag: str, default: int, *, allow_disable: bool = False) -> int:
    from .logs import parse_duration

    if value is None:
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        nanos = int(value * SECOND)
    elif allow_disable and str(value) == "disable":
        return 0
    else:
        nanos = parse_duration(str(value))
        if nanos is None:
            raise InvalidArgument(f'invalid {flag} "{value}": a duration such as 30s, 1m30s or 500ms')
    if nanos < 0 or (nanos < SECOND and not (allow_disable and nanos == 0)):
        raise InvalidArgument(f'{flag} must be at least 1 second, not "{value}"')
    return nanos


def config(image_check: dict[str, Any] | None, *, cmd: str | None = None, interval: str | int | float | None = None,
           timeout: str | int | float | None = None, start_period: str | int | float | None = None,
           retries: int | None = None, on_failure: str | None = None, disabled: bool = False
           ) -> tuple[dict[str, Any], str]:
    """(Config.Healthcheck, the on-failure action) from the flags over the image's HEALTHCHECK;
    ({}, "none") when there is none or it is disabled."""
    action = on_failure or "none"
    if action not in ON_FAILURE:
        raise InvalidArgument(f'invalid --health-on-failure "{action}": use none, kill, restart or stop')
    if disabled:
        if cmd or interval is not None or timeout is not None or start_period is not None or retries is not None:
            raise InvalidArgument("--no-healthcheck conflicts with the --health-* options")
        return {}, "none"
    base = {**DEFAULTS, **(image_check or {})}
    test = parse_test(cmd) if cmd else list(base.get("Test") or [])
    if not test or test[0] == "NONE":
        if interval is not None or timeout is not None or start_period is not None or retries is not None:
            raise InvalidArgument("the --health-* options need a healthcheck command: --health-cmd")
        return {}, "none"
    if retries is not None and retries < 1:
        raise InvalidArgument(f"--health-retries must be at least 1, not {retries}")
    check = {"Test": test,
             "Interval": _duration(interval, "--health-interval", base["Interval"] or DEFAULTS["Interval"],
                                   allow_disable=True),
             "Timeout": _duration(timeout, "--health-timeout", base["Timeout"] or DEFAULTS["Timeout"]),
             "StartPeriod": _duration(start_period, "--health-start-period", base["StartPeriod"], allow_disable=True),
             "Retries": retries if retries is not None else base["Retries"] or DEFAULTS["Retries"]}
    return check, action


# -- results ------------------------------------------------------------------------------------------
def _log_path(c: "Container") -> str:
    return os.path.join(c.bundle, "healthcheck.log")


def status(c: "Container") -> dict[str, Any]:
    """Podman's State.Health: Status (starting, healthy, unhealthy; "" without a healthcheck),
    FailingStreak, Log (the last runs)."""
    if not c.config.healthcheck:
        return {"Status": "", "FailingStreak": 0, "Log": None}
    try:
        with open(_log_path(c)) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return {"Status": "starting", "FailingStreak": 0, "Log": []}


def _save(c: "Container", health: dict[str, Any]) -> None:
    path = _log_path(c)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(health, f)
    os.replace(tmp, path)


def reset(c: "Container") -> None:
    """A (re)started container is `starting` again; the log of earlier runs stays."""
    if c.config.healthcheck:
        _save(c, {**status(c), "Status": "starting", "FailingStreak": 0})


def _timestamp(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts).astimezone().isoformat()


def run(c: "Container") -> str:
    """Run the container's healthcheck once and record the result: its status afterwards. The
    on-failure action follows a result of `unhealthy`."""
    check = c.config.healthcheck
    if not check:
        raise WorkbenchError(f"container {c.id} has no defined healthcheck")
    if c.state != S.RUNNING:
        raise ContainerStateError(f"container {c.id} is not running")
    argv = ["/bin/sh", "-c", check["Test"][1]] if check["Test"][0] == "CMD-SHELL" else list(check["Test"][1:])
    started = time.time()
    try:
        result = c.exec(argv, timeout=check["Timeout"] / SECOND)
        code, output = result.exit_code, (result.stdout + result.stderr)[:OUTPUT_LIMIT].decode(errors="replace")
    except TimeoutError:
        code, output = -1, f"healthcheck command exceeded timeout of {check['Timeout'] / SECOND:g}s"
    except WorkbenchError as exc:  # the command cannot run: 127 not found, 126 not executable, ...
        code, output = exc.exit_code, str(exc)
    ended = time.time()
    from . import events

    def record(c: "Container") -> str:
        health = status(c)
        if code == 0:
            health["Status"], health["FailingStreak"] = "healthy", 0
        elif started < c.st.started_at + check["StartPeriod"] / SECOND:
            pass  # failures while the container starts up do not count
        else:
            health["FailingStreak"] += 1
            if health["FailingStreak"] >= check["Retries"]:
                health["Status"] = "unhealthy"
        entry = {"Start": _timestamp(started), "End": _timestamp(ended), "ExitCode": code, "Output": output}
        health["Log"] = [*(health.get("Log") or []), entry][-LOG_ENTRIES:]
        _save(c, health)
        events.container(c, "health_status", health_status=health["Status"])
        return health["Status"]
    outcome = c.batch(record)
    if outcome == "unhealthy":
        _act_on_failure(c)
    return outcome


def _act_on_failure(c: "Container") -> None:
    action = c.config.health_on_failure
    try:
        if action == "kill":
            c.kill()
        elif action == "stop":
            c.stop()
        elif action == "restart":
            c.restart()
    except WorkbenchError:  # it stopped meanwhile
        pass


# -- the monitor ---------------------------------------------------------------------------------------
def start_monitor(c: "Container") -> None:
    """Start the container's monitor (a check every interval), if it has a healthcheck with one."""
    check = c.config.healthcheck
    if not check or not check["Interval"] or c.st.health_pid:
        return
    proc = subprocess.Popen(
        ["/bin/sh", "-c", _MONITOR, "workbench-health", f"{check['Interval'] / SECOND:g}",
         *c.rt.cli(), "healthcheck", "run", c.id],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True)  # outlives this process; stop_monitor() ends it
    c.st.health_pid, c.st.health_started = proc.pid, _started(proc.pid)


def stop_monitor(c: "Container") -> None:
    """End the container's monitor and a check it runs (its process group), when it is still ours."""
    pid, c.st.health_pid = c.st.health_pid, 0
    if not pid:
        return
    killed = _started(pid) == c.st.health_started  # the same process, not a later one with its pid
    if killed:
        try:
            if os.getpgid(0) == pid:  # a check the monitor runs acts on its failure: it ends the loop, not itself
                os.kill(pid, signal.SIGKILL)
            else:
                os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            killed = False
    try:
        os.waitpid(pid, 0 if killed else os.WNOHANG)  # reaped, if this process started it
    except ChildProcessError:
        pass


def _started(pid: int) -> int:
    """When the process started (clock ticks since boot; 0: no such process). Unlike its command
    line, this is there from the fork on."""
    from .exits import proc_stat

    found = proc_stat(pid)
    return int(found[1][19]) if found else 0
