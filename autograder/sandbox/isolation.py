"""Linux isolation for one submission's process, with or without root.

Full isolation uses a new user namespace, so it needs no root: wherever the kernel
lets unprivileged users create one (``unshare --user`` works), a laptop or a
JupyterHub gets the same sandbox as root in CI. The learner runs as uid 1000 inside
a user namespace that maps only that uid — to 61000 + the job slot when the grader
is root, or to the grader's own uid otherwise — in new mount, PID, network, IPC and
UTS namespaces, chrooted into a tmpfs that holds read-only binds of what Python
needs, with no capabilities, ``no_new_privs`` and a seccomp filter.

Where user namespaces are refused (Ubuntu's AppArmor restriction, Docker's default
seccomp profile), the grader refuses too, unless ``--allow-unisolated``: then
Landlock (Linux 5.13+) confines the learner's files and, where the kernel has it,
network and signals (``confine_unisolated``).

Python 3.11 has no ``os.unshare`` or ``os.mount``; they come from libc via ctypes.
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import resource
import signal
import struct
from dataclasses import dataclass, field

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
CLONE_NEWCGROUP, CLONE_NEWTIME = 0x02000000, 0x00000080
# A submission's: user, mount, IPC and UTS; each of its sandboxes then adds PID, mount,
# IPC and network namespaces of its own (``enter_sandbox_namespaces``).
SUBMISSION_NAMESPACES = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS
SANDBOX_NAMESPACES = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET
NAMESPACES = SUBMISSION_NAMESPACES | SANDBOX_NAMESPACES
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 38, 36
DEVICES = ("null", "zero", "random", "urandom")
HOME = "/home/student"
INNER_ID = 1000  # the learner's uid and gid inside the sandbox's user namespace
MAP_FAILED = "could not write the user namespace's uid/gid map"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class IsolationError(OSError):
    """A step of the isolation failed; the message names the step."""


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise IsolationError(number, f"{what}: {os.strerror(number)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    encode = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags),
                       encode(data)), f"mount {target}")


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), "prctl")


# ---------------------------------------------------------------- system call numbers

ARCH = platform.machine()
# Numbers of the calls this module makes or filters; x86_64 and the generic table
# (aarch64, riscv64). Elsewhere full isolation is refused rather than half-done.
SYSCALLS = {
    "x86_64": dict(
        capset=126, ptrace=101, process_vm_readv=310, process_vm_writev=311,
        add_key=248, request_key=249, keyctl=250, unshare=272, setns=308, mount=165,
        umount2=166,
        pivot_root=155, chroot=161, bpf=321, perf_event_open=298, userfaultfd=323,
        clone=56, open_by_handle_at=304, name_to_handle_at=303, kexec_load=246,
        kexec_file_load=320, init_module=175, finit_module=313, delete_module=176,
        swapon=167, swapoff=168, reboot=169, syslog=103, acct=163, quotactl=179),
    "generic": dict(
        capset=91, ptrace=117, process_vm_readv=270, process_vm_writev=271,
        add_key=217, request_key=218, keyctl=219, unshare=97, setns=268, mount=40,
        umount2=39,
        pivot_root=41, chroot=51, bpf=280, perf_event_open=241, userfaultfd=282,
        clone=220, open_by_handle_at=265, name_to_handle_at=264, kexec_load=104,
        kexec_file_load=294, init_module=105, finit_module=273, delete_module=106,
        swapon=224, swapoff=225, reboot=142, syslog=116, acct=89, quotactl=60),
}
UNIFIED = dict(pidfd_open=434, pidfd_getfd=438, io_uring_setup=425, io_uring_enter=426,
               io_uring_register=427, clone3=435, open_tree=428, move_mount=429,
               fsopen=430, fsconfig=431, fsmount=432, fspick=433, mount_setattr=442,
               landlock_create_ruleset=444, landlock_add_rule=445,
               landlock_restrict_self=446)
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7, "riscv64": 0xC00000F3}


def syscall_numbers() -> dict[str, int] | None:
    table = {"x86_64": "x86_64", "aarch64": "generic", "riscv64": "generic"}.get(ARCH)
    return None if table is None else {**SYSCALLS[table], **UNIFIED}


# ---------------------------------------------------------------- namespaces and root

def _write(path: str, text: str) -> None:
    with open(path, "w") as stream:
        stream.write(text)


def enter_namespaces(outer_uid: int, outer_gid: int, hostname: str = "sandbox") -> None:
    """New user, mount, IPC and UTS namespaces for this process.

    The caller keeps every capability inside the new user namespace, which maps
    INNER_ID to ``outer_uid``/``outer_gid``. Root maps another uid through a helper
    left in the old namespaces; anyone else maps their own uid, which needs no
    helper. The caller keeps its own uid until ``become_inner``, so it can still
    open what it could open before (``plan_root``).
    """
    if os.geteuid() != 0:  # our own uid: we may write the maps ourselves
        _check(_libc.unshare(SUBMISSION_NAMESPACES), "unshare (user namespaces)")
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{INNER_ID} {outer_uid} 1\n")
            _write("/proc/self/gid_map", f"{INNER_ID} {outer_gid} 1\n")
        except OSError as error:
            raise IsolationError(error.errno,
                                 f"{MAP_FAILED}: {error.strerror}") from None
    else:
        os.setgroups([])  # root's group 0 must not follow the learner in
        _unshare_with_helper(outer_uid, outer_gid)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _libc.sethostname(hostname.encode(), len(hostname))
    # A keyring of our own: the learner must not reach the instructor's session keys.
    join_session_keyring, anonymous = 1, 0
    _libc.syscall(syscall_numbers()["keyctl"], join_session_keyring, anonymous)


def _unshare_with_helper(outer_uid: int, outer_gid: int) -> None:
    """As root: a helper left in the old namespaces maps INNER_ID to another uid.

    The helper is a shell started with posix_spawn, which does not copy this large
    process (torch is loaded) the way a fork would.
    """
    target = f"/proc/{os.getpid()}"
    script = (f'read -r go && [ "$go" = u ] && echo deny > {target}/setgroups && '
              f'echo "{INNER_ID} {outer_uid} 1" > {target}/uid_map && '
              f'echo "{INNER_ID} {outer_gid} 1" > {target}/gid_map')
    ready_read, ready_write = os.pipe()
    helper = os.posix_spawn("/bin/sh", ["sh", "-c", script], {"PATH": "/usr/bin:/bin"},
                            file_actions=[(os.POSIX_SPAWN_DUP2, ready_read, 0)])
    os.close(ready_read)
    try:
        _check(_libc.unshare(SUBMISSION_NAMESPACES), "unshare (user namespaces)")
    except IsolationError:
        os.close(ready_write)
        os.waitpid(helper, 0)
        raise
    os.write(ready_write, b"u\n")
    os.close(ready_write)
    _, status = os.waitpid(helper, 0)
    if status != 0:
        raise IsolationError(errno.EPERM, MAP_FAILED)


def become_inner() -> None:
    """Take the sandbox's uid and gid (capabilities inside the namespace remain)."""
    os.setresgid(INNER_ID, INNER_ID, INNER_ID)
    os.setresuid(INNER_ID, INNER_ID, INNER_ID)


def namespaces_refused() -> str:
    """"" where this process may create the sandbox's namespaces; else the reason.
    (Tried in a throw-away child, so this process stays where it is.)"""
    if syscall_numbers() is None:
        return f"no system call table for {ARCH}"
    child = os.fork()
    if child == 0:
        os._exit(0 if _libc.unshare(NAMESPACES) == 0 else min(ctypes.get_errno(), 255))
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    return "" if code == 0 else f"unshare: {os.strerror(code)}"


def _locked_flags(path: str) -> int:
    """Mount flags a remount must keep: in a user namespace they are locked."""
    known = {os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
             os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME,
             os.ST_RELATIME: MS_RELATIME}
    flags = os.statvfs(path).f_flag
    return sum(ms for st, ms in known.items() if flags & st)


def _submounts(path: str) -> list[str]:
    """Mount points at or below ``path`` (from our own mountinfo), shallowest first."""
    found = []
    with open("/proc/self/mountinfo") as stream:
        for line in stream:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                           line.split()[4])
            if point == path or point.startswith(path.rstrip("/") + "/"):
                found.append(point)
    return sorted(set(found), key=len)


def _remount_read_only(target: str) -> None:
    for point in _submounts(target):
        try:
            flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
            _mount(None, point, None, flags | _locked_flags(point))
        except (IsolationError, OSError):
            if point == target:
                raise


@dataclass
class RootPlan:
    """What goes into the sandbox's root, worked out before the namespaces exist.

    Paths are resolved, and opened, with the grader's own permissions (as root, a
    Python under /root is reachable only then); the root is built from these open
    file descriptors after the switch to the learner's uid.
    """

    links: list[tuple[str, str]] = field(default_factory=list)  # (path, symlink text)
    # (real path, O_PATH descriptor, is a folder)
    binds: list[tuple[str, int, bool]] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    # (real path, where build_root staged it, is a folder): binds under /tmp, which
    # each sandbox's fresh /tmp takes from there (a descriptor opened in another
    # mount namespace cannot be bound)
    staged: list[tuple[str, str, bool]] = field(default_factory=list)


def _resolve(path: str, plan: RootPlan) -> str | None:
    """``path``'s real location, noting each symlink on the way in ``plan.links``.

    A virtual environment reached through a symlink (``.venv -> /data/venvs/x``) keeps
    working: both spellings resolve inside the sandbox as they do outside.
    """
    current, parts, hops = "/", [p for p in path.split("/") if p], 0
    while parts:
        candidate = os.path.join(current, parts.pop(0))
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                return None
            text = os.readlink(candidate)
            plan.links.append((candidate, text))
            target = text if text.startswith("/") else os.path.join(current, text)
            parts = [p for p in os.path.normpath(target).split("/") if p] + parts
            current = "/"
        elif os.path.lexists(candidate):
            current = candidate
        else:
            return None
    return current


def plan_root(read_only: list[str], hidden: list[str]) -> RootPlan:
    plan = RootPlan()
    bound: list[str] = []
    for path in read_only:
        real = _resolve(os.path.abspath(path), plan)
        if real is None or any(real == b or real.startswith(b.rstrip("/") + "/")
                               for b in bound):
            continue
        bound = [b for b in bound if not b.startswith(real.rstrip("/") + "/")] + [real]
        for inner in [b for b in plan.binds if b[0] not in bound]:
            os.close(inner[1])  # inside the new one: its descriptor must not linger
        plan.binds = [b for b in plan.binds if b[0] in bound]
        descriptor = os.open(real, os.O_PATH | os.O_CLOEXEC)
        plan.binds.append((real, descriptor, os.path.isdir(real)))
    plan.binds.sort(key=lambda bind: len(bind[0]))
    plan.hidden = [os.path.realpath(p) for p in hidden if os.path.isdir(p)]
    return plan


def _under_scratch(path: str) -> bool:
    return path == "/tmp" or path.startswith("/tmp/")


def build_root(root: str, plan: RootPlan, staging: str) -> None:
    """A read-only tmpfs at ``root`` with only the planned paths (read-only binds) and
    /dev basics; every hidden path is covered by an empty read-only directory. What
    the plan puts under /tmp (a venv there, say) is bound at ``staging`` instead,
    outside the root, for ``fresh_scratch`` to place in each sandbox's own /tmp."""
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    os.makedirs(f"{root}/tmp")
    os.makedirs(f"{root}{HOME}")
    _mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=700")
    for index, (real, fd, is_dir) in enumerate(plan.binds):
        if _under_scratch(real):
            place = f"{staging}/{index}"
            plan.staged.append((real, place, is_dir))
        else:
            place = root + real
        _bind_read_only(f"/proc/self/fd/{fd}", place, is_dir)
        os.close(fd)
    plan.binds = []
    _place_links_and_hidden(root, plan, lambda path: not _under_scratch(path))
    os.makedirs(f"{root}/dev", exist_ok=True)
    for device in DEVICES:
        target = f"{root}/dev/{device}"
        open(target, "w").close()
        _mount(f"/dev/{device}", target, None, MS_BIND)
    _mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def fresh_scratch(root: str, plan: RootPlan, size_mb: int) -> None:
    """The only place a learner may write: a new tmpfs of ``size_mb`` at /tmp, its
    home a folder in there, then the planned paths under /tmp on top, read-only.
    Run in a mount namespace of the sandbox's own (``enter_sandbox_namespaces``), so
    no two sandboxes of a submission ever share a file."""
    _mount("tmpfs", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={size_mb}m,mode=1777")
    os.mkdir(f"{root}/tmp/home", 0o700)
    _mount(f"{root}/tmp/home", f"{root}{HOME}", None, MS_BIND)
    for real, place, is_dir in plan.staged:
        _bind_read_only(place, root + real, is_dir)
    _place_links_and_hidden(root, plan, _under_scratch)


def _under_scratch(path: str) -> bool:
    return path == "/tmp" or path.startswith("/tmp/")


def _bind_read_only(source: str, target: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            open(target, "w").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    _remount_read_only(target)


def _place_links_and_hidden(root: str, plan: RootPlan, chosen) -> None:
    """The planned symlinks and hidden folders for which ``chosen(path)`` holds."""
    for path, text in plan.links:
        inside = root + path
        if chosen(path) and not os.path.lexists(inside):
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            os.symlink(text, inside)
    for path in plan.hidden:
        if chosen(path) and os.path.isdir(root + path):
            _mount("tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY,
                   "size=4k")


def enter_sandbox_namespaces() -> None:
    """New PID, mount, IPC and network namespaces for one sandbox, inside its
    submission's user namespace (``enter_namespaces``): this process's next child is
    PID 1 of a process tree that dies with it, and has mounts, System V IPC and
    sockets (abstract Unix names included) of its own."""
    _check(_libc.unshare(SANDBOX_NAMESPACES), "unshare (a sandbox's namespaces)")


def enter_root(root: str) -> None:
    """chroot into ``root``; there is no /proc, /sys or /dev/shm in there."""
    os.chroot(root)
    os.chdir(HOME)


# ---------------------------------------------------------------- limits and privileges

def set_limits(limits: dict) -> None:
    mib = 1 << 20
    pairs = {
        resource.RLIMIT_CPU: (limits["cpu_seconds"], limits["cpu_seconds"] + 5),
        resource.RLIMIT_AS: (limits["memory_mb"] * mib,) * 2,
        resource.RLIMIT_FSIZE: (limits["max_file_mb"] * mib,) * 2,
        resource.RLIMIT_NOFILE: (256, 256),
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_NPROC: (limits["max_processes"],) * 2,
        resource.RLIMIT_MSGQUEUE: (0, 0),
    }
    for kind, (soft, hard) in pairs.items():
        resource.setrlimit(kind, (soft, hard))
    # A write past RLIMIT_FSIZE should fail with an error, not kill the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def drop_capabilities() -> None:
    """No capabilities at all, now or after an exec; ``no_new_privs`` set."""
    for cap in range(64):
        if _libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    version_3, this_thread = 0x20080522, 0
    header = struct.pack("=Ii", version_3, this_thread)
    data = ctypes.create_string_buffer(bytes(24))
    _check(_libc.syscall(syscall_numbers()["capset"], header, data), "capset")
    prctl(PR_SET_NO_NEW_PRIVS, 1)


# System calls no exercise needs that reach past the sandbox or into the kernel:
# debugging other processes, kernel keyrings, namespaces and mounts, eBPF, io_uring.
DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
          "add_key", "request_key", "keyctl", "unshare", "setns", "mount", "umount2",
          "pivot_root", "chroot", "bpf", "perf_event_open", "userfaultfd",
          "open_by_handle_at", "name_to_handle_at", "kexec_load", "kexec_file_load",
          "init_module", "finit_module", "delete_module", "swapon", "swapoff", "reboot",
          "syslog", "acct", "quotactl", "io_uring_setup", "io_uring_enter",
          "io_uring_register", "open_tree", "move_mount", "fsopen", "fsconfig",
          "fsmount", "fspick", "mount_setattr")
NAMESPACE_FLAGS = (NAMESPACES | CLONE_NEWCGROUP | CLONE_NEWTIME)


def seccomp_program(denied_calls: tuple[str, ...] = DENIED) -> bytes:
    """A classic-BPF seccomp filter: DENIED calls fail with EPERM, clone3 with ENOSYS
    (so libc falls back to clone, whose flags a filter can read), clone with a
    namespace flag with EPERM, any other architecture's calls are killed."""
    numbers = syscall_numbers()
    ld, jeq, jset, ret = 0x20, 0x15, 0x45, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    denied = sorted({numbers[name] for name in denied_calls})
    program = [(ld, 0, 0, 4), (jeq, 1, 0, AUDIT_ARCH[ARCH]), (ret, 0, 0, kill),
               (ld, 0, 0, 0)]
    if ARCH == "x86_64":  # the x32 ABI's numbers would dodge the table below
        program += [(0x25, 0, 1, 0x3FFFFFFF), (ret, 0, 0, eperm)]  # jgt
    program += [(jeq, 0, 1, numbers["clone3"]), (ret, 0, 0, enosys)]
    program += [(jeq, 0, 3, numbers["clone"]), (ld, 0, 0, 16),
                (jset, 0, 1, NAMESPACE_FLAGS), (ret, 0, 0, eperm), (ld, 0, 0, 0)]
    for number in denied:
        program += [(jeq, 0, 1, number), (ret, 0, 0, eperm)]
    program.append((ret, 0, 0, allow))
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in program)


def install_seccomp(denied_calls: tuple[str, ...] = DENIED) -> None:
    """The filter for this process and every process it starts (needs no_new_privs)."""
    code = seccomp_program(denied_calls)
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("=HxxxxxxQ", len(code) // 8, ctypes.addressof(buffer))
    _check(_libc.prctl(22, 2, fprog, 0, 0), "seccomp")  # PR_SET_SECCOMP, FILTER


# ---------------------------------------------------------------- without namespaces

LANDLOCK_FS_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read file, read dir
LANDLOCK_FS_ALL = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1}
# Rights a rule on a single file may carry: execute, write, read, truncate, ioctl.
LANDLOCK_FILE_RIGHTS = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 14) | (1 << 15)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when there is none."""
    numbers = syscall_numbers() or UNIFIED
    version = _libc.syscall(numbers["landlock_create_ruleset"], None, 0, 1)
    return max(int(version), 0)


def unisolated_gaps(abi: int) -> list[str]:
    """What Landlock at this ABI leaves open, in words."""
    gaps = ["other processes are visible"]
    if abi < 4:
        gaps.append("network")
    return gaps


def confine_unisolated(read_only: list[str], writable: list[str]) -> None:
    """Landlock for this process and its children: read ``read_only``, write only
    ``writable``; TCP and signals to other processes refused where the ABI allows.
    Raises IsolationError without Landlock."""
    abi = landlock_abi()
    if abi < 1:
        raise IsolationError(errno.ENOSYS, "this kernel has no Landlock")
    fs_all = LANDLOCK_FS_ALL[min(abi, 3)] | ((1 << 15) if abi >= 5 else 0)
    net = 3 if abi >= 4 else 0  # bind and connect TCP
    scoped = 3 if abi >= 6 else 0  # abstract unix sockets and signals
    attr = struct.pack("=QQQ", fs_all, net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = _libc.syscall(UNIFIED["landlock_create_ruleset"], attr[:size], size, 0)
    if ruleset < 0:
        raise IsolationError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for paths, access in ((read_only, LANDLOCK_FS_READ), (writable, fs_all)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                is_dir = os.path.isdir(path)
                allowed = access if is_dir else access & LANDLOCK_FILE_RIGHTS
                rule = struct.pack("=Qi", allowed, fd)
                path_beneath = 1
                result = _libc.syscall(UNIFIED["landlock_add_rule"], ruleset,
                                       path_beneath, rule, 0)
                os.close(fd)
                if result != 0:
                    raise IsolationError(ctypes.get_errno(),
                                         f"landlock rule for {path}")
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        _check(_libc.syscall(UNIFIED["landlock_restrict_self"], ruleset, 0),
               "landlock_restrict_self")
    finally:
        os.close(ruleset)
