"""Workbench vs Podman (netavark), side by side in one run: container networking speed.

Usage: .venv/bin/python bench/network.py [--runs N] [--count N] [--quick]

Measured, each engine on a private temporary store:
  - `run --rm --network bridge IMAGE true` on the default bridge network (median, engines alternating);
  - starting `--count` (50) detached containers one after another on one named network (total).
Podman is optional: without it (or when its bridge networking cannot work here) only Workbench's
figures are printed, with the reason.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lifecycle import Engine, cleanup, interleaved_medians, podman_engine  # noqa: E402

sys.path.insert(0, os.path.dirname(HERE))
from workbench.engine.images.bootstrap import write_busybox_rootfs  # noqa: E402

TARGETS = {"run --rm (bridge)": 0.5, "start N on a network": 0.5}
IMAGE = "localhost/netbench:latest"
NETWORK = "wbbench"


def start_many(engine: Engine, count: int) -> float:
    """Seconds to start `count` detached containers on NETWORK, one after another; removed after."""
    start = time.perf_counter()
    ids = [engine("run", "-d", "--network", NETWORK, IMAGE, "sleep", "1000").stdout.strip() for _ in range(count)]
    elapsed = time.perf_counter() - start
    engine("rm", "-f", "-t", "0", *ids)
    return elapsed


def podman_bridge_problem(podman: Engine) -> str:
    """Why Podman's bridge networking cannot be measured here, or "" when it works."""
    proc = podman("run", "--rm", "--network", "bridge", IMAGE, "true", check=False)
    return proc.stderr.strip() if proc.returncode != 0 else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="3 runs, 10 containers")
    opts = ap.parse_args()
    runs, count = (3, 10) if opts.quick else (opts.runs, opts.count)
    work = tempfile.mkdtemp(prefix="wb-bench-net-")
    engines: dict[str, Engine] = {}
    try:
        tar = write_busybox_rootfs(os.path.join(work, "busybox.tar"))
        exe = os.path.join(os.path.dirname(sys.executable), "workbench")
        engines["workbench"] = Engine("workbench", [exe, "--root", os.path.join(work, "wb"),
                                                    "--runroot", os.path.join(work, "wb-run")])
        podman = podman_engine(work) if _has("podman") else None
        for engine in [engines["workbench"]] + ([podman] if podman else []):
            engine("import", tar, IMAGE)
        if podman is not None:
            problem = podman_bridge_problem(podman)
            if problem:
                print(f"podman: bridge networking does not work here, not measured: {problem}")
            else:
                engines["podman"] = podman
        for engine in engines.values():
            engine("network", "create", NETWORK)
        results = {"run --rm (bridge)": interleaved_medians(
            {n: (lambda e=e: e.timed("run", "--rm", "--network", "bridge", IMAGE, "true")) for n, e in engines.items()},
            runs)}
        results["start N on a network"] = {n: start_many(e, count) for n, e in engines.items()}
        _report(results, count)
    finally:
        for engine in engines.values():
            engine("rm", "-a", "-f", "-t", "0", check=False)
            engine("network", "rm", "-f", NETWORK, check=False)
            engine("network", "rm", "workbench", check=False)
        if "podman" in engines:
            engines["podman"]("system", "reset", "--force", check=False)
        cleanup(work)
    return 0


def _has(command: str) -> bool:
    import shutil

    return shutil.which(command) is not None


def _report(results: dict[str, dict[str, float]], count: int) -> None:
    print(f"\n{'metric':<24}{'workbench':>12}{'podman':>12}{'ratio':>8}  target")
    for key, by_engine in results.items():
        w, p = by_engine["workbench"], by_engine.get("podman")
        ratio = w / p if p else None
        verdict = "" if ratio is None else f"<= {TARGETS[key]} " + ("ok" if ratio <= TARGETS[key] else "MISSED")
        label = key.replace(" N ", f" {count} ")
        print(f"{label:<24}{w:>10.2f} s{(f'{p:10.2f} s') if p else '           -':>12}"
              f"{(f'{ratio:8.2f}') if ratio else '       -'}  {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())
