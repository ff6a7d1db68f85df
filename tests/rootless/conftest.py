"""Rootless fixtures: the engine run by an ordinary user (scripts/setup.sh creates it, with
subordinate ids), as a separate process, with /usr/bin/python3 and a copy of the package the
user can read (.venv and the checkout may live in root's home)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable

import pytest

from workbench.engine.exits import process_status
from workbench.engine.rootless import IdRange, subordinate_ids

ROOTLESS_USER = os.environ.get("ROOTLESS_USER", "wbtest")
PYTHON = "/usr/bin/python3"
KERNEL_PYTHON = os.path.join(os.environ.get("ROOTLESS_ENV", "/opt/workbench-rootless-kernel"), "bin", "python")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(REPO, "workbench")


class UserStore:
    """One user's private store (XDG_DATA_HOME, XDG_RUNTIME_DIR) and a way to run commands there."""

    def __init__(self, user: pwd.struct_passwd, base: str):
        self.user, self.base = user, base
        self.data = os.path.join(base, "data")
        self.runtime_dir = os.path.join(base, "run")
        self.work = os.path.join(base, "work")  # a directory of the user's, for bind mounts
        for path in (self.data, self.runtime_dir, self.work):
            os.mkdir(path, 0o700)
            os.chown(path, user.pw_uid, user.pw_gid)
        self.root = os.path.join(self.data, "workbench")
        self.runroot = os.path.join(self.runtime_dir, "workbench")

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": self.base,
                "XDG_DATA_HOME": self.data, "XDG_RUNTIME_DIR": self.runtime_dir, "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": os.path.join(os.path.dirname(self.base), "pkg"), "LANG": "C.UTF-8", **extra}

    def run(self, argv: list[str], *, input: str | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout, cwd=self.base,
                              user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[],
                              env=self.env(**(env or {})))

    def notebook(self, path: str) -> subprocess.CompletedProcess:
        """Run a notebook end to end (scripts/run_notebook.py) in a kernel of the user's."""
        if not os.access(KERNEL_PYTHON, os.X_OK):
            pytest.fail(f"{KERNEL_PYTHON} is missing: scripts/setup.sh makes it (the rootless user's kernel)")
        runner = os.path.join(os.path.dirname(self.base), "pkg", "run_notebook.py")
        return self.run([KERNEL_PYTHON, runner, path], timeout=600)

    def cells(self, sources: list[str]) -> subprocess.CompletedProcess:
        """A notebook of these code cells, run as the user; fails the test when a cell fails."""
        import nbformat

        path = os.path.join(self.work, f"cells-{len(os.listdir(self.work))}.ipynb")
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in sources]), path)
        os.chown(path, self.user.pw_uid, self.user.pw_gid)
        proc = self.notebook(path)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    def wb(self, *args: str, **options) -> subprocess.CompletedProcess:
        """`workbench ARGS` as the user."""
        return self.run([PYTHON, "-m", "workbench", *args], **options)

    def ok(self, *args: str, **options) -> str:
        proc = self.wb(*args, **options)
        assert proc.returncode == 0, f"workbench {' '.join(args)}: exit {proc.returncode}: {proc.stderr}"
        return proc.stdout

    def pause_pid(self) -> int | None:
        try:
            with open(os.path.join(self.runroot, "pause.pid")) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def live_pids(self, command: str) -> set[int]:
        """The user's live processes running `command`."""
        return {pid for pid, comm in live_processes(lambda owner: owner == self.user.pw_uid) if comm == command}

    def close(self) -> list[str]:
        """Remove every container, stop the pause process; what the user still runs (leaks)."""
        self.wb("rm", "-a", "-f", "-t", "0")
        pid = self.pause_pid()
        if pid is not None:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        return leftover_processes(self.user.pw_uid, subordinate_ids("/etc/subuid", self.user.pw_uid))


def live_processes(owned_by: Callable[[int], bool]) -> list[tuple[int, str]]:
    """(pid, command) of the processes whose owner passes `owned_by`; zombies are left out (dead
    already: this VM's init reaps them lazily)."""
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        status = process_status(int(name))
        try:
            owner = os.stat(f"/proc/{name}").st_uid
        except OSError:
            continue
        if status is not None and status[1] != "Z" and owned_by(owner):
            found.append((int(name), status[0]))
    return found


def leftover_processes(uid: int, subordinate: IdRange | None = None) -> list[str]:
    """Live processes (up to 2 s after a teardown) of `uid` or of its subordinate id range."""
    def owned_by(owner: int) -> bool:
        return owner == uid or (subordinate is not None and subordinate.start <= owner < subordinate.start
                                + subordinate.count)
    deadline = time.monotonic() + 2
    while (found := live_processes(owned_by)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [f"{pid} {comm}" for pid, comm in found]


@pytest.fixture(scope="module")
def rootless_base():
    """A directory every user can enter, holding a readable copy of the package; removed after."""
    if not os.access(PYTHON, os.X_OK):
        pytest.fail(f"{PYTHON} is missing: run scripts/setup.sh (it installs python3 for the rootless user)")
    base = tempfile.mkdtemp(prefix="wb-rootless-", dir="/tmp")
    os.chmod(base, 0o755)
    shutil.copytree(PACKAGE, os.path.join(base, "pkg", "workbench"), ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(REPO, "scripts", "run_notebook.py"), os.path.join(base, "pkg", "run_notebook.py"))
    shutil.copy(os.path.join(REPO, "notebooks", "01-quickstart.ipynb"), os.path.join(base, "pkg", "quickstart.ipynb"))
    subprocess.run([PYTHON, "-m", "compileall", "-q", os.path.join(base, "pkg")], check=True)  # not on every start
    for dirpath, dirnames, filenames in os.walk(os.path.join(base, "pkg")):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _store(base: str, user: pwd.struct_passwd, name: str) -> UserStore:
    home = os.path.join(base, name)
    os.mkdir(home, 0o755)
    os.chown(home, user.pw_uid, user.pw_gid)
    return UserStore(user, home)


@pytest.fixture(scope="module")
def user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        pytest.fail(f"user {ROOTLESS_USER} is missing: scripts/setup.sh creates it for the rootless tests")


@pytest.fixture(scope="module")
def store(rootless_base, user) -> UserStore:
    """The test user's store with a busybox image `bb`; torn down to nothing afterwards."""
    s = _store(rootless_base, user, "user")
    s.ok("image", "bootstrap", "busybox", "bb")
    yield s
    leaks = s.close()
    assert not leaks, f"processes of {user.pw_name} left after the rootless tests: {leaks}"


@pytest.fixture
def nobody_store(rootless_base) -> UserStore:
    """A store of `nobody`, a user without subordinate ids."""
    user = pwd.getpwnam("nobody")
    s = _store(rootless_base, user, "nobody")
    yield s
    leaks = s.close()
    assert not leaks, f"processes of nobody left: {leaks}"
