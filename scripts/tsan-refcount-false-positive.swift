// ThreadSanitizer's false report on an order given only by a reference count, on Linux (see
// scripts/tsan.supp and docs/reliability.md#sanitizers). Run:
//   swiftc -sanitize=thread -g scripts/tsan-refcount-false-positive.swift -o /tmp/refcount-fp && /tmp/refcount-fp
//
// The owner hands a reference to a worker (through an NSLock, which TSan sees); the worker reads
// the object and drops its reference; the owner waits until `isKnownUniquelyReferenced` says it is
// the only holder again, then writes. That is correct Swift, the pattern of every copy-on-write
// type and of swift-nio's pooled receive buffers, but the order comes from the reference count's
// atomics in libswiftCore (swift_release, swift_isUniquelyReferenced), which is not instrumented:
// TSan reports the worker's read and the owner's write as a data race.
import Foundation

final class Storage {
    var bytes = 0
}

final class Mailbox: @unchecked Sendable {
    let lock = NSLock()
    var item: Storage?
}

let mailbox = Mailbox()
var storage = Storage()
let worker = Thread {
    while true {
        mailbox.lock.lock()
        let taken = mailbox.item
        mailbox.item = nil
        mailbox.lock.unlock()
        if let taken {
            if taken.bytes == 42 { exit(3) }  // the read; the worker's reference goes away after it
            return
        }
    }
}
mailbox.lock.lock()
mailbox.item = storage
mailbox.lock.unlock()
worker.start()
while !isKnownUniquelyReferenced(&storage) { usleep(100) }
storage.bytes = 1  // the owner writes to the storage it holds alone again
print("the owner wrote after the worker let go")
