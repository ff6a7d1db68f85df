"""Base images made on this machine: a busybox rootfs from the host's busybox-static."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from typing import Callable

BUSYBOX = "/bin/busybox"
_EPOCH = 946684800  # fixed mtime so the tarball (and so the image ID) is reproducible

_PASSWD = b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
_GROUP = b"root:x:0:\ndaemon:x:1:\ntty:x:5:\nusers:x:100:\nnogroup:x:65534:\n"


def _busybox_applets(busybox: str) -> list[str]:
    out = subprocess.run([busybox, "--list"], capture_output=True, check=True).stdout.decode()
    return sorted({a for a in out.split() if a and "/" not in a and a != "busybox"})


def write_busybox_rootfs(path: str | os.PathLike, busybox: str = BUSYBOX) -> str:
    """Write a rootfs tarball with a static busybox and its applet symlinks; returns `path`."""
    if not os.path.exists(busybox):
        raise FileNotFoundError(f"{busybox} not found: install busybox-static (apt-get install busybox-static)")
    path = os.fspath(path)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname = kind, mode, _EPOCH, link
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d, mode in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755), ("proc", 0o555),
                        ("root", 0o700), ("run", 0o755), ("sys", 0o555), ("tmp", 0o1777), ("usr", 0o755),
                        ("usr/bin", 0o755), ("usr/sbin", 0o755), ("var", 0o755), ("var/tmp", 0o1777)):
            add(d, tarfile.DIRTYPE, mode)
        with open(busybox, "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, 0o755, f.read())
        for applet in sorted(set(_busybox_applets(busybox)) | {"sh"}):
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644, _PASSWD)
        add("etc/group", tarfile.REGTYPE, 0o644, _GROUP)
    return path


def write_debian_rootfs(path: str | os.PathLike, *, suite: str = "bookworm", include: list[str] | None = None,
                        mirror: str | None = None, variant: str = "minbase",
                        on_stage: Callable[[str], None] | None = None) -> str:
    """Write a Debian rootfs tarball with mmdebstrap (from Debian's mirrors, which this machine
    reaches); honours SOURCE_DATE_EPOCH, so the same packages give the same tarball. `on_stage`
    hears each step mmdebstrap reports ("downloading packages with apt", ...)."""
    import shutil

    tool = shutil.which("mmdebstrap")
    if tool is None:
        raise FileNotFoundError("mmdebstrap not found: install it (apt-get install mmdebstrap)")
    path = os.fspath(path)
    argv = [tool, f"--variant={variant}", "--format=tar", "--mode=root"]
    if include:
        argv.append("--include=" + ",".join(include))
    argv += [suite, path, *([mirror] if mirror else [])]
    last = error = ""
    with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, errors="replace") as proc:
        for line in proc.stderr:  # type: ignore[union-attr]
            line = line.strip()
            last = line or last
            if line.startswith("E: "):
                error = error or line[3:]
            elif line.startswith("I: ") and on_stage is not None:
                on_stage(line[3:].rstrip("."))
    if proc.returncode != 0:
        raise RuntimeError(f"mmdebstrap {suite} failed: {error or last or f'exit status {proc.returncode}'}")
    return path
