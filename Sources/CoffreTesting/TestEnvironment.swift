#if canImport(Glibc)
    import Glibc
#endif
import Foundation

/// What some tests need of the machine, so that they say they cannot run (Swift Testing's
/// `.enabled(if:)`, reported as skipped) instead of passing without checking anything.
public enum TestEnvironment {
    /// Root, with util-linux's `setpriv`: a test can act as another uid (the kernel's
    /// `SO_PEERCRED` then names that uid).
    public static var canActAsAnotherUser: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
    }

    /// Root: a test can drop to another user and unshare the network, as systemd's confinement
    /// of `coffred.service` does.
    public static var isRoot: Bool { getuid() == 0 }
}
