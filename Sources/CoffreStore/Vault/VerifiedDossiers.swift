import Synchronization

/// The document versions of dossiers whose seal the vault has checked, by generation: a
/// request that names a document compares its row with these, instead of reading every row
/// of the dossier again. An entry holds for one generation only: the first request after any
/// change to the dossier checks its rows again. Holds no secret (ids and version numbers),
/// and is bounded by the number of versions it keeps, the least recently used dossiers going
/// first.
final class VerifiedDossiers: Sendable {
    private struct Entry {
        var generation: Int64
        var versions: [String: Int64]
        var used: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var held = 0
        var clock: UInt64 = 0
    }

    /// Document versions kept, in all dossiers.
    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = 262_144) {
        self.capacity = capacity
    }

    /// The versions checked for `dossierID` at `generation`, if they are known.
    func versions(of dossierID: String, at generation: Int64) -> [String: Int64]? {
        state.withLock { state in
            guard var entry = state.entries[dossierID], entry.generation == generation else { return nil }
            state.clock += 1
            entry.used = state.clock
            state.entries[dossierID] = entry
            return entry.versions
        }
    }

    /// Keeps the versions just checked for `dossierID` at `generation`.
    func remember(_ versions: [String: Int64], of dossierID: String, at generation: Int64) {
        guard versions.count <= capacity else { return }
        state.withLock { state in
            state.clock += 1
            if let old = state.entries.updateValue(Entry(generation: generation, versions: versions, used: state.clock), forKey: dossierID)
            {
                state.held -= old.versions.count
            }
            state.held += versions.count
            guard state.held > capacity else { return }
            // Down to three quarters at once, so that a full cache does not sort on every call.
            for (id, entry) in state.entries.sorted(by: { $0.value.used < $1.value.used }) where state.held > capacity * 3 / 4 {
                state.entries[id] = nil
                state.held -= entry.versions.count
            }
        }
    }

    /// Forgets a dossier (purged).
    func forget(_ dossierID: String) {
        state.withLock { state in
            if let old = state.entries.removeValue(forKey: dossierID) { state.held -= old.versions.count }
        }
    }
}
