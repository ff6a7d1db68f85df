"""Resource limits: parsed and checked once, for create and for update, before anything runs.

cgroup limits become the OCI `linux.resources` subset Workbench sets (memory, cpu, pids,
blockIO); process limits (`--ulimit`, `--oom-score-adj`) and the size of /dev/shm go into the
process and mounts of the spec. Errors use Podman's words where Podman has them, and catch
before the runtime what Podman leaves to runc (cpu-shares, cpus above the machine's, memory
below what any container needs).
"""

from __future__ import annotations

import os
import re

from . import logger
from .errors import InvalidArgument
from .oci.spec import PIDS_LIMIT as DEFAULT_PIDS_LIMIT
from .oci.spec import SHM_SIZE as DEFAULT_SHM_SIZE
from .records import TypedDict

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

log = logger.get(__name__)

#: Docker's minimum: below this not even a shell starts.
MIN_MEMORY = 6 * 1024 * 1024
CPU_PERIOD = 100_000
UNLIMITED = -1

_SIZE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss",
            "rtprio", "rttime", "sigpending", "stack")


class Limits(TypedDict, total=False):
    """The cgroup limits create, run and update take (sizes as bytes or "256m", cpus as 0.5)."""

    memory: int | str
    memory_swap: int | str  # memory plus swap; -1: unlimited swap
    memory_reservation: int | str
    memory_swappiness: int
    cpus: float | str
    cpu_shares: int
    cpu_quota: int
    cpu_period: int
    cpuset_cpus: str
    cpuset_mems: str
    pids_limit: int  # <= 0: unlimited
    blkio_weight: int


def parse_size(value: int | str, what: str) -> int:
    """Bytes from 1024, "64m", "1.5GiB" (binary multiples, as Podman)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise InvalidArgument(f"invalid value for {what}: invalid size: '{value}'")
        return value
    match = _SIZE.match(str(value).strip())
    if not match:
        raise InvalidArgument(f"invalid value for {what}: invalid size: '{value}'")
    number, unit = match.groups()
    try:
        amount = float(number)
    except ValueError:
        raise InvalidArgument(f"invalid value for {what}: invalid size: '{value}'") from None
    return int(amount * 1024 ** ("kmgtp".index(unit.lower()) + 1 if unit else 0))


def human_size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % (scale // 1024 or 1) == 0:
            return f"{n / scale:g}{unit}"
    return f"{n}B"


def resources(limits: Limits, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The OCI resources for `limits`, on top of `current` (update) or the defaults (create).

    Only what is given changes; the whole result is then checked, so an update cannot leave
    an impossible combination (memory above memory+swap, say).
    """
    unknown = set(limits) - set(Limits.__annotations__)
    if unknown:
        raise InvalidArgument(f"unknown resource limit: {', '.join(sorted(unknown))}")
    res = _copy(current) if current is not None else {"pids": {"limit": DEFAULT_PIDS_LIMIT}}
    _memory(res, limits, creating=current is None)
    _cpu(res, limits)
    if limits.get("pids_limit") is not None:
        value = int(limits["pids_limit"])
        res["pids"] = {"limit": value if value > 0 else UNLIMITED}
    if limits.get("blkio_weight"):
        weight = int(limits["blkio_weight"])
        if not 10 <= weight <= 1000:
            raise InvalidArgument(f"range of blkio weight is from 10 to 1000, not {weight}")
        if _blkio_weight_supported():
            res["blockIO"] = {"weight": weight}
        else:
            log.warning("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
    return {k: v for k, v in res.items() if v}


def _blkio_weight_supported() -> bool:
    """Whether the I/O scheduler takes weights (BFQ or CFQ on v1, io.weight on v2)."""
    from . import cgroups

    if cgroups.is_v2():
        return "io" in _read(os.path.join(cgroups.ROOT, "cgroup.controllers"), "").split()
    root = cgroups.controller_dir("blkio", "/")
    return bool(root) and any(os.path.exists(os.path.join(root, name)) for name in ("blkio.weight", "blkio.bfq.weight"))


def _swap_accounting() -> bool:
    """v1 needs the kernel's swap accounting (memory.memsw.*) for a memory+swap limit."""
    from . import cgroups

    if cgroups.is_v2():
        return True
    root = cgroups.controller_dir("memory", "/")
    return bool(root) and os.path.exists(os.path.join(root, "memory.memsw.limit_in_bytes"))


def _copy(res: dict[str, Any]) -> dict[str, Any]:
    return {key: dict(value) if isinstance(value, dict) else value for key, value in res.items()}


def _memory(res: dict[str, Any], limits: Limits, *, creating: bool) -> None:
    mem = res.setdefault("memory", {})
    old_limit, old_swap = mem.get("limit"), mem.get("swap")
    if limits.get("memory") is not None:
        limit = parse_size(limits["memory"], "memory")
        if limit == 0:
            mem.pop("limit", None)
        elif limit < MIN_MEMORY:
            raise InvalidArgument(f"minimum memory limit allowed is 6MB, not {human_size(limit)}")
        else:
            mem["limit"] = limit
    if limits.get("memory_swap") is not None:
        swap = limits["memory_swap"]
        mem["swap"] = UNLIMITED if str(swap).strip() == "-1" else parse_size(swap, "memory-swap")
        if mem["swap"] == 0:
            mem.pop("swap")
    elif mem.get("limit") != old_limit and (creating or old_swap is None or old_swap == 2 * (old_limit or 0)):
        if mem.get("limit"):
            mem["swap"] = 2 * mem["limit"]  # Podman: memory+swap defaults to twice the memory limit
        else:
            mem.pop("swap", None)  # lifted with the memory limit it followed
    if limits.get("memory_reservation") is not None:
        reservation = parse_size(limits["memory_reservation"], "memory-reservation")
        if reservation:
            mem["reservation"] = reservation
        else:
            mem.pop("reservation", None)
    if limits.get("memory_swappiness") is not None:
        swappiness = int(limits["memory_swappiness"])
        if not 0 <= swappiness <= 100:
            raise InvalidArgument(f"invalid value: {swappiness}, valid memory swappiness range is 0-100")
        mem["swappiness"] = swappiness
    if mem.get("swap") not in (None, old_swap) and not _swap_accounting():
        log.warning("Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
                    "Memory limited without swap.")
        del mem["swap"]
    limit, swap = mem.get("limit"), mem.get("swap")
    if swap not in (None, UNLIMITED):
        if not limit:
            raise InvalidArgument("you should always set a memory limit when using a memoryswap limit, see usage")
        if swap < limit:
            raise InvalidArgument("minimum memoryswap limit should be larger than memory limit, see usage")
    if limit and mem.get("reservation", 0) > limit:
        raise InvalidArgument("minimum memory limit cannot be less than memory reservation limit, see usage")


def _cpu(res: dict[str, Any], limits: Limits) -> None:
    cpu = res.setdefault("cpu", {})
    if limits.get("cpus") is not None:
        for flag in ("cpu_period", "cpu_quota"):
            if limits.get(flag):
                raise InvalidArgument(f"--{flag.replace('_', '-')} and --cpus cannot be set together")
        try:
            cpus = float(limits["cpus"])
        except ValueError:
            raise InvalidArgument(f"invalid value for cpus: {limits['cpus']!r} is not a number") from None
        available = len(os.sched_getaffinity(0))
        if cpus < 0 or cpus > available:
            raise InvalidArgument(f"range of CPUs is from 0.01 to {available:.2f}, as there are only {available} "
                                  f"CPUs available")
        if cpus:
            cpu["period"], cpu["quota"] = CPU_PERIOD, max(1000, round(cpus * CPU_PERIOD))
        else:
            cpu.pop("period", None)
            cpu.pop("quota", None)
    if limits.get("cpu_period") is not None:
        period = int(limits["cpu_period"])
        if period and not 1000 <= period <= 1_000_000:
            raise InvalidArgument("CPU cfs period cannot be less than 1ms (i.e. 1000) or larger than 1s "
                                  f"(i.e. 1000000), not {period}")
        _set(cpu, "period", period)
    if limits.get("cpu_quota") is not None:
        quota = int(limits["cpu_quota"])
        if 0 < quota < 1000:
            raise InvalidArgument("CPU cfs quota cannot be less than 1ms (i.e. 1000)")
        _set(cpu, "quota", quota if quota >= 0 else UNLIMITED)
    if limits.get("cpu_shares") is not None:
        shares = int(limits["cpu_shares"])
        if shares and not 2 <= shares <= 262144:
            raise InvalidArgument(f"cpu-shares must be between 2 and 262144, not {shares}")
        _set(cpu, "shares", shares)
    for key, what, online in (("cpuset_cpus", "CPUs", "/sys/devices/system/cpu/online"),
                              ("cpuset_mems", "memory nodes", "/sys/devices/system/node/online")):
        value = limits.get(key)
        if value is None:
            continue
        field = "cpus" if key == "cpuset_cpus" else "mems"
        if value == "":
            cpu.pop(field, None)
            continue
        requested = parse_cpu_list(str(value), key.replace("_", " "))
        available = parse_cpu_list(_read(online, "0"), online)
        if not requested <= available:
            raise InvalidArgument(f"requested {what} are not available - requested {value}, "
                                  f"available: {_read(online, '0')}")
        cpu[field] = str(value)


def _set(section: dict[str, Any], key: str, value: int) -> None:
    if value:
        section[key] = value
    else:
        section.pop(key, None)


def parse_cpu_list(text: str, what: str) -> set[int]:
    """{0, 1, 3} from "0-1,3"."""
    out: set[int] = set()
    try:
        for part in text.strip().split(","):
            low, dash, high = part.partition("-")
            first, last = int(low), int(high) if dash else int(low)
            if first < 0 or last < first:
                raise ValueError(part)
            out.update(range(first, last + 1))
    except ValueError:
        raise InvalidArgument(f"invalid value {text} for {what}") from None
    return out


def _read(path: str, default: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip() or default
    except OSError:
        return default


def parse_ulimit(text: str) -> dict[str, Any]:
    """`nofile=1024:2048` -> the OCI rlimit {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}."""
    def fail(why: str) -> InvalidArgument:
        return InvalidArgument(f'ulimit option "{text}" requires name=SOFT:HARD, failed to be parsed: {why}')
    name, sep, values = text.partition("=")
    if not sep:
        raise fail("invalid ulimit argument")
    if name not in _ULIMITS:
        raise fail(f"invalid ulimit type: {name}")
    soft_text, _, hard_text = values.partition(":")
    numbers = []
    for token in (soft_text, hard_text or soft_text):
        try:
            numbers.append(int(token))
        except ValueError:
            raise fail(f'parsing "{token}": invalid syntax') from None
    soft, hard = numbers
    soft_u, hard_u = (_unlimited_or(v) for v in (soft, hard))
    if soft_u > hard_u:
        raise fail(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"type": f"RLIMIT_{name.upper()}", "soft": soft_u, "hard": hard_u}


def _unlimited_or(value: int) -> int:
    return (1 << 64) - 1 if value == -1 else value


def oom_score_adj(value: int) -> int:
    if not -1000 <= int(value) <= 1000:
        raise InvalidArgument(f"oom-score-adj must be between -1000 and 1000, not {value}")
    return int(value)


def shm_size(value: int | str) -> int:
    size = parse_size(value, "shm-size")
    return size or DEFAULT_SHM_SIZE


def explain_rlimit_error(exc: BaseException) -> BaseException:
    """runc's "error setting rlimit type N: operation not permitted" said in a user's words (the
    same exception type, so the exit code stays 126); any other exception unchanged."""
    match = re.search(r"error setting rlimit type (\d+): operation not permitted", str(exc))
    if not match:
        return exc
    import resource

    number = int(match.group(1))
    names = {getattr(resource, f"RLIMIT_{n.upper()}"): n for n in _ULIMITS if hasattr(resource, f"RLIMIT_{n.upper()}")}
    if number not in names:
        return exc
    hard = resource.getrlimit(number)[1]
    return type(exc)(f"{exc}: this system does not let the {names[number]} limit be raised above the caller's "
                     f"hard limit ({'unlimited' if hard == resource.RLIM_INFINITY else hard}); use "
                     f"--ulimit {names[number]}=SOFT:HARD with HARD <= that")


#: What a limit that is no longer set goes back to when a running container is updated.
_LIFTED = {("memory", "limit"): UNLIMITED, ("memory", "swap"): UNLIMITED, ("memory", "reservation"): UNLIMITED,
           ("cpu", "quota"): UNLIMITED, ("cpu", "shares"): 1024, ("pids", "limit"): UNLIMITED}


def update_payload(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The `runc update --resources` document taking a container from `old` to `new` limits.

    runc leaves a field it is not given as it is, so a limit that was lifted is sent as its
    unlimited value (and a cpuset as every online CPU or node).
    """
    payload = _copy(new)
    for (section, key), lifted in _LIFTED.items():
        if key in old.get(section, {}) and key not in new.get(section, {}):
            payload.setdefault(section, {})[key] = lifted
    for field, online in (("cpus", "/sys/devices/system/cpu/online"), ("mems", "/sys/devices/system/node/online")):
        if field in old.get("cpu", {}) and field not in new.get("cpu", {}):
            payload.setdefault("cpu", {})[field] = _read(online, "0")
    return payload
