"""Shared fixtures: an isolated Runtime per test and a busybox image built from busybox-static."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

ROOT_REQUIRED = "the engine tests drive runc, conmon and overlay mounts, which need root"


@pytest.fixture(scope="session")
def busybox_tar(tmp_path_factory) -> str:
    from workbench.engine.images.bootstrap import write_busybox_rootfs

    return write_busybox_rootfs(tmp_path_factory.mktemp("images") / "busybox.tar")


@pytest.fixture
def store(tmp_path):
    """Paths of an isolated graph root and run root; the networks made in it are removed after
    the test (bridges and firewall rules are the host's, they would outlive the temp dir)."""
    paths = {"root": str(tmp_path / "root"), "runroot": str(tmp_path / "run")}
    yield paths
    if os.path.exists(os.path.join(paths["root"], "state.db")):
        from workbench import Runtime

        runtime = Runtime(paths["root"], paths["runroot"])
        _remove_networks(runtime)
        runtime.close()


@pytest.fixture
def rt(store):
    """An isolated Runtime; every container it made is force-removed afterwards."""
    if os.geteuid() != 0:
        pytest.fail(ROOT_REQUIRED)
    from workbench import Runtime

    runtime = Runtime(store["root"], store["runroot"])
    yield runtime
    for c in sorted(runtime.containers(), key=lambda c: c.config.created, reverse=True):  # joiners first
        try:
            c.remove(force=True, timeout=0)
        except Exception as exc:  # report, but keep cleaning
            print(f"teardown: removing {c.id}: {exc}", file=sys.stderr)
    runtime.close()
    _kill_leftover_conmons(store["runroot"])


def _remove_networks(runtime) -> None:
    """Bridges and firewall rules are the host's: a store's networks go with the store."""
    for (name,) in runtime.db.query("SELECT name FROM networks"):
        try:
            runtime.networks.remove(name)
        except Exception as exc:
            print(f"teardown: removing network {name}: {exc}", file=sys.stderr)


def _kill_leftover_conmons(runroot: str) -> None:
    out = subprocess.run(["pgrep", "-f", f"conmon.*{runroot}"], capture_output=True, text=True).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), 9)
        except ProcessLookupError:
            pass


@pytest.fixture
def busybox(rt, busybox_tar):
    """The name of a busybox image imported into `rt`."""
    rt.import_image(busybox_tar, "busybox")
    return "localhost/busybox:latest"


@pytest.fixture
def until():
    """until(predicate, timeout=10.0): poll predicate() until it is true; whether it became so."""
    def poll(predicate, timeout: float = 10.0, interval: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return bool(predicate())
    return poll


@pytest.fixture
def cli(store):
    """Run the `workbench` CLI on the isolated store; returns CompletedProcess (text)."""
    exe = os.path.join(os.path.dirname(sys.executable), "workbench")

    def run(*args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([exe, "--root", store["root"], "--runroot", store["runroot"], *args],
                              capture_output=True, text=True, input=input, timeout=timeout)
    yield run
    # `run` uses the bridge network by default: its bridge and rules are the host's, remove them
    if os.path.exists(os.path.join(store["root"], "state.db")):
        from workbench import Runtime

        runtime = Runtime(store["root"], store["runroot"])
        if runtime.db.query("SELECT name FROM networks"):
            run("rm", "-a", "-f", "-t", "0")  # containers first: a network in use cannot go
        runtime.close()


# --------------------------------------------------------------------------- docker-registry
DOCKER_REGISTRY = "/usr/bin/docker-registry"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class DockerRegistry:
    """/usr/bin/docker-registry serving a temp dir on a free 127.0.0.1 port."""

    def __init__(self, workdir: str, htpasswd: str | None = None):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        auth = f"auth:\n  htpasswd:\n    realm: workbench-test\n    path: {htpasswd}\n" if htpasswd else ""
        config = os.path.join(workdir, "config.yml")
        with open(config, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {workdir}/data\n"
                    f"http:\n  addr: {self.host}\n{auth}")
        self.log = open(os.path.join(workdir, "registry.log"), "w")
        self.proc = subprocess.Popen([DOCKER_REGISTRY, "serve", config], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"docker-registry did not start; see {self.log.name}")
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def start_registry():
    """start(workdir, htpasswd=None): a DockerRegistry, stopped when the session ends."""
    if not os.path.exists(DOCKER_REGISTRY):
        pytest.fail(f"{DOCKER_REGISTRY} is missing: run scripts/setup.sh")
    servers: list[DockerRegistry] = []

    def start(workdir: str, htpasswd: str | None = None) -> DockerRegistry:
        servers.append(DockerRegistry(workdir, htpasswd))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def registry(start_registry, tmp_path_factory):
    """An open registry (plain HTTP, so clients need tls_verify=False or an insecure entry)."""
    return start_registry(str(tmp_path_factory.mktemp("registry")))
