"""Workbench vs Podman (netavark), side by side in one run: container networking speed.

Usage: .venv/bin/python bench/network.py [--runs N] [--count N] [--quick]

Measured, each engine on a private temporary store with the same imported busybox image:
  - `run --rm --network bridge IMAGE true` on the default bridge network: median of --runs (10)
    samples, the engines alternating each round;
  - starting --count (50) detached containers (`run -d --network benchnet IMAGE sleep 1000`) one
    after another on a network made for the purpose: total wall time. Removing them is not timed.
Each is measured twice for Workbench: through its CLI, and in-process through the Python API
(`Runtime.run`), the way a notebook runs containers (magics and widgets call the API in the
kernel; bench/lifecycle.py measures its in-process run the same way). The targets are judged on
the in-process rows against Podman's CLI (Podman has no in-process API): a CLI command also pays
Python's start and imports (~0.1 s here, pyroute2 alone ~0.1 s more), which a notebook pays once.
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
    workbench_store,
)

from workbench.engine.images.bootstrap import write_busybox_rootfs  # noqa: E402
from workbench.engine.runtime import Runtime  # noqa: E402

IMAGE, NETWORK = "localhost/bench/busybox", "benchnet"
RUN_RM, START_MANY = "run --rm (bridge)", "start N on a network"
IN_PROCESS = "in-process "
TARGETS = {IN_PROCESS + RUN_RM: 0.5, IN_PROCESS + START_MANY: 0.5}
ROWS = [IN_PROCESS + RUN_RM, IN_PROCESS + START_MANY, "CLI " + RUN_RM, "CLI " + START_MANY]


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


def bench_run_rm(engines: dict[str, Engine], rt: Runtime, runs: int) -> dict[str, dict[str, float]]:
    """Median seconds of `run --rm` on the bridge network: metric -> engine -> seconds; the CLIs
    and the in-process run take turns each round."""
    def in_process() -> float:
        start = time.perf_counter()
        rt.run(IMAGE, ["true"], remove=True, network="bridge")
        return time.perf_counter() - start
    fns = {n: (lambda e=e: e.timed("run", "--rm", "--network", "bridge", IMAGE, "true")) for n, e in engines.items()}
    medians = interleaved_medians({**fns, IN_PROCESS: in_process}, runs)
    return _by_metric(RUN_RM, medians)


def bench_start_many(engines: dict[str, Engine], rt: Runtime, count: int) -> dict[str, dict[str, float]]:
    """Seconds to start `count` detached containers on NETWORK one after another, by each CLI and
    in-process; the containers and the network are removed afterwards, untimed."""
    def cli(engine: Engine) -> list[str]:
        return [engine("run", "-d", "--network", NETWORK, IMAGE, "sleep", "1000").stdout.strip() for _ in range(count)]

    def in_process() -> list[str]:
        return [rt.run(IMAGE, ["sleep", "1000"], detach=True, network=NETWORK).id for _ in range(count)]

    seconds = {}
    for name, engine in engines.items():
        engine("network", "create", NETWORK)
        runs = [(name, lambda e=engine: cli(e))] + ([(IN_PROCESS, in_process)] if name == "workbench" else [])
        for who, start_all in runs:
            start = time.perf_counter()
            ids = start_all()
            seconds[who] = time.perf_counter() - start
            engine("rm", "-f", "-t", "0", *ids)
        engine("network", "rm", "-f", NETWORK)
    return _by_metric(START_MANY, seconds)


def _by_metric(metric: str, seconds: dict[str, float]) -> dict[str, dict[str, float]]:
    """{workbench CLI, IN_PROCESS, podman} -> seconds, as metric -> engine -> seconds; Podman's CLI
    figure is the reference of both rows."""
    podman = {"podman": seconds["podman"]} if "podman" in seconds else {}
    return {"CLI " + metric: {"workbench": seconds["workbench"], **podman},
            IN_PROCESS + metric: {"workbench": seconds[IN_PROCESS], **podman}}


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
        rt = Runtime(*workbench_store(work))
        results = {**bench_run_rm(engines, rt, runs), **bench_start_many(engines, rt, count)}
        rt.close()
        _report(results, count)
    finally:
        teardown(stores, work)
    return 0


def _report(results: dict[str, dict[str, float]], count: int) -> None:
    print(f"\n{'metric':<36}{'workbench':>12}{'podman':>12}{'ratio':>8}  target")
    for key in ROWS:
        w, p = results[key]["workbench"], results[key].get("podman")
        ratio = w / p if p else None
        target = TARGETS.get(key)
        verdict = "" if ratio is None or target is None else f"<= {target} " + ("ok" if ratio <= target else "MISSED")
        label = key.replace(" N ", f" {count} ")
        print(f"{label:<36}{w:>10.2f} s{(f'{p:10.2f} s') if p else '           -':>12}"
              f"{(f'{ratio:8.2f}') if ratio else '       -'}  {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())
