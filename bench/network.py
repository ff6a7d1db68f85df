"""Workbench vs Podman (netavark), side by side in one run: container networking speed.

Usage: .venv/bin/python bench/network.py [--runs N] [--count N] [--quick]

Measured, each engine on a private temporary store with the same imported busybox image:
  - `run --rm --network bridge IMAGE true` on the default bridge network: median of --runs (10)
    samples, the engines alternating each round;
  - starting --count (50) detached containers (`run -d --network benchnet IMAGE sleep 1000`) one
    after another on a network made for the purpose: total wall time. Removing them is not timed.
--quick is a smoke run: 3 samples and 10 containers. Podman's network configs go to a private
directory too (--network-config-dir), so its `system reset` cannot touch /etc/containers/networks.
Podman is optional: when it is missing or its bridge networking cannot work here, the reason is
printed and only Workbench's figures are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import NoReturn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lifecycle import (  # noqa: E402  (also puts the project on sys.path)
    Engine,
    cleanup,
    interleaved_medians,
    podman_engine,
    workbench_engine,
)

from workbench.engine.images.bootstrap import write_busybox_rootfs  # noqa: E402

IMAGE, NETWORK = "localhost/bench/busybox", "benchnet"
RUN_RM, START_MANY = "run --rm (bridge)", "start N on a network"
TARGETS = {RUN_RM: 0.5, START_MANY: 0.5}


def make_podman(work: str) -> Engine:
    """lifecycle.py's Podman, with its network configs kept under `work` as well."""
    podman = podman_engine(work)
    podman.argv += ["--network-config-dir", os.path.join(work, "pm-net")]
    return podman


def podman_problem(podman: Engine) -> str:
    """Why Podman's bridge networking cannot be measured here, or "" when it works."""
    info = podman("info", "--format", "{{.Host.NetworkBackend}}", check=False)
    if info.returncode != 0:
        return f"podman info failed: {info.stderr.strip()}"
    if info.stdout.strip() != "netavark":
        return f"network backend is {info.stdout.strip()!r}, not netavark"
    probe = podman("run", "--rm", "--network", "bridge", IMAGE, "true", check=False)
    return f"podman run --network bridge failed: {probe.stderr.strip()}" if probe.returncode != 0 else ""


def bench_run_rm(engines: dict[str, Engine], runs: int) -> dict[str, float]:
    return interleaved_medians(
        {n: (lambda e=e: e.timed("run", "--rm", "--network", "bridge", IMAGE, "true")) for n, e in engines.items()},
        runs)


def bench_start_many(engine: Engine, count: int) -> float:
    """Seconds to start `count` detached containers on NETWORK one after another; the containers
    and the network are removed afterwards, untimed."""
    engine("network", "create", NETWORK)
    start = time.perf_counter()
    ids = [engine("run", "-d", "--network", NETWORK, IMAGE, "sleep", "1000").stdout.strip() for _ in range(count)]
    elapsed = time.perf_counter() - start
    engine("rm", "-f", "-t", "0", *ids)
    engine("network", "rm", "-f", NETWORK)
    return elapsed


def _interrupt(signum: int, _frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def teardown(stores: dict[str, Engine], work: str) -> None:
    """Remove every container and network of both private stores, reset Podman's, delete them all;
    Ctrl-C and SIGTERM are ignored meanwhile so that the cleanup itself is not cut short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for name, engine in stores.items():
        engine("rm", "-a", "-f", "-t", "0", check=False)
        engine("network", "rm", "-f", NETWORK, check=False)
        if name == "workbench":  # its default network too: a bridge and nft rules on the host
            for network in engine("network", "ls", "-q", check=False).stdout.split():
                engine("network", "rm", "-f", network, check=False)
        else:
            engine("system", "reset", "--force", check=False)
    cleanup(work)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="samples of run --rm")
    ap.add_argument("--count", type=int, default=50, help="containers started on one network")
    ap.add_argument("--quick", action="store_true", help="3 samples, 10 containers: a smoke run")
    opts = ap.parse_args()
    runs, count = (3, min(opts.count, 10)) if opts.quick else (opts.runs, opts.count)
    signal.signal(signal.SIGTERM, _interrupt)
    work = tempfile.mkdtemp(prefix="wb-bench-net-")
    stores = {"workbench": workbench_engine(work)}
    if shutil.which("podman"):
        stores["podman"] = make_podman(work)
    else:
        print("podman is not installed: printing Workbench's figures only (apt-get install podman)")
    try:
        tar = write_busybox_rootfs(os.path.join(work, "busybox.tar"))
        for engine in stores.values():
            engine("import", tar, "bench/busybox")
        engines = dict(stores)
        problem = podman_problem(stores["podman"]) if "podman" in stores else ""
        if problem:
            print(f"podman: bridge networking cannot be measured here, Workbench's figures only: {problem}")
            del engines["podman"]
        results = {RUN_RM: bench_run_rm(engines, runs),
                   START_MANY: {n: bench_start_many(e, count) for n, e in engines.items()}}
        _report(results, count)
    finally:
        teardown(stores, work)
    return 0


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
