"""The host's cgroup set-up (limits and stats arrive with the resources work)."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=1)
def layout() -> str:
    """'v2' (unified), 'hybrid' (v1 controllers plus a cgroup2 mount) or 'v1'."""
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split(" - ") for line in f]
    except OSError:
        return "v1"
    v2_at_root = any(p[1].startswith("cgroup2 ") and p[0].split()[4] == "/sys/fs/cgroup" for p in mounts if len(p) > 1)
    if v2_at_root:
        return "v2"
    if any(p[1].startswith("cgroup2 ") for p in mounts if len(p) > 1):
        return "hybrid"
    return "v1"


def is_v2() -> bool:
    """Whether /sys/fs/cgroup is the unified (v2) hierarchy."""
    return layout() == "v2"
