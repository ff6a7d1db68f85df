"""Workbench vs Podman, side by side in one run: container lifecycle speed and memory.

Usage: .venv/bin/python bench/lifecycle.py [--runs N] [--quick]
Both engines use private, temporary stores and `--network none`. Podman is optional: without
it only Workbench's figures are printed.
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


def podman_engine(work: str) -> Engine:
    """Podman on a private store under `work`, with the settings that let it run here."""
    return Engine("podman", ["podman", "--root", os.path.join(work, "pm"), "--runroot", os.path.join(work, "pm-run"),
                             "--tmpdir", os.path.join(work, "pm-tmp"), "--cgroup-manager", "cgroupfs",
                             "--events-backend", "none"],
                  {"CONTAINERS_CONF": os.path.join(HERE, "podman-containers.conf")})


def cleanup(work: str) -> None:
    """Kill processes naming the private stores (conmon, say) by pid, unmount them, delete them."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if work.encode() in f.read() and int(pid) != os.getpid():
                    print(f"warning: killing leftover process {pid}", file=sys.stderr)
                    os.kill(int(pid), 9)
        except (OSError, ProcessLookupError):
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
    opts = ap.parse_args()
    counts = {"ps": 20, "start": 5} if opts.quick else {"ps": 200, "start": 50}
    work = tempfile.mkdtemp(prefix="wb-bench-")
    try:
        tar = write_busybox_rootfs(os.path.join(work, "busybox.tar"))
        wb_root, wb_run = os.path.join(work, "wb"), os.path.join(work, "wb-run")
        exe = os.path.join(os.path.dirname(sys.executable), "workbench")
        wb = Engine("workbench", [exe, "--root", wb_root, "--runroot", wb_run])
        wb("import", tar, "bench/busybox")
        engines = {"workbench": wb}
        if shutil.which("podman"):
            pm = podman_engine(work)
            pm("import", tar, "bench/busybox")
            engines["podman"] = pm
        else:
            print("podman is not installed: printing Workbench's figures only (apt-get install podman)")
        results = bench_engines(engines, "localhost/bench/busybox", opts.runs, counts)
        rt = Runtime(wb_root, wb_run)
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
        unit = "" if "RSS" in key else " s"
        w = wb[key]
        p = pm[key] if pm else None
        ratio = w / p if p else None
        target = TARGETS.get(key)
        verdict = "" if target is None or ratio is None else (f"<= {target} " + ("ok" if ratio <= target else "MISSED"))
        if "RSS" in key and ratio is not None:
            verdict = "<= 1.0 " + ("ok" if ratio <= 1.0 else "MISSED")
        print(f"{label:<22}{w:>10.3f}{unit:2}{(f'{p:10.3f}' + unit) if p else '         -  ':>12}"
              f"{(f'{ratio:8.2f}') if ratio else '       -'}  {verdict}")
    print(f"\nlong-lived Runtime: RSS {long_lived['rss_growth_mib']:+.1f} MiB, fds {long_lived['fd_growth']:+d}, "
          f"threads {long_lived['thread_growth']:+d}  (target: RSS < 20 MiB, no fd or thread growth)")


if __name__ == "__main__":
    raise SystemExit(main())
