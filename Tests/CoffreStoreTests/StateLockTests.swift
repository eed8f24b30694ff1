#if canImport(Glibc)
    import Glibc
#endif
@testable import CoffreStore
import CoffreDomain
import CoffreTesting
import Foundation
import Synchronization
import Testing

@Suite struct StateLockTests {
    @Test func aSecondLockOnTheSameDirectoryIsRefused() throws {
        let directory = try TemporaryDirectory(prefix: "coffre-lock")
        let held = try StateLock.acquire(directory: directory.path)
        let refused = #expect(throws: StoreError.self) { try StateLock.acquire(directory: directory.path) }
        #expect(refused?.message.contains("already using the state directory") == true)
        withExtendedLifetime(held) {}
        // Once the first goes, the directory can be locked again.
        _ = consume held
        #expect(throws: Never.self) { try StateLock.acquire(directory: directory.path) }
    }

    /// A refused lock closed its descriptor, then its `deinit` closed the same number again: by
    /// then another thread may have been given that number (in the tests, a vault reopened while
    /// the last one is released; SQLite's or a blob's descriptor in the worst case). CI saw a
    /// `readdir` fail with EBADF in another test's vault that way.
    @Test func aRefusedLockClosesItsDescriptorOnlyOnce() async throws {
        let directory = try TemporaryDirectory(prefix: "coffre-lock")
        let held = try StateLock.acquire(directory: directory.path)
        let stop = Atomic<Bool>(false)
        let closedUnderUs = Atomic<Int>(0)
        // Opens descriptors while locks are refused, and checks each is still open before it
        // closes it itself.
        let watcher = Task.detached {
            while !stop.load(ordering: .relaxed) {
                let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { continue }
                var status = stat()
                for _ in 0..<8 where fstat(fd, &status) != 0 {
                    closedUnderUs.add(1, ordering: .relaxed)
                }
                close(fd)
            }
        }
        var refusals = 0
        for _ in 0..<20_000 {
            do {
                _ = try StateLock.acquire(directory: directory.path)
            } catch {
                refusals += 1
            }
        }
        stop.store(true, ordering: .relaxed)
        await watcher.value
        withExtendedLifetime(held) {}
        #expect(refusals == 20_000)
        #expect(closedUnderUs.load(ordering: .relaxed) == 0, "descriptors closed by another thread's refused lock")
    }
}
