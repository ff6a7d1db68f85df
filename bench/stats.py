"""Workbench vs Podman, side by side in one run: one `stats --no-stream -a` snapshot of N running containers.

Usage: .venv/bin/python bench/stats.py [--containers 50] [--runs 15]
Both engines use private, temporary stores and `--network none`; everything they started is
removed at the end, also on failure. Podman is optional: without it only Workbench's figure is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lifecycle import (  # noqa: E402
    Engine,
    cleanup,
    interleaved_medians,
    podman_engine,
    workbench_engine,
)

from workbench.engine.images.bootstrap import write_busybox_rootfs  # noqa: E402

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
        medians = interleaved_medians(
            {name: (lambda e=e: e.timed("stats", "--no-stream", "-a")) for name, e in engines.items()}, opts.runs)
        floor = interleaved_medians({name: (lambda e=e: e.timed("version")) for name, e in engines.items()},
                                    opts.runs)
    finally:
        _cleanup(list(engines.values()), work)
    _report(medians, floor, opts.containers)
    return 0


def _report(medians: dict[str, float], floor: dict[str, float], count: int) -> None:
    """The snapshot's medians and ratio; `version` shows what each CLI costs before any work."""
    print(f"\n{'median':<34}{'workbench':>11}{'podman':>11}{'ratio':>8}")
    for label, values in ((f"stats --no-stream -a ({count} running)", medians), ("version (CLI start)", floor)):
        wb, pm = values["workbench"], values.get("podman")
        ratio = f"{wb / pm:8.2f}" if pm else "       -"
        print(f"{label:<34}{wb:9.3f} s{(f'{pm:9.3f} s') if pm else '         -':>11}{ratio}")
    if "podman" in medians:
        ratio = medians["workbench"] / medians["podman"]
        print(f"target: stats ratio <= {TARGET}: " + ("ok" if ratio <= TARGET else "MISSED"))


if __name__ == "__main__":
    raise SystemExit(main())
