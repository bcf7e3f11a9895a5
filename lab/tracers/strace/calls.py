"""What the parser knows about individual system calls (x86-64).

strace names a few calls differently from the kernel (whose names ftrace's
syscall events show, and SYSCALL_DEFINE uses): `stat` is the kernel's
`newstat`, `uname` is `newuname`, and so on. Arguments are named as the
kernel names its parameters (include/linux/syscalls.h), so that strace's and
ftrace's events of one call read alike; only scalar arguments are kept (see
syntax.scalar), plus the few strings listed in STRING_PARAMS.
"""

from __future__ import annotations

import errno

# strace's name → the kernel's, where they differ on x86-64.
KERNEL_NAMES: dict[str, str] = {
    "stat": "newstat", "fstat": "newfstat", "lstat": "newlstat", "uname": "newuname",
    "sendfile": "sendfile64", "umount2": "umount",
}

# The kernel's parameter names, by strace's call name. A call not listed keeps only
# its first descriptor argument, as "fd".
PARAMS: dict[str, tuple[str, ...]] = {
    "socket": ("family", "type", "protocol"),
    "socketpair": ("family", "type", "protocol", "usockvec"),
    "bind": ("fd", "umyaddr", "addrlen"),
    "connect": ("fd", "uservaddr", "addrlen"),
    "listen": ("fd", "backlog"),
    "accept": ("fd", "upeer_sockaddr", "upeer_addrlen"),
    "accept4": ("fd", "upeer_sockaddr", "upeer_addrlen", "flags"),
    "getsockname": ("fd", "usockaddr", "usockaddr_len"),
    "getpeername": ("fd", "usockaddr", "usockaddr_len"),
    "sendto": ("fd", "buff", "len", "flags", "addr", "addr_len"),
    "recvfrom": ("fd", "ubuf", "size", "flags", "addr", "addr_len"),
    "sendmsg": ("fd", "msg", "flags"),
    "recvmsg": ("fd", "msg", "flags"),
    "sendmmsg": ("fd", "mmsg", "vlen", "flags"),
    "recvmmsg": ("fd", "mmsg", "vlen", "flags", "timeout"),
    "shutdown": ("fd", "how"),
    "setsockopt": ("fd", "level", "optname", "optval", "optlen"),
    "getsockopt": ("fd", "level", "optname", "optval", "optlen"),
    "close": ("fd",),
    "read": ("fd", "buf", "count"),
    "write": ("fd", "buf", "count"),
    "readv": ("fd", "vec", "vlen"),
    "writev": ("fd", "vec", "vlen"),
    "pread64": ("fd", "buf", "count", "pos"),
    "pwrite64": ("fd", "buf", "count", "pos"),
    "sendfile": ("out_fd", "in_fd", "offset", "count"),
    "poll": ("ufds", "nfds", "timeout_msecs"),
    "ppoll": ("ufds", "nfds", "tsp", "sigmask", "sigsetsize"),
    "epoll_create1": ("flags",),
    "epoll_ctl": ("epfd", "op", "fd", "event"),
    "epoll_wait": ("epfd", "events", "maxevents", "timeout"),
    "epoll_pwait": ("epfd", "events", "maxevents", "timeout", "sigmask", "sigsetsize"),
    "fcntl": ("fd", "cmd", "arg"),
    "ioctl": ("fd", "cmd", "arg"),
    "dup": ("fildes",),
    "dup2": ("oldfd", "newfd"),
    "dup3": ("oldfd", "newfd", "flags"),
    "open": ("filename", "flags", "mode"),
    "openat": ("dfd", "filename", "flags", "mode"),
    "execve": ("filename", "argv", "envp"),
    "execveat": ("fd", "filename", "argv", "envp", "flags"),
    "exit": ("error_code",),
    "exit_group": ("error_code",),
    "wait4": ("upid", "stat_addr", "options", "ru"),
    "kill": ("pid", "sig"),
    "tgkill": ("tgid", "pid", "sig"),
    "prctl": ("option", "arg2", "arg3", "arg4", "arg5"),
    "clone3": ("uargs", "size"),
}
# Arguments the kernel fills in: known at the exit only (strace prints them then).
OUTPUTS: dict[str, frozenset[str]] = {
    "accept": frozenset({"upeer_sockaddr"}), "accept4": frozenset({"upeer_sockaddr"}),
    "getsockname": frozenset({"usockaddr"}), "getpeername": frozenset({"usockaddr"}),
    "recvfrom": frozenset({"addr"}), "recvmsg": frozenset({"addr"}),
    "getsockopt": frozenset({"optval"}),
}
# String arguments worth keeping (decoded); other strings are buffers and dropped.
STRING_PARAMS = frozenset({"filename"})
# Calls whose successful return is a new socket descriptor: their exit concerns it.
NEW_SOCKET = frozenset({"socket", "accept", "accept4"})
EXEC = frozenset({"execve", "execveat"})
CLONE = frozenset({"clone", "clone3", "fork", "vfork"})
TASK_COMM_LEN = 16  # the kernel keeps 15 characters of a program's name

# Kernel-internal codes strace shows for interrupted calls; not in Python's errno.
KERNEL_ERRNOS: dict[str, int] = {
    "ERESTARTSYS": 512, "ERESTARTNOINTR": 513, "ERESTARTNOHAND": 514, "ENOIOCTLCMD": 515,
    "ERESTART_RESTARTBLOCK": 516, "EPROBE_DEFER": 517, "EOPENSTALEDATA": 518,
    "ENOPARAM": 519, "EBADHANDLE": 521, "ENOTSYNC": 522, "EBADCOOKIE": 523,
    "ENOTSUPP": 524, "ETOOSMALL": 525, "ESERVERFAULT": 526, "EBADTYPE": 527,
    "EJUKEBOX": 528, "EIOCBQUEUED": 529, "ERECALLCONFLICT": 530,
}


def kernel_name(strace_name: str) -> str:
    return KERNEL_NAMES.get(strace_name, strace_name)


def errno_number(name: str) -> int | None:
    """The number of an errno name strace prints ("ECONNREFUSED", "ERRNO_600")."""
    if name.startswith("ERRNO_") and name[6:].isdigit():
        return int(name[6:])
    value = KERNEL_ERRNOS.get(name)
    if value is None:
        value = getattr(errno, name, None)
    return value if isinstance(value, int) else None


def comm_of(filename: str) -> str:
    """The name the kernel gives a program it executes: the file's base name, cut."""
    return filename.rstrip("/").rsplit("/", 1)[-1][:TASK_COMM_LEN - 1]
