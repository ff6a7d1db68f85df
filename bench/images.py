"""Workbench vs Podman, side by side in one run: image pull, save, load, export and commit.

Usage: .venv/bin/python bench/images.py [--runs N] [--quick]
A Debian+Python image (mmdebstrap; busybox with --quick) is pushed to a local docker-registry on
127.0.0.1, then each engine, on a private temporary store, pulls it, saves it, loads it, exports
a container and commits a container with 50 MB of changes. Every sample is timed on a fresh
state (the pulled image removed first, and so on), alternating the engines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from lifecycle import Engine, cleanup, podman_engine, workbench_engine  # noqa: E402  (also puts the project on sys.path)

from workbench.engine.images.bootstrap import write_busybox_rootfs, write_debian_rootfs  # noqa: E402

TARGETS = {"pull": 0.5, "save": 1.0, "load": 0.3, "export": 1.0, "commit (50 MB)": 1.0}
REPO = "bench/debian-python"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_registry(work: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    config = os.path.join(work, "registry.yml")
    with open(config, "w") as f:
        f.write(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {work}/registry\n"
                f"http:\n  addr: 127.0.0.1:{port}\nlog:\n  level: error\n")
    proc = subprocess.Popen(["docker-registry", "serve", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("docker-registry did not start")


def timed(engine: Engine, *args: str) -> float:
    start = time.perf_counter()
    engine(*args)
    return time.perf_counter() - start


def bench(engines: dict[str, Engine], ref: str, work: str, runs: int, metrics: list[str]) -> dict[str, dict[str, float]]:
    samples: dict[str, dict[str, list[float]]] = {n: {k: [] for k in metrics} for n in engines}
    for e in engines.values():  # warm-up
        e("pull", "--tls-verify=false", ref)
    for _ in range(runs):
        for n, e in engines.items():
            # A container with 50 MB of changes; made untimed, removed before the image is.
            e("run", "--name", "scratch", "--network", "none", ref, "sh", "-c",
              "head -c 52428800 /dev/urandom > /changes.bin")
            if "export" in metrics:
                samples[n]["export"].append(timed(e, "export", "-o", os.path.join(work, f"{n}-export.tar"),
                                                  "scratch"))
            if "commit (50 MB)" in metrics:
                samples[n]["commit (50 MB)"].append(timed(e, "commit", "scratch", f"committed-{n}"))
                e("rmi", f"committed-{n}")
            e("rm", "-f", "-t", "0", "scratch")
            archive = os.path.join(work, f"{n}.tar")
            if "pull" in metrics:
                e("rmi", "-f", ref)
                samples[n]["pull"].append(timed(e, "pull", "--tls-verify=false", ref))
            if "save" in metrics:
                if os.path.exists(archive):
                    os.unlink(archive)
                samples[n]["save"].append(timed(e, "save", "-o", archive, ref))
            if "load" in metrics:
                e("rmi", "-f", ref)
                samples[n]["load"].append(timed(e, "load", "-i", archive))
    return {n: {k: statistics.median(v) for k, v in m.items()} for n, m in samples.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="busybox instead of Debian+Python, 2 runs")
    ap.add_argument("--metrics", default=",".join(TARGETS),
                    help="comma-separated subset of: " + ", ".join(TARGETS) + " (load needs save)")
    opts = ap.parse_args()
    metrics = [m for m in TARGETS if m.split(" ")[0] in opts.metrics.split(",") or m in opts.metrics.split(",")]
    work = tempfile.mkdtemp(prefix="wb-bench-images-")
    registry = None
    try:
        tar = os.path.join(work, "rootfs.tar")
        if opts.quick:
            write_busybox_rootfs(tar)
        else:
            print("building a Debian+Python rootfs with mmdebstrap ...", flush=True)
            write_debian_rootfs(tar, include=["python3"])
        registry, host = start_registry(work)
        ref = f"{host}/{REPO}:latest"
        engines = {"workbench": workbench_engine(work)}
        if shutil.which("podman"):
            engines["podman"] = podman_engine(work)
        seed = next(iter(engines.values()))
        seed("import", "--change", 'CMD ["sh"]', tar, ref)
        seed("push", "--tls-verify=false", ref)
        seed("rmi", ref)
        results = bench(engines, ref, work, 2 if opts.quick else opts.runs, metrics)
        _report(results, metrics)
        if journal_less_ext4(work):
            print("\nnote: the stores are on ext4 without a journal. A pull or load timed right after rmi that "
                  "lands where the removed layer was waits on the kernel's scan of recently freed inodes, seconds "
                  "per sample. Workbench places new layers away from the ones it removed in the last minutes "
                  "(LayerStore.create_apart); Podman's figures may include such waits.")
    finally:
        if registry is not None:
            registry.kill()
            registry.wait()
        cleanup(work)
    return 0


def journal_less_ext4(path: str) -> bool:
    """Whether `path` is on ext4 without a journal. There ext4 does not reuse an inode freed in
    the last 60-360 s, and each new file first checks every such inode of its block group
    (recently_deleted() in fs/ext4/ialloc.c): a pull or load right after `rmi` slows down a lot
    when its layer lands where a removed one was."""
    st = os.stat(path)
    device = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields, _, rest = line.partition(" - ")
            if fields.split()[2] == device and rest.split()[0] == "ext4":
                name = os.path.basename(rest.split()[1])
                try:
                    with open(f"/sys/fs/ext4/{name}/journal_task") as task:
                        return task.read().strip() == "<none>"
                except OSError:
                    return False
    return False


def _report(results: dict[str, dict[str, float]], metrics: list[str]) -> None:
    wb, pm = results["workbench"], results.get("podman")
    print(f"\n{'metric':<18}{'workbench':>12}{'podman':>12}{'ratio':>8}  target")
    for key in metrics:
        target = TARGETS[key]
        w, p = wb[key], (pm or {}).get(key)
        ratio = w / p if p else None
        verdict = "" if ratio is None else f"<= {target} " + ("ok" if ratio <= target else "MISSED")
        print(f"{key:<18}{w:>10.2f} s{(f'{p:10.2f} s') if p else '           -':>12}"
              f"{(f'{ratio:8.2f}') if ratio else '       -'}  {verdict}")


if __name__ == "__main__":
    raise SystemExit(main())
