// ThreadSanitizer's false report on a contended `Synchronization.Mutex` on Linux (see
// scripts/tsan.supp and docs/reliability.md#sanitizers). Every access to the array is inside
// `withLock`, so there is no data race; yet under contention TSan reports "Swift access race"
// in the closures. Run:
//   swiftc -sanitize=thread -g scripts/tsan-mutex-false-positive.swift -o /tmp/mutex-fp && /tmp/mutex-fp
// The same loop behind an NSLock (a pthread mutex, which TSan intercepts) reports nothing.
//
// Why: on Linux, Mutex's fast paths are atomics inlined into the caller (TSan sees them), but a
// contended lock or unlock goes through `_MutexHandle._lockSlow` / `_unlockSlow` in
// libswiftSynchronization.so, which is not instrumented, and the hand-over itself happens in the
// kernel (FUTEX_LOCK_PI / FUTEX_UNLOCK_PI). TSan never sees that release and acquire, so it takes
// the two critical sections for unordered.
import Dispatch
import Synchronization

final class Slots: Sendable {
    let free = Mutex<[Int]>(Array(0..<64))
}

let slots = Slots()
DispatchQueue.concurrentPerform(iterations: 4) { _ in
    for _ in 0..<200_000 {
        let slot = slots.free.withLock { $0.popLast() }
        if let slot { slots.free.withLock { $0.append(slot) } }
    }
}
print("slots free at the end: \(slots.free.withLock { $0.count }) of 64")
