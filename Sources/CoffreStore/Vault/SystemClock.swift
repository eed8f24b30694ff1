#if canImport(Glibc)
    import Glibc
#endif
public import CoffreDomain

/// The real wall clock.
public struct SystemClock: VaultClock {
    public init() {}

    public func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
