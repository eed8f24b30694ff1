#!/usr/bin/env python3
"""Run a command under the confinement coffred.service asks of systemd, without systemd.

CI has no systemd as PID 1, so the hardening directives of systemd/coffred.service cannot be
applied by systemd there. This script applies the ones that decide whether the daemon can run
at all, with the same kernel mechanisms systemd uses, then execs the command (same pid):

  LimitMEMLOCK=16M                    setrlimit(RLIMIT_MEMLOCK) (capped by the hard limit here)
  PrivateNetwork=yes                  unshare(CLONE_NEWNET)
  User=, CapabilityBoundingSet=       drop every capability from the bounding set, setgid/setuid
  NoNewPrivileges=yes                 prctl(PR_SET_NO_NEW_PRIVS)
  MemoryDenyWriteExecute=yes          prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN) (Linux >= 6.3;
                                      what systemd >= 253 uses)
  RestrictAddressFamilies=AF_UNIX     seccomp: socket() with another family fails (EAFNOSUPPORT)
  SystemCallArchitectures=native      seccomp: other architectures are killed
  SystemCallFilter=                   seccomp allow-list: the groups of the unit's
                                      SystemCallFilter= lines, expanded by systemd-analyze
                                      syscall-filter, minus the ~ lines; others fail with EPERM
                                      (SystemCallErrorNumber=EPERM)

The SystemCallFilter= lines are read from the unit file, so the test follows the unit. Not
emulated (they restrict the file system view or need systemd's namespaces, and do not change
what the daemon's code may call): ProtectSystem=, ProtectHome=, PrivateTmp=, PrivateDevices=,
ProtectKernel*=, ProtectProc=, RestrictNamespaces=, LockPersonality=.

usage: hardened-exec.py UNIT_FILE UID GID -- COMMAND [ARG...]
"""

import ctypes
import errno
import os
import re
import resource
import struct
import subprocess
import sys
import time

PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_SET_SECCOMP = 22
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1
SECCOMP_MODE_FILTER = 2
CLONE_NEWNET = 0x40000000
AUDIT_ARCH_X86_64 = 0xC000003E
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_KILL_PROCESS = 0x80000000
EPERM, EAFNOSUPPORT = 1, 97
AF_UNIX = 1
# BPF opcodes
LD_W_ABS = 0x20
JEQ_K = 0x15
RET_K = 0x06

libc = ctypes.CDLL(None, use_errno=True)


def check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        sys.exit(f"hardened-exec: {what} failed: {os.strerror(errno)}")


def syscall_numbers():
    numbers = {}
    with open("/usr/include/x86_64-linux-gnu/asm/unistd_64.h") as header:
        for match in re.finditer(r"#define __NR_(\w+) (\d+)", header.read()):
            numbers[match.group(1)] = int(match.group(2))
    return numbers


def expand(names, seen=None):
    """Syscall names of a list of groups and names, as systemd expands them."""
    seen = set() if seen is None else seen
    result = set()
    for name in names:
        if not name.startswith("@"):
            result.add(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        output = subprocess.run(
            ["systemd-analyze", "syscall-filter", "--no-pager", name], check=True, capture_output=True, text=True
        ).stdout
        members = [line.strip() for line in output.splitlines()[1:] if line.strip() and not line.strip().startswith("#")]
        result |= expand(members, seen)
    return result


def allowed_syscalls(unit):
    allowed, denied = set(), set()
    with open(unit) as text:
        for line in text:
            line = line.strip()
            if not line.startswith("SystemCallFilter="):
                continue
            value = line.split("=", 1)[1]
            if value.startswith("~"):
                denied |= expand(value[1:].split())
            else:
                allowed |= expand(value.split())
    return allowed - denied


def seccomp_filter(allowed):
    numbers = syscall_numbers()
    program = []

    def stmt(code, k, jt=0, jf=0):
        program.append(struct.pack("HBBI", code, jt, jf, k))

    stmt(LD_W_ABS, 4)  # seccomp_data.arch
    stmt(JEQ_K, AUDIT_ARCH_X86_64, 1, 0)
    stmt(RET_K, SECCOMP_RET_KILL_PROCESS)
    stmt(LD_W_ABS, 0)  # seccomp_data.nr
    for name in sorted(allowed):
        if name not in numbers:
            continue
        if name == "socket":
            # RestrictAddressFamilies=AF_UNIX: socket(AF_UNIX, …) only.
            stmt(JEQ_K, numbers[name], 0, 4)
            stmt(LD_W_ABS, 16)  # args[0], low 32 bits (little-endian)
            stmt(JEQ_K, AF_UNIX, 0, 1)
            stmt(RET_K, SECCOMP_RET_ALLOW)
            stmt(RET_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT)
            continue
        stmt(JEQ_K, numbers[name], 0, 1)
        stmt(RET_K, SECCOMP_RET_ALLOW)
    stmt(RET_K, SECCOMP_RET_ERRNO | EPERM)
    return b"".join(program), len(program)


def main():
    if len(sys.argv) < 6 or sys.argv[4] != "--":
        sys.exit(__doc__)
    unit, uid, gid, command = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[5:]
    instructions, count = seccomp_filter(allowed_syscalls(unit))

    # LimitMEMLOCK=16M, or the hard limit if this machine's is lower (a container may not allow
    # raising it); the key arena needs about 1 MiB.
    hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
    limit = 16 << 20 if hard == resource.RLIM_INFINITY else min(16 << 20, hard)
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (limit, limit))
    check(libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    for capability in range(64):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    check(libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0), "PR_SET_MDWE")
    buffer = ctypes.create_string_buffer(instructions)
    program = struct.pack("HxxxxxxQ", count, ctypes.addressof(buffer))
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.c_char_p(program), 0, 0), "seccomp")
    # A binary just copied may still be open for writing in a process another test spawned at
    # that moment (ETXTBSY until it execs): wait a little rather than fail.
    for attempt in range(100):
        try:
            os.execv(command[0], command)
        except OSError as error:
            if error.errno != errno.ETXTBSY or attempt == 99:
                raise
            time.sleep(0.05)


if __name__ == "__main__":
    main()
