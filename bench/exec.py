"""Workbench vs Podman, side by side in one run: exec latency and exec output throughput.

Usage: .venv/bin/python bench/exec.py [--runs N] [--tput-runs N] [--quick]
Each engine gets a private, temporary store and one running container (`sleep 100000`,
`--network none`). Latency is `exec true`; throughput is `exec cat` of a 100 MB file with the
output read fully by this process. Podman has no in-process API, so Workbench's Python API is
compared against Podman's CLI. Podman is optional: without it only Workbench's figures are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lifecycle import (  # noqa: E402  (also puts the project on sys.path)
    Engine,
    cleanup,
    interleaved_medians,
    podman_engine,
    workbench_engine,
    workbench_store,
)

from workbench import Runtime  # noqa: E402
from workbench.engine.images.bootstrap import write_busybox_rootfs  # noqa: E402

IMAGE, NAME, BIG = "localhost/bench/busybox", "bench-exec", "/tmp/big"
# (metric, workbench sample, unit, target): latency ratios are workbench/podman and must be <= target,
# throughput ratios are workbench/podman MiB/s and must be >= target. Podman's figure is always its CLI.
ROWS = [("in-process exec true", "api", "ms", 0.35), ("CLI exec true", "cli", "ms", 0.7),
        ("exec cat, in-process", "api cat", "MiB/s", 1.0), ("exec cat, session", "session cat", "MiB/s", 1.0),
        ("exec cat, CLI", "cli cat", "MiB/s", 1.0)]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cli_cat(e: Engine, size: int) -> None:
    """`exec cat` through the CLI, its stdout piped into this process and counted."""
    proc = subprocess.Popen(e.argv + ["exec", NAME, "cat", BIG], stdout=subprocess.PIPE, env=e.env)
    n, buf = 0, bytearray(1 << 20)
    while got := proc.stdout.readinto(buf):
        n += got
    proc.stdout.close()
    assert proc.wait() == 0 and n == size, f"{e.name} exec cat: exit {proc.returncode}, {n} bytes"


def api_cat(c, size: int) -> None:
    res = c.exec(["cat", BIG])
    assert res.exit_code == 0 and len(res.stdout) == size, f"exec cat: exit {res.exit_code}, {len(res.stdout)} bytes"


def session_cat(c, size: int) -> None:
    n = 0
    with c.exec_session(["cat", BIG], tty=False, stdin=False) as s:
        for _stream, data in s:
            n += len(data)
        code = s.wait()
    assert code == 0 and n == size, f"exec_session cat: exit {code}, {n} bytes"


def bench(engines: dict[str, Engine], rt: Runtime, runs: int, tput_runs: int, size: int) -> dict[str, float]:
    """Medians in seconds, keyed "api", "cli", "api cat", ... for Workbench and "podman[ cat]" for Podman."""
    c, wb, pm = rt.container(NAME), engines["workbench"], engines.get("podman")

    def api_true() -> None:
        assert c.exec(["true"]).exit_code == 0

    latency = {"api": lambda: timed(api_true), "cli": lambda: wb.timed("exec", NAME, "true")}
    throughput = {"api cat": lambda: timed(lambda: api_cat(c, size)),
                  "session cat": lambda: timed(lambda: session_cat(c, size)),
                  "cli cat": lambda: timed(lambda: cli_cat(wb, size))}
    if pm is not None:
        latency["podman"] = lambda: pm.timed("exec", NAME, "true")
        throughput["podman cat"] = lambda: timed(lambda: cli_cat(pm, size))
    return {**interleaved_medians(latency, runs), **interleaved_medians(throughput, tput_runs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help="samples per latency metric")
    ap.add_argument("--tput-runs", type=int, default=5, help="samples per throughput metric")
    ap.add_argument("--quick", action="store_true", help="fewer runs and a 10 MB file, for a smoke run")
    opts = ap.parse_args()
    runs, tput_runs = (min(opts.runs, 10), min(opts.tput_runs, 3)) if opts.quick else (opts.runs, opts.tput_runs)
    size = (10 if opts.quick else 100) << 20
    work = tempfile.mkdtemp(prefix="wb-bench-")
    engines: dict[str, Engine] = {}
    rt = None
    try:
        tar = write_busybox_rootfs(os.path.join(work, "busybox.tar"))
        engines["workbench"] = workbench_engine(work)
        if shutil.which("podman"):
            engines["podman"] = podman_engine(work)
        else:
            print("podman is not installed: printing Workbench's figures only (apt-get install podman)")
        for e in engines.values():
            e("import", tar, "bench/busybox")
            e("run", "-d", "--network", "none", "--name", NAME, IMAGE, "sleep", "100000")
            e("exec", NAME, "sh", "-c", f"head -c {size} /dev/zero > {BIG}")
        rt = Runtime(*workbench_store(work))
        _report(bench(engines, rt, runs, tput_runs, size), size, "podman" in engines)
    finally:
        if rt is not None:
            rt.close()
        for e in engines.values():
            e("rm", "-f", "-t", "0", NAME, check=False)
        cleanup(work)
    return 0


def _report(medians: dict[str, float], size: int, with_podman: bool) -> None:
    print(f"\n{'metric':<24}{'workbench':>14}{'podman':>14}{'ratio':>8}  target   (cat: {size >> 20} MiB)")
    for label, key, unit, target in ROWS:
        pm_key = "podman cat" if "cat" in key else "podman"
        as_unit = (lambda s: s * 1000) if unit == "ms" else (lambda s: size / (1 << 20) / s)
        w = as_unit(medians[key])
        p = as_unit(medians[pm_key]) if with_podman else None
        cell = f"{p:8.1f} {unit:<5}" if p is not None else f"{'-':>8}      "
        if p is None:
            print(f"{label:<24}{w:8.1f} {unit:<5}{cell}{'-':>8}")
            continue
        ratio = w / p
        ok = ratio <= target if unit == "ms" else ratio >= target
        print(f"{label:<24}{w:8.1f} {unit:<5}{cell}{ratio:8.2f}  {'<=' if unit == 'ms' else '>='} {target} "
              f"{'ok' if ok else 'MISSED'}")
    if not with_podman:
        print("\n(no podman: Workbench's figures only)")


if __name__ == "__main__":
    raise SystemExit(main())
