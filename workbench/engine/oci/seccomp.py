"""The default seccomp profile, compiled per container into the OCI `linux.seccomp` object."""

from __future__ import annotations

import errno
import os
import re
from enum import Enum

from .. import logger
from ..records import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Mapping

log = logger.get(__name__)

PROFILE_SOURCE_NOTE = """\
This profile is Workbench's own encoding of the policy Podman 4.3 applies by default
(containers-common 0.50.1, /usr/share/containers/seccomp.json). Its JSON is not shipped or
read at run time: the policy is written below as syscall groups by purpose, an always-EPERM
list, capability-gated groups, arch-specific groups and argument-filtered rules, and
`default_seccomp` compiles it for one container the way Podman's `seccomp.LoadProfile` does
(capabilities of the bounding set, native architecture, kernel version). The result is equal in
effect to Podman's: tests/unit/test_seccomp.py compiles Podman's file independently and
compares the per-syscall decisions. One difference, for speed: on a kernel that runs no x32
system call, the x32 ABI is left out of the architectures (`runnable_arches`).
"""


class SeccompError(ValueError):
    """The profile cannot be compiled for the given input (e.g. an unparsable kernel version)."""


class Action(str, Enum):
    """Seccomp actions this profile uses (names as in the OCI runtime spec)."""

    ALLOW = "SCMP_ACT_ALLOW"
    ERRNO = "SCMP_ACT_ERRNO"


class Op(str, Enum):
    """Argument comparison operators this profile uses."""

    EQ = "SCMP_CMP_EQ"
    NE = "SCMP_CMP_NE"


class Arg(NamedTuple):
    """One argument condition: syscall argument `index` compared with `value`."""

    index: int
    value: int
    op: Op = Op.EQ

    def to_oci(self) -> dict:
        """The OCI `LinuxSeccompArg` object."""
        return {"index": self.index, "value": self.value, "valueTwo": 0, "op": self.op.value}


class Rule(NamedTuple):
    """A set of syscalls with one action, and the conditions under which the rule applies.

    `with_caps`: all must be in the bounding set; `without_caps`: none may be;
    `arches`: Go architecture names of which the native one must be one;
    `min_kernel`: (major, minor) the running kernel must reach.
    """

    names: tuple[str, ...]
    action: Action = Action.ALLOW
    errno_ret: int | None = None
    args: tuple[Arg, ...] = ()
    with_caps: frozenset[str] = frozenset()
    without_caps: frozenset[str] = frozenset()
    arches: frozenset[str] = frozenset()
    min_kernel: tuple[int, int] | None = None

    def to_oci(self) -> dict:
        """The OCI `LinuxSyscall` object (names sorted, empty fields omitted)."""
        out: dict = {"names": sorted(self.names), "action": self.action.value}
        if self.errno_ret is not None:
            out["errnoRet"] = self.errno_ret
        if self.args:
            out["args"] = [a.to_oci() for a in self.args]
        return out


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# --- the policy ---------------------------------------------------------------------

# Unknown and newer syscalls fail with ENOSYS, so programs fall back to older calls
# (e.g. clone3 -> clone) instead of seeing a misleading EPERM.
_DEFAULT_ERRNO = errno.ENOSYS

# Denied for everyone, whatever the capabilities: kernel-global state, obsolete interfaces,
# and primitives common in exploits (userfaultfd, vmsplice) or NUMA page moving.
_ALWAYS_EPERM = _names("""
    kexec_load kexec_file_load swapon swapoff bdflush nfsservctl sysfs uselib ustat
    pciconfig_iobase pciconfig_read pciconfig_write vm86 vm86old
    userfaultfd vmsplice io_pgetevents migrate_pages move_pages
    nice sgetmask ssetmask swapcontext
    oldfstat oldlstat oldstat olduname oldolduname
""")

# Allowed for everyone. Some (mount, unshare, setns, ptrace, reboot, ...) are left to the
# kernel's own capability checks, as Podman does.
_ALLOWED_BY_PURPOSE: Mapping[str, str] = {
    "processes and threads": """
        clone clone3 fork vfork execve execveat exit exit_group wait4 waitid waitpid
        getpid getppid gettid getpgid getpgrp getsid setpgid setsid set_tid_address
        set_robust_list get_robust_list get_thread_area set_thread_area futex futex_time64
        rseq membarrier restart_syscall prctl capget capset ptrace
        pidfd_open pidfd_getfd pidfd_send_signal process_vm_readv process_vm_writev process_mrelease
    """,
    "signals": """
        kill tkill tgkill pause signal sigaction sigaltstack sigpending sigprocmask sigreturn sigsuspend
        signalfd signalfd4 rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
        rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
    """,
    "credentials": """
        getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32 getresuid getresuid32
        getresgid getresgid32 getgroups getgroups32 setuid setuid32 setgid setgid32 setreuid
        setreuid32 setregid setregid32 setresuid setresuid32 setresgid setresgid32 setgroups
        setgroups32 setfsuid setfsuid32 setfsgid setfsgid32
    """,
    "resources and scheduling": """
        getrlimit setrlimit ugetrlimit prlimit64 getrusage getpriority setpriority ioprio_get
        ioprio_set sched_get_priority_max sched_get_priority_min sched_getaffinity sched_setaffinity
        sched_getattr sched_setattr sched_getparam sched_setparam sched_getscheduler
        sched_setscheduler sched_rr_get_interval sched_rr_get_interval_time64 sched_yield getcpu
        times sysinfo uname umask getrandom syslog reboot syscall
    """,
    "memory": """
        brk mmap mmap2 munmap mremap mprotect madvise mincore mlock mlock2 mlockall munlock
        munlockall msync remap_file_pages mbind get_mempolicy set_mempolicy memfd_create
        memfd_secret pkey_alloc pkey_free pkey_mprotect
    """,
    "time and timers": """
        alarm getitimer setitimer gettimeofday time nanosleep clock_nanosleep clock_nanosleep_time64
        clock_gettime clock_gettime64 clock_getres clock_getres_time64 clock_adjtime clock_adjtime64
        adjtimex timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64
        timer_settime timer_settime64 timerfd timerfd_create timerfd_gettime timerfd_gettime64
        timerfd_settime timerfd_settime64
    """,
    "file descriptors and I/O": """
        read write readv writev pread64 pwrite64 preadv preadv2 pwritev pwritev2 lseek _llseek
        close close_range dup dup2 dup3 pipe pipe2 fcntl fcntl64 ioctl flock fsync fdatasync sync
        syncfs sync_file_range readahead fadvise64 fadvise64_64 fallocate sendfile sendfile64
        splice tee copy_file_range
    """,
    "paths and file metadata": """
        open openat openat2 creat access faccessat faccessat2 stat stat64 lstat lstat64 fstat
        fstat64 fstatat64 newfstatat statx statfs statfs64 fstatfs fstatfs64 chdir fchdir getcwd
        mkdir mkdirat rmdir mknod mknodat link linkat symlink symlinkat unlink unlinkat rename
        renameat renameat2 readlink readlinkat chmod fchmod fchmodat chown chown32 fchown
        fchown32 fchownat lchown lchown32 truncate truncate64 ftruncate ftruncate64 utime utimes
        utimensat utimensat_time64 futimesat getdents getdents64 readdir name_to_handle_at
    """,
    "extended attributes": """
        getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr listxattr llistxattr flistxattr
        removexattr lremovexattr fremovexattr
    """,
    "polling, events and async I/O": """
        select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64 epoll_create
        epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old epoll_pwait epoll_pwait2
        eventfd eventfd2 inotify_init inotify_init1 inotify_add_watch inotify_rm_watch
        fanotify_mark io_setup io_destroy io_submit io_cancel io_getevents
    """,
    "sockets (socket(2) itself is argument-filtered below)": """
        socketpair socketcall bind connect listen accept accept4 getsockname getpeername
        getsockopt setsockopt send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg
        recvmmsg_time64 shutdown
    """,
    "System V and POSIX IPC": """
        ipc msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64 semctl shmget
        shmat shmdt shmctl mq_open mq_unlink mq_timedsend mq_timedsend_time64 mq_timedreceive
        mq_timedreceive_time64 mq_notify mq_getsetattr
    """,
    "mounts (the kernel checks CAP_SYS_ADMIN)": """
        mount umount umount2 pivot_root fsopen fsconfig fsmount fspick move_mount open_tree
        mount_setattr
    """,
    "namespaces, keys and self-sandboxing": """
        unshare setns keyctl seccomp landlock_create_ruleset landlock_add_rule landlock_restrict_self
    """,
}

# personality(2) only with these values: PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26,
# and 0xffffffff (query the current persona). ADDR_NO_RANDOMIZE and friends are refused.
_PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# Allowed only on some architectures (Go architecture names, as Podman's profile uses).
_ARCH_SPECIFIC: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"ppc64le"}), "sync_file_range2"),
    (frozenset({"arm", "arm64"}),
     "arm_fadvise64_64 arm_sync_file_range breakpoint cacheflush set_tls sync_file_range2"),
    (frozenset({"amd64", "x32"}), "arch_prctl"),
    (frozenset({"amd64", "x32", "x86"}), "modify_ldt"),
    (frozenset({"s390", "s390x"}), "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr"),
)

# Allowed with the capability in the bounding set, EPERM without it.
_CAP_GATED: tuple[tuple[str, str], ...] = (
    ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
    ("CAP_SYS_ADMIN", "bpf fanotify_init lookup_dcookie perf_event_open quotactl setdomainname sethostname setns"),
    ("CAP_SYS_CHROOT", "chroot"),
    ("CAP_SYS_MODULE", "delete_module finit_module init_module query_module"),
    ("CAP_SYS_PACCT", "acct"),
    ("CAP_SYS_PTRACE", "kcmp process_madvise"),
    ("CAP_SYS_RAWIO", "ioperm iopl"),
    ("CAP_SYS_TIME", "clock_settime clock_settime64 settimeofday stime"),
    ("CAP_SYS_TTY_CONFIG", "vhangup"),
)

# socket(AF_NETLINK, *, NETLINK_AUDIT) fails with EINVAL unless CAP_AUDIT_WRITE (so audit-aware
# programs such as login or sudo carry on without audit); every other socket is allowed.
_AF_NETLINK = 16
_NETLINK_AUDIT = 9


def _build_rules() -> tuple[Rule, ...]:
    """The whole policy as ordered rules (the order of Podman's profile, for identical conflicts)."""
    eperm = {"action": Action.ERRNO, "errno_ret": errno.EPERM}
    allowed = tuple(n for group in _ALLOWED_BY_PURPOSE.values() for n in _names(group))
    rules: list[Rule] = [Rule(_ALWAYS_EPERM, **eperm), Rule(allowed)]
    rules += [Rule(("personality",), args=(Arg(0, value),)) for value in _PERSONALITIES]
    rules += [Rule(_names(names), arches=arches) for arches, names in _ARCH_SPECIFIC]
    for cap, names in _CAP_GATED:
        rules.append(Rule(_names(names), with_caps=frozenset({cap})))
        rules.append(Rule(_names(names), without_caps=frozenset({cap}), **eperm))
    no_audit = frozenset({"CAP_AUDIT_WRITE"})
    rules += [
        Rule(("socket",), Action.ERRNO, errno.EINVAL, without_caps=no_audit,
             args=(Arg(0, _AF_NETLINK), Arg(2, _NETLINK_AUDIT))),
        Rule(("socket",), without_caps=no_audit, args=(Arg(2, _NETLINK_AUDIT, Op.NE),)),
        Rule(("socket",), without_caps=no_audit, args=(Arg(0, _AF_NETLINK, Op.NE),)),
        Rule(("socket",), with_caps=no_audit),
    ]
    return tuple(rules)


RULES: tuple[Rule, ...] = _build_rules()

# uname machine -> (Go architecture name used by rule conditions, seccomp architectures).
# The seccomp list covers the native ABI and its compat ABIs, as Podman's archMap does.
_ARCHES: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "x86_64": ("amd64", ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    "aarch64": ("arm64", ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM")),
    "s390x": ("s390x", ("SCMP_ARCH_S390X", "SCMP_ARCH_S390")),
    # Not in Podman's archMap: an empty list makes the runtime filter the native ABI only.
    "ppc64le": ("ppc64le", ()),
    "i686": ("x86", ()),
    "i386": ("x86", ()),
    "armv7l": ("arm", ()),
}


# --- compilation --------------------------------------------------------------------

def default_seccomp(capabilities: Iterable[str], arch: str | None = None,
                    kernel: str | None = None) -> dict:
    """The OCI `linux.seccomp` object for a container with this bounding capability set.

    `arch` is a uname machine name (default: this host's), `kernel` a kernel release
    (default: the running kernel's); both only matter for rules conditioned on them. For this
    host (no `arch` given) an ABI its kernel cannot run is left out, see `runnable_arches`.
    """
    profile = _compile(RULES, capabilities, arch or os.uname().machine, kernel)
    if arch is None:
        profile["architectures"] = runnable_arches(profile["architectures"])
    return profile


_X32_GETPID = 0x40000000 | 39  # getpid(2) through the x32 ABI: x86_64's number with the x32 bit


def runnable_arches(arches: list[str]) -> list[str]:
    """`arches` without SCMP_ARCH_X32 when this kernel runs no x32 system call (built without
    CONFIG_X86_X32_ABI, or x32 off at boot, as on Debian by default).

    runc builds the filter for each architecture listed, ~9 ms apiece here, on every container
    start; an x32 entry on such a kernel filters calls the kernel refuses anyway. Without it, a
    process that makes an x32 call is killed (SIGSYS) where it would have got ENOSYS: no program
    can use the x32 ABI there either way. A kernel that runs x32 calls keeps Podman's list.
    """
    if "SCMP_ARCH_X32" not in arches or _x32_syscalls_run():
        return arches
    return [a for a in arches if a != "SCMP_ARCH_X32"]


def _x32_syscalls_run() -> bool:
    """Whether an x32 getpid succeeds, tried in a forked child: were this process under a seccomp
    filter without x32 (nested in a container), the call could kill it."""
    from ..storage.layers import libc

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if libc.syscall(_X32_GETPID) == os.getpid() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _compile(rules: Iterable[Rule], capabilities: Iterable[str], arch: str, kernel: str | None) -> dict:
    caps = frozenset(capabilities)
    if arch not in _ARCHES:
        # Podman's behaviour too: generic rules only, native ABI only.
        log.warning("seccomp: unknown architecture %r, arch-specific rules left out", arch)
    go_arch, scmp_arches = _ARCHES.get(arch, (arch, ()))
    kernel_version: tuple[int, int] | None = None
    syscalls = []
    for rule in rules:
        if rule.without_caps & caps or not rule.with_caps <= caps:
            continue
        if rule.arches and go_arch not in rule.arches:
            continue
        if rule.min_kernel is not None:
            if kernel_version is None:
                kernel_version = _parse_kernel(kernel if kernel is not None else os.uname().release)
            if kernel_version < rule.min_kernel:
                continue
        syscalls.append(rule.to_oci())
    log.debug("seccomp: %d rules for %s with %d capabilities", len(syscalls), arch, len(caps))
    return {
        "defaultAction": Action.ERRNO.value,
        "defaultErrnoRet": _DEFAULT_ERRNO,
        "architectures": list(scmp_arches),
        "syscalls": syscalls,
    }


def _parse_kernel(release: str) -> tuple[int, int]:
    """(major, minor) of a kernel release string such as "6.1.0-18-amd64"."""
    m = re.match(r"(\d+)\.(\d+)", release)
    if not m:
        raise SeccompError(f'cannot read a kernel version from "{release}"')
    return int(m.group(1)), int(m.group(2))
