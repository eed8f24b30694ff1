// Linux system calls Swift cannot make directly: `syscall` is variadic, and openat2's
// `struct open_how` and `RWF_NOWAIT` come from kernel headers the Glibc module does not import.
// Only plain C types here, so that this module declares nothing of libc's (a `struct stat`
// seen through it would belong to it).
#pragma once
#include <stddef.h>

/// Opens `path` read-only if every step of its resolution is in the kernel's dentry cache
/// (`openat2` with `RESOLVE_CACHED`, Linux 5.12); otherwise -1 with errno `EAGAIN`, never
/// waiting for the disk. -1 with `ENOSYS`, `EINVAL` or `EPERM` where the kernel or a seccomp
/// filter does not offer it.
int coffre_open_cached(const char *path);

/// Reads up to `count` bytes at `offset` from the page cache alone (`preadv2` with
/// `RWF_NOWAIT`, Linux 4.14): fewer bytes, or -1 with errno `EAGAIN`, where the rest would
/// have to come from the disk.
long coffre_pread_cached(int fd, void *buffer, size_t count, long long offset);

/// Starts writing back the dirty pages of `count` bytes at `offset` without waiting for them
/// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`): a later `fsync` then has less left to
/// wait for. Durability still comes only from that `fsync`.
int coffre_start_writeback(int fd, long long offset, long long count);

/// Makes the process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`: `prctl` is variadic): no core
/// dump, no ptrace or `/proc/PID/mem` for processes of the same user. 0, or -1 with errno.
int coffre_forbid_dumping(void);
