import CSodium

/// A `crypto_secretstream` state kept in locked memory: the state holds a subkey derived from
/// the document key, so it deserves the same care as the key itself.
struct StreamState: Sendable {
    private let slot: SecureSlot

    init(in arena: SecureArena) throws(CryptoError) {
        precondition(MemoryLayout<crypto_secretstream_xchacha20poly1305_state>.size <= SecureArena.slotSize)
        slot = try arena.allocate()
    }

    var pointer: UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state> {
        slot.pointer.assumingMemoryBound(to: crypto_secretstream_xchacha20poly1305_state.self)
    }
}
