#if canImport(Glibc)
    import Glibc
#endif
import CLinux
import CoffreDomain

/// Keeps the daemon's memory out of core dumps and out of other processes' reach.
///
/// Documents, titles and INS pass through ordinary memory while they are served (only keys live
/// in the locked arena), so a core dump would put plaintext on disk, in `/var/lib/systemd/coredump`
/// or wherever `core_pattern` sends it. Two locks, either of which suffices:
/// - `RLIMIT_CORE` 0 (what `LimitCORE=0` in coffred.service sets too): the kernel writes no core;
/// - `PR_SET_DUMPABLE` 0: no core even through a `core_pattern` pipe, and a process of the same
///   user can no longer ptrace the daemon or read its `/proc/PID/mem`, `environ` or `fd`.
enum CoreDumps {
    /// Turns core dumps off for this process; called before any key is loaded.
    static func forbid() throws(ServerError) {
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        guard setrlimit(Int32(RLIMIT_CORE.rawValue), &none) == 0 else {
            throw ServerError(.process, "cannot turn core dumps off (setrlimit RLIMIT_CORE)", errno: errno)
        }
        guard coffre_forbid_dumping() == 0 else {
            throw ServerError(.process, "cannot make the process non-dumpable (prctl PR_SET_DUMPABLE)", errno: errno)
        }
    }
}
