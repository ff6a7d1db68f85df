"""Workbench vs Podman, side by side in one run: container lifecycle speed and memory.

Usage: .venv/bin/python bench/lifecycle.py [--runs N] [--quick] [--rootless [--user NAME]]
Both engines use private, temporary stores and `--network none`. Podman is optional: without
it only Workbench's figures are printed. `--rootless` (as root) runs both engines as an ordinary
user instead (default: wbtest, which scripts/setup.sh creates), rootless Podman against
Workbench's rootless mode.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from workbench import Runtime  # noqa: E402
from workbench.engine.images.bootstrap import write_busybox_rootfs  # noqa: E402

TARGETS = {"in-process run": 0.4, "CLI run --rm": 0.7, "ps -a (200)": 0.5}
ROOTLESS_TARGETS = {"in-process run": 0.5}


class Engine:
    """One engine's command line on a private store."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None):
        self.name, self.argv, self.env = name, argv, {**os.environ, **(env or {})}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.argv + list(args), capture_output=True, text=True, env=self.env)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{self.name} {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def timed(self, *args: str) -> float:
        start = time.perf_counter()
        self(*args)
        return time.perf_counter() - start

    def peak_rss_kib(self, *args: str) -> int:
        """Peak RSS of the CLI process itself (not conmon or the container)."""
        proc = subprocess.Popen(self.argv + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=self.env)
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        return usage.ru_maxrss


def workbench_store(work: str) -> tuple[str, str]:
    """Workbench's private graph root and run root under `work`."""
    return os.path.join(work, "wb"), os.path.join(work, "wb-run")


def workbench_engine(work: str) -> Engine:
    """Workbench's CLI on its private store under `work`, loading bytecode as an installed copy does.

    The package is byte-compiled first: in an editable checkout edited since its last run, or under
    PYTHONDONTWRITEBYTECODE, every command would otherwise compile the changed modules from source
    (10-30 ms a command here), a cost no installed copy pays."""
    import compileall

    import workbench

    compileall.compile_dir(os.path.dirname(workbench.__file__), quiet=1)
    root, runroot = workbench_store(work)
    exe = os.path.join(os.path.dirname(sys.executable), "workbench")
    return Engine("workbench", [exe, "--root", root, "--runroot", runroot])


def podman_engine(work: str) -> Engine:
    """Podman on a private store under `work`, with the settings that let it run here."""
    return Engine("podman", ["podman", "--root", os.path.join(work, "pm"), "--runroot", os.path.join(work, "pm-run"),
                             "--tmpdir", os.path.join(work, "pm-tmp"), "--cgroup-manager", "cgroupfs",
                             "--events-backend", "none"],
                  {"CONTAINERS_CONF": os.path.join(HERE, "podman-containers.conf")})


def _processes_naming(work: str) -> dict[int, str]:
    """pid -> command line of the processes that name `work` (this one excepted)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if work.encode() in cmdline and int(pid) != os.getpid():
            found[int(pid)] = cmdline.replace(b"\0", b" ").decode(errors="replace")[:160]
    return found


def cleanup(work: str, grace: float = 5.0) -> None:
    """Kill processes naming the private stores by pid, unmount them, delete them. A removed
    container's conmon and exit command (`container cleanup`) finish on their own; whatever still
    runs after `grace` seconds is a leftover, killed with a warning."""
    deadline = time.monotonic() + grace
    while (leftovers := _processes_naming(work)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid, command in leftovers.items():
        print(f"warning: killing leftover process {pid}: {command}", file=sys.stderr)
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(work)]
    for mount in reversed(mounts):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)


def interleaved_medians(fns: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    """Median of `runs` timings per engine, alternating engines each round so that drift in the
    machine's load (large here) falls on both sides alike."""
    for fn in fns.values():
        fn()  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            samples[name].append(fn())
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_engines(engines: dict[str, Engine], image: str, runs: int, counts: dict[str, int]) -> dict[str, dict]:
    out: dict[str, dict] = {name: {} for name in engines}

    def record(metric: str, medians: dict[str, float]) -> None:
        for name, value in medians.items():
            out[name][metric] = value

    record("CLI run --rm", interleaved_medians(
        {n: (lambda e=e: e.timed("run", "--rm", "--network", "none", image, "true")) for n, e in engines.items()},
        runs))
    ids = {n: [e("create", "--network", "none", image, "sleep", "1000").stdout.strip()
               for _ in range(counts["ps"])] for n, e in engines.items()}
    record("ps -a (200)", interleaved_medians({n: (lambda e=e: e.timed("ps", "-a")) for n, e in engines.items()},
                                              runs))
    for name, e in engines.items():
        out[name]["start 50"] = e.timed("start", *ids[name][: counts["start"]])
        out[name]["rm -f 200"] = e.timed("rm", "-f", "-t", "0", *ids[name])
        out[name]["CLI peak RSS (MiB)"] = e.peak_rss_kib("run", "--rm", "--network", "none", image, "true") / 1024
    return out


def bench_in_process(rt: Runtime, image: str, runs: int, podman: Engine | None) -> dict[str, float]:
    """In-process `rt.run` against Podman's CLI run (Podman has no in-process API), interleaved."""
    def once() -> float:
        start = time.perf_counter()
        rt.run(image, ["true"], remove=True)
        return time.perf_counter() - start
    fns: dict[str, Callable[[], float]] = {"workbench": once}
    if podman is not None:
        fns["podman"] = lambda: podman.timed("run", "--rm", "--network", "none", image, "true")
    return interleaved_medians(fns, runs)


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def bench_long_lived(rt: Runtime, image: str, n: int) -> dict[str, float]:
    """Run `n` containers in one Runtime; report growth of memory, fds and threads."""
    for _ in range(20):
        rt.run(image, ["true"], remove=True)
    before = (_rss_kib(), len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task")))
    for _ in range(n):
        rt.run(image, ["true"], remove=True)
    after = (_rss_kib(), len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task")))
    return {"rss_growth_mib": (after[0] - before[0]) / 1024, "fd_growth": after[1] - before[1],
            "thread_growth": after[2] - before[2]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--long", type=int, default=1000, help="containers for the long-lived Runtime check")
    ap.add_argument("--quick", action="store_true", help="fewer containers, for a smoke run")
    ap.add_argument("--rootless", action="store_true", help="both engines as an ordinary user (run as root)")
    ap.add_argument("--user", default="wbtest", help="the user of --rootless")
    ap.add_argument("--as-user", action="store_true", help=argparse.SUPPRESS)  # the --rootless run itself
    opts = ap.parse_args()
    if opts.as_user:
        return rootless_run(opts.runs)
    if opts.rootless:
        return as_user(opts)
    counts = {"ps": 20, "start": 5} if opts.quick else {"ps": 200, "start": 50}
    work = tempfile.mkdtemp(prefix="wb-bench-")
    try:
        tar = write_busybox_rootfs(os.path.join(work, "busybox.tar"))
        wb = workbench_engine(work)
        wb("import", tar, "bench/busybox")
        engines = {"workbench": wb}
        if shutil.which("podman"):
            pm = podman_engine(work)
            pm("import", tar, "bench/busybox")
            engines["podman"] = pm
        else:
            print("podman is not installed: printing Workbench's figures only (apt-get install podman)")
        results = bench_engines(engines, "localhost/bench/busybox", opts.runs, counts)
        rt = Runtime(*workbench_store(work))
        for name, value in bench_in_process(rt, "localhost/bench/busybox", opts.runs, engines.get("podman")).items():
            results[name]["in-process run"] = value
        long_lived = bench_long_lived(rt, "localhost/bench/busybox", 100 if opts.quick else opts.long)
        rt.close()
        _report(results, long_lived, counts)
    finally:
        cleanup(work)
    return 0


def _report(results: dict, long_lived: dict, counts: dict) -> None:
    wb, pm = results["workbench"], results.get("podman")
    rows = ["in-process run", "CLI run --rm", "ps -a (200)", "start 50", "rm -f 200", "CLI peak RSS (MiB)"]
    print(f"\n{'metric':<22}{'workbench':>12}{'podman':>12}{'ratio':>8}  target")
    for key in rows:
        label = key.replace("200", str(counts["ps"])).replace("50", str(counts["start"]))
        rss = "RSS" in key
        _row(label, wb[key], pm[key] if pm else None, 1.0 if rss else TARGETS.get(key), "" if rss else " s")
    print(f"\nlong-lived Runtime: RSS {long_lived['rss_growth_mib']:+.1f} MiB, fds {long_lived['fd_growth']:+d}, "
          f"threads {long_lived['thread_growth']:+d}  (target: RSS < 20 MiB, no fd or thread growth)")


def _row(label: str, w: float, p: float | None, target: float | None, unit: str = " s") -> None:
    """One line of a report: both figures, their ratio, and the target's verdict."""
    ratio = w / p if p else None
    verdict = "" if target is None or ratio is None else (f"<= {target} " + ("ok" if ratio <= target else "MISSED"))
    print(f"{label:<22}{w:>10.3f}{unit:2}{(f'{p:10.3f}' + unit) if p else '         -  ':>12}"
          f"{(f'{ratio:8.2f}') if ratio else '       -'}  {verdict}")


# -- rootless: both engines as an ordinary user ---------------------------------------------------
def as_user(opts: argparse.Namespace) -> int:
    """Run this script again as `opts.user` on private stores and a copy of the package it can read."""
    import pwd

    user = pwd.getpwnam(opts.user)
    work = tempfile.mkdtemp(prefix="wb-bench-rootless-")
    os.chmod(work, 0o755)
    try:
        shutil.copytree(os.path.join(os.path.dirname(HERE), "workbench"), os.path.join(work, "pkg", "workbench"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(os.path.join(HERE, "lifecycle.py"), os.path.join(work, "pkg", "lifecycle.py"))
        shutil.copy(os.path.join(HERE, "podman-containers.conf"), os.path.join(work, "pkg", "podman-containers.conf"))
        # compiled by the user's interpreter, so its CLI does not recompile on every start
        subprocess.run(["/usr/bin/python3", "-m", "compileall", "-q", os.path.join(work, "pkg")], check=True)
        for dirpath, _dirs, files in os.walk(os.path.join(work, "pkg")):
            os.chmod(dirpath, 0o755)
            for name in files:
                os.chmod(os.path.join(dirpath, name), 0o644)
        home = os.path.join(work, "home")
        os.mkdir(home, 0o700)
        os.chown(home, user.pw_uid, user.pw_gid)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": home, "XDG_RUNTIME_DIR": home,
               "XDG_DATA_HOME": os.path.join(home, "data"), "PYTHONPATH": os.path.join(work, "pkg"),
               "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        proc = subprocess.run(["/usr/bin/python3", os.path.join(work, "pkg", "lifecycle.py"), "--as-user",
                               "--runs", str(opts.runs)], user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                              env=env, cwd=home)
        return proc.returncode
    finally:
        subprocess.run(["pkill", "-9", "-u", str(user.pw_uid)], capture_output=True)
        cleanup(work)


def rootless_run(runs: int) -> int:
    """As the user: in-process and CLI `run --rm` of Workbench's rootless mode and rootless Podman.

    The in-process Runtime lives in a forked worker (it joins Workbench's user namespace; Podman
    must run outside it, or it would take itself for root)."""
    home = os.environ["HOME"]
    tar = write_busybox_rootfs(os.path.join(home, "busybox.tar"))
    wb = Engine("workbench", [sys.executable, "-m", "workbench"])
    pm = podman_engine(home)
    image = "localhost/bench/busybox"
    wb("import", tar, "bench/busybox")
    engines = {"workbench": wb}
    if shutil.which("podman"):
        pm("import", tar, "bench/busybox")
        engines["podman"] = pm
    results: dict[str, dict] = {name: {} for name in engines}
    cli = interleaved_medians({n: (lambda e=e: e.timed("run", "--rm", "--network", "none", image, "true"))
                               for n, e in engines.items()}, runs)
    for name, value in cli.items():
        results[name]["CLI run --rm"] = value
    worker = _RunWorker(image)
    try:
        fns: dict[str, Callable[[], float]] = {"workbench": worker.run_once}
        if "podman" in engines:
            fns["podman"] = lambda: pm.timed("run", "--rm", "--network", "none", image, "true")
        for name, value in interleaved_medians(fns, runs).items():
            results[name]["in-process run"] = value
    finally:
        worker.close()
        wb("rm", "-a", "-f", check=False)
    wb_res, pm_res = results["workbench"], results.get("podman")
    print(f"\nrootless (uid {os.getuid()}){'':<6}{'workbench':>12}{'podman':>12}{'ratio':>8}  target")
    for key in ("in-process run", "CLI run --rm"):
        _row(key, wb_res[key], (pm_res or {}).get(key), ROOTLESS_TARGETS.get(key))
    return 0


class _RunWorker:
    """A forked child holding a rootless Runtime: each request runs one container and answers
    with the seconds it took."""

    def __init__(self, image: str):
        self.requests_r, self.requests_w = os.pipe()
        self.answers_r, self.answers_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                rt = Runtime()  # joins the user namespace: this process is single-threaded
                rt.run(image, ["true"], remove=True)
                while os.read(self.requests_r, 1) == b"r":
                    start = time.perf_counter()
                    rt.run(image, ["true"], remove=True)
                    os.write(self.answers_w, f"{time.perf_counter() - start:.6f}\n".encode())
                code = 0
            finally:
                os._exit(code)

    def run_once(self) -> float:
        os.write(self.requests_w, b"r")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = os.read(self.answers_r, 64)
            if not chunk:
                raise RuntimeError("the rootless worker died")
            answer += chunk
        return float(answer)

    def close(self) -> None:
        os.write(self.requests_w, b"q")
        os.waitpid(self.pid, 0)


if __name__ == "__main__":
    raise SystemExit(main())
