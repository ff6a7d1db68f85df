"""Workbench vs Podman, side by side in one run: one stats snapshot of N running containers.

Usage: .venv/bin/python bench/stats.py [--containers 50] [--runs 15]
Workbench's snapshot is timed twice, against the same `podman stats --no-stream -a`: in-process
(`list(rt.stats(all=True))` on a long-lived Runtime, as a notebook takes it; Podman has no
in-process API) and through its CLI. The target is judged on the in-process figure, as issue 2's
in-process run is: the CLI's figure is bounded below by the interpreter's start, shown by
`version`. Both engines use private, temporary stores and `--network none`; everything they
started is removed at the end, also on failure. Podman is optional: without it only Workbench's
figures are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lifecycle import (  # noqa: E402
    Engine,
    cleanup,
    interleaved_medians,
    podman_engine,
    workbench_engine,
    workbench_store,
)

from workbench.engine.images.bootstrap import write_busybox_rootfs  # noqa: E402
from workbench.engine.runtime import Runtime  # noqa: E402

TARGET = 0.5
IMAGE = "localhost/bench/busybox"


def start_containers(engine: Engine, count: int) -> None:
    """`count` busybox containers sleeping, created then started in one command."""
    ids = [engine("create", "--network", "none", IMAGE, "sleep", "1000").stdout.strip() for _ in range(count)]
    engine("start", *ids)
    running = engine("ps", "-q").stdout.split()
    if len(running) != count:
        raise RuntimeError(f"{engine.name}: {len(running)} of {count} containers running")


def snapshot_rows(engine: Engine) -> int:
    """Rows one snapshot prints (a sanity check that both engines report every container)."""
    return len(engine("stats", "--no-stream", "-a").stdout.splitlines()) - 1


def _cleanup(engines: list[Engine], work: str) -> None:
    """Remove every container through its engine, then stray processes (by pid), mounts and files."""
    for engine in engines:
        engine("rm", "-a", "-f", "-t", "0", check=False)
    cleanup(work)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--runs", type=int, default=15)
    opts = ap.parse_args()
    work = tempfile.mkdtemp(prefix="wb-bench-stats-")
    engines: dict[str, Engine] = {}
    try:
        tar = write_busybox_rootfs(os.path.join(work, "busybox.tar"))
        engines["workbench"] = workbench_engine(work)
        if shutil.which("podman"):
            engines["podman"] = podman_engine(work)
        else:
            print("podman is not installed: printing Workbench's figure only (apt-get install podman)")
        for engine in engines.values():
            engine("import", tar, IMAGE)
            start_containers(engine, opts.containers)
            rows = snapshot_rows(engine)
            if rows != opts.containers:
                raise RuntimeError(f"{engine.name} stats printed {rows} rows for {opts.containers} containers")
        rows = {"in-process rt.stats()": in_process_snapshots(workbench_store(work), engines.get("podman"),
                                                              opts.containers, opts.runs),
                "CLI stats --no-stream -a": interleaved_medians(
                    {name: (lambda e=e: e.timed("stats", "--no-stream", "-a")) for name, e in engines.items()},
                    opts.runs),
                "version (CLI start)": interleaved_medians(
                    {name: (lambda e=e: e.timed("version")) for name, e in engines.items()}, opts.runs)}
    finally:
        _cleanup(list(engines.values()), work)
    _report(rows, opts.containers)
    return 0


def in_process_snapshots(store: tuple[str, str], podman: Engine | None, count: int, runs: int) -> dict[str, float]:
    """A long-lived Runtime's snapshot of every container against Podman's CLI one, interleaved."""
    rt = Runtime(*store)

    def once() -> float:
        start = time.perf_counter()
        records = list(rt.stats(all=True))
        elapsed = time.perf_counter() - start
        if len(records) != count:
            raise RuntimeError(f"rt.stats() gave {len(records)} records for {count} containers")
        return elapsed
    fns: dict[str, Callable[[], float]] = {"workbench": once}
    if podman is not None:
        fns["podman"] = lambda: podman.timed("stats", "--no-stream", "-a")
    try:
        return interleaved_medians(fns, runs)
    finally:
        rt.close()


def _report(rows: dict[str, dict[str, float]], count: int) -> None:
    """Each row's medians and ratio; `version` shows what each CLI costs before any work."""
    print(f"\n{f'median, {count} running':<34}{'workbench':>11}{'podman':>11}{'ratio':>8}")
    for label, values in rows.items():
        wb, pm = values["workbench"], values.get("podman")
        ratio = f"{wb / pm:8.2f}" if pm else "       -"
        print(f"{label:<34}{wb:9.3f} s{(f'{pm:9.3f} s') if pm else '         -':>11}{ratio}")
    judged = rows["in-process rt.stats()"]
    if "podman" in judged:
        ratio = judged["workbench"] / judged["podman"]
        print(f"target: in-process snapshot ratio <= {TARGET}: " + ("ok" if ratio <= TARGET else "MISSED"))


if __name__ == "__main__":
    raise SystemExit(main())
