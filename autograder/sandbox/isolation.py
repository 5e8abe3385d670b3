"""Linux isolation for one submission's process: namespaces, a minimal root, limits, a uid.

Runs in the sandbox's boot process as root (``boot.py``). Python 3.11 has no
``os.unshare``/``mount``, so they come from libc through ctypes.
"""
from __future__ import annotations

import ctypes
import os
import resource
import signal

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
DEVICES = ("null", "zero", "random", "urandom")
HOME = "/home/student"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None) -> None:
    encode = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags),
                       encode(data)), f"mount {target}")


def prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), "prctl")


def enter_namespaces() -> None:
    """New mount, network, IPC and PID namespaces (the next child becomes PID 1)."""
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def build_root(root: str, read_only: list[str], uid: int, gid: int, size_mb: int) -> None:
    """A tmpfs at ``root`` holding only ``read_only`` paths, /dev basics, /tmp and a home."""
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,mode=755")
    for path in read_only:
        _bind_read_only(path, root)
    os.makedirs(f"{root}/dev", exist_ok=True)
    for device in DEVICES:
        target = f"{root}/dev/{device}"
        open(target, "w").close()
        _mount(f"/dev/{device}", target, None, MS_BIND)
    os.makedirs(f"{root}/proc", exist_ok=True)
    os.makedirs(f"{root}/tmp", exist_ok=True)
    os.chmod(f"{root}/tmp", 0o1777)
    os.makedirs(f"{root}{HOME}", exist_ok=True)
    os.chown(f"{root}{HOME}", uid, gid)
    os.chmod(f"{root}{HOME}", 0o700)


def _bind_read_only(path: str, root: str) -> None:
    if not os.path.lexists(path):
        return
    target = root + path
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(path):
        if not os.path.lexists(target):
            os.symlink(os.readlink(path), target)
        return
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        open(target, "w").close()
    _mount(path, target, None, MS_BIND | MS_REC)
    _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def enter_root(root: str) -> None:
    """As PID 1 of the new namespace: a /proc of our own, then chroot into ``root``."""
    _mount("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chroot(root)
    os.chdir(HOME)


def set_limits(limits: dict, processes: bool) -> None:
    """OS limits; RLIMIT_NPROC only when we will not run as root (root ignores it)."""
    mib = 1 << 20
    pairs = {
        resource.RLIMIT_CPU: (limits["cpu_seconds"], limits["cpu_seconds"] + 5),
        resource.RLIMIT_AS: (limits["memory_mb"] * mib,) * 2,
        resource.RLIMIT_FSIZE: (limits["max_file_mb"] * mib,) * 2,
        resource.RLIMIT_NOFILE: (256, 256),
        resource.RLIMIT_CORE: (0, 0),
    }
    if processes:
        pairs[resource.RLIMIT_NPROC] = (limits["max_processes"],) * 2
    for kind, (soft, hard) in pairs.items():
        resource.setrlimit(kind, (soft, hard))
    # A write past RLIMIT_FSIZE should fail with an error, not kill the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def drop_privileges(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("could not drop privileges")
