"""The default seccomp profile: equal in effect to Podman's, valid for runc, enforced for real."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from workbench.engine.oci import seccomp
from workbench.engine.oci.seccomp import PROFILE_SOURCE_NOTE, default_seccomp

PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
RUNC = "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"

DEFAULT_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
)
ALL_CAPS = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
CAP_SETS = {"default": DEFAULT_CAPS, "all": ALL_CAPS, "none": ()}

# What runc 1.1.5 (libcontainer/seccomp/config.go) accepts.
RUNC_ACTIONS = {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}
RUNC_OPS = {"SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ"}
RUNC_ARCHES = {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
               "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
               "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
               "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_RISCV64"}


# --- an independent compiler for Podman's on-disk profile format ----------------------

_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
_SCMP_NATIVE = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}


def _kernel(release: str) -> tuple[int, int]:
    major, minor = re.match(r"(\d+)\.(\d+)", release).groups()
    return int(major), int(minor)


def podman_compile(profile: dict, caps, machine: str, kernel: str) -> dict:
    """What Podman's seccomp.LoadProfile makes of `profile` for this bounding set, arch and kernel."""
    caps, native, running = set(caps), _GO_ARCH[machine], _kernel(kernel)
    arches: list[str] = []
    for entry in profile.get("archMap") or []:
        if entry["architecture"] == _SCMP_NATIVE[native]:
            arches = [entry["architecture"], *entry.get("subArchitectures", [])]
            break
    syscalls = []
    for call in profile["syscalls"]:
        inc, exc = call.get("includes") or {}, call.get("excludes") or {}
        if native in (exc.get("arches") or []) or caps & set(exc.get("caps") or []):
            continue
        if exc.get("minKernel") and running >= _kernel(exc["minKernel"]):
            continue
        if inc.get("arches") and native not in inc["arches"]:
            continue
        if not set(inc.get("caps") or []) <= caps:
            continue
        if inc.get("minKernel") and running < _kernel(inc["minKernel"]):
            continue
        names = ([call["name"]] if call.get("name") else []) + list(call.get("names") or [])
        syscalls.append({"names": names, "action": call["action"], "errnoRet": call.get("errnoRet"),
                         "args": call.get("args") or []})
    return {"defaultAction": profile["defaultAction"], "defaultErrnoRet": profile.get("defaultErrnoRet"),
            "architectures": arches, "syscalls": syscalls}


def decisions(compiled: dict) -> dict[str, list[tuple]]:
    """Per syscall name, its distinct (action, errnoRet, args) rules in the order they are given."""
    out: dict[str, list[tuple]] = {}
    for rule in compiled["syscalls"]:
        args = json.dumps(sorted(({"valueTwo": 0, **a} for a in rule.get("args") or []),
                                 key=lambda a: (a["index"], a["op"], a["value"])), sort_keys=True)
        decision = (rule["action"], rule.get("errnoRet"), args)
        for name in rule["names"]:
            if decision not in out.setdefault(name, []):
                out[name].append(decision)
    return out


@pytest.fixture(scope="module")
def podman_profile() -> dict:
    if not PODMAN_PROFILE.exists():
        pytest.fail(f"{PODMAN_PROFILE} is missing: the seccomp equivalence test compares against "
                    "Podman's profile; run `apt-get install podman` (a test dependency)")
    return json.loads(PODMAN_PROFILE.read_text())


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
@pytest.mark.parametrize("capset", sorted(CAP_SETS))
def test_profile_decides_every_syscall_like_podman(podman_profile, capset, machine):
    kernel = os.uname().release
    ours = default_seccomp(CAP_SETS[capset], arch=machine, kernel=kernel)
    theirs = podman_compile(podman_profile, CAP_SETS[capset], machine, kernel)

    assert (ours["defaultAction"], ours["defaultErrnoRet"]) == (theirs["defaultAction"], theirs["defaultErrnoRet"])
    assert ours["architectures"] == theirs["architectures"]
    ours_d, theirs_d = decisions(ours), decisions(theirs)
    flat = lambda d: {(name, *rule) for name, rules in d.items() for rule in rules}  # noqa: E731
    assert flat(ours_d) - flat(theirs_d) == set()
    assert flat(theirs_d) - flat(ours_d) == set()
    # Same order per syscall too, so conflicting rules (setns) resolve the same way.
    assert ours_d == theirs_d


def test_each_added_capability_gates_like_podman(podman_profile):
    # --cap-add of any single capability: catches a group gated by the wrong capability.
    kernel, differ = os.uname().release, []
    for cap in ALL_CAPS:
        caps = DEFAULT_CAPS + (cap,)
        ours = decisions(default_seccomp(caps, arch="x86_64", kernel=kernel))
        if ours != decisions(podman_compile(podman_profile, caps, "x86_64", kernel)):
            differ.append(cap)
    assert differ == []


def test_capabilities_gate_their_syscalls():
    def rules_for(caps, name):
        return decisions(default_seccomp(caps, arch="x86_64"))[name]

    eperm = ("SCMP_ACT_ERRNO", 1, "[]")
    assert rules_for(DEFAULT_CAPS, "sethostname") == [eperm]
    assert rules_for(DEFAULT_CAPS + ("CAP_SYS_ADMIN",), "sethostname") == [("SCMP_ACT_ALLOW", None, "[]")]
    assert rules_for(DEFAULT_CAPS, "chroot") == [("SCMP_ACT_ALLOW", None, "[]")]
    assert rules_for((), "chroot") == [eperm]
    assert rules_for(ALL_CAPS, "swapoff") == [eperm]
    audit_socket = [r for r in rules_for(DEFAULT_CAPS, "socket") if r[0] == "SCMP_ACT_ERRNO"]
    assert [r[1] for r in audit_socket] == [22]
    assert rules_for(("CAP_AUDIT_WRITE",), "socket") == [("SCMP_ACT_ALLOW", None, "[]")]


def test_output_is_a_valid_runc_seccomp_object():
    for caps in CAP_SETS.values():
        for machine in ("x86_64", "aarch64"):
            profile = json.loads(json.dumps(default_seccomp(caps, arch=machine)))
            assert profile["defaultAction"] in RUNC_ACTIONS
            assert profile["defaultErrnoRet"] == 38
            assert profile["architectures"] and set(profile["architectures"]) <= RUNC_ARCHES
            assert profile["syscalls"]
            for rule in profile["syscalls"]:
                assert set(rule) <= {"names", "action", "errnoRet", "args"}
                assert rule["names"] and len(set(rule["names"])) == len(rule["names"])
                assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", n) for n in rule["names"])
                assert rule["action"] in RUNC_ACTIONS
                if "errnoRet" in rule:
                    assert rule["action"] == "SCMP_ACT_ERRNO" and 0 < rule["errnoRet"] < 4096
                for arg in rule.get("args", []):
                    assert 0 <= arg["index"] <= 5 and arg["op"] in RUNC_OPS
                    assert 0 <= arg["value"] < 2**64 and 0 <= arg["valueTwo"] < 2**64
    assert "own encoding" in PROFILE_SOURCE_NOTE and "seccomp.json" in PROFILE_SOURCE_NOTE


def test_architecture_selects_abis_and_arch_only_syscalls():
    x86 = default_seccomp(DEFAULT_CAPS, arch="x86_64")
    arm = default_seccomp(DEFAULT_CAPS, arch="aarch64")
    assert x86["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert {"arch_prctl", "modify_ldt"} <= decisions(x86).keys()
    assert not {"arch_prctl", "modify_ldt"} & decisions(arm).keys()
    assert "cacheflush" in decisions(arm) and "cacheflush" not in decisions(x86)
    unknown = default_seccomp(DEFAULT_CAPS, arch="riscv64")
    assert unknown["architectures"] == [] and "read" in decisions(unknown)
    assert not {"arch_prctl", "cacheflush"} & decisions(unknown).keys()


def test_min_kernel_rules_follow_the_kernel_release():
    rule = seccomp.Rule(("newcall",), min_kernel=(5, 6))
    assert [s["names"] for s in seccomp._compile([rule], (), "x86_64", "5.6.0-1-amd64")["syscalls"]] == [["newcall"]]
    assert seccomp._compile([rule], (), "x86_64", "5.4.210")["syscalls"] == []
    with pytest.raises(seccomp.SeccompError, match="kernel version"):
        seccomp._compile([rule], (), "x86_64", "unknown")


# --- enforced by runc for real --------------------------------------------------------

def _run_in_runc(tmp_path: Path, script: str, caps) -> subprocess.CompletedProcess:
    """Run `busybox sh -c script` in a runc container confined by default_seccomp(caps)."""
    if os.geteuid() != 0:
        pytest.fail("running runc containers needs root")
    for tool, pkg in ((RUNC, "runc"), (BUSYBOX, "busybox-static")):
        if not os.path.exists(tool):
            pytest.fail(f"{tool} is missing: run `apt-get install {pkg}` (a test dependency)")
    bundle = tmp_path / "bundle"
    (bundle / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, bundle / "rootfs" / "bin" / "busybox")
    subprocess.run([RUNC, "spec", "--bundle", str(bundle)], check=True, capture_output=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"].update(
        terminal=False, args=[BUSYBOX, "sh", "-c", script], noNewPrivileges=False,
        capabilities={k: list(caps) for k in ("bounding", "effective", "permitted")})
    config["linux"]["seccomp"] = default_seccomp(caps)
    (bundle / "config.json").write_text(json.dumps(config))
    root, ctr_id = str(tmp_path / "runcroot"), f"wb-seccomp-{uuid.uuid4().hex[:12]}"
    try:
        return subprocess.run([RUNC, "--root", root, "run", "--bundle", str(bundle), ctr_id],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run([RUNC, "--root", root, "delete", "-f", ctr_id], capture_output=True)


def test_runc_runs_the_container_in_seccomp_filter_mode(tmp_path):
    res = _run_in_runc(tmp_path, "grep Seccomp: /proc/self/status", DEFAULT_CAPS)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "Seccomp:\t2\n"


def test_runc_enforces_personality_filter(tmp_path):
    # personality(PER_LINUX32) is on the allow list; personality(ADDR_NO_RANDOMIZE) matches no rule,
    # so it gets the default ENOSYS (without seccomp it succeeds, unprivileged).
    res = _run_in_runc(tmp_path, "linux32 busybox uname -m; linux64 -R busybox true; echo rc=$?", DEFAULT_CAPS)
    assert res.stdout.split() == [{"x86_64": "i686", "aarch64": "armv8l"}[os.uname().machine], "rc=1"]
    assert "linux64: personality(0x40000): Function not implemented" in res.stderr


def test_runc_denies_swapoff_even_with_cap_sys_admin(tmp_path):
    # With CAP_SYS_ADMIN the kernel alone would answer ENOENT; the profile's EPERM list wins,
    # while the CAP_SYS_ADMIN-gated sethostname becomes allowed.
    res = _run_in_runc(tmp_path, "swapoff /nonexistent; echo rc=$?; hostname wb-sc && hostname",
                       DEFAULT_CAPS + ("CAP_SYS_ADMIN",))
    assert "swapoff: /nonexistent: Operation not permitted" in res.stderr
    assert res.stdout.split() == ["rc=1", "wb-sc"]
