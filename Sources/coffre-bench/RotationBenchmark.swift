#if canImport(Glibc)
    import Glibc
#endif
import ArgumentParser
import CoffreCrypto
import CoffreDomain
import CoffreStore
import Foundation
import GRDB
import Logging
import NIOPosix

/// Master key rotation against the limit set by SQLite itself.
///
/// 1. Seeds a vault with N dossier rows whose keys are really wrapped by master key 1 (written
///    straight into the index in large transactions: creating them one by one through the API
///    would take hours and measure something else).
/// 2. The limit: on a copy of that index, the same N rows updated in batches with new 73-byte
///    wrapped keys, by rowid, one transaction per batch, WAL with synchronous=FULL as the vault
///    runs: the rate at which this machine can rewrite those rows at all.
/// 3. Coffre: master key 2 installed, `startRotation`, then `rotateBatch` until done, the code
///    the daemon's background job runs (each dossier key unwrapped and wrapped again).
struct RotationBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotation", abstract: "Rotate N dossier keys; compare with batched SQLite updates of the same rows.")

    @Option(help: "Dossier keys to rotate.") var dossiers = 1_000_000
    @Option(help: "Rows per transaction, for both sides.") var batch = 1_000
    @Option(help: "Working directory (on the disk to measure); removed afterwards.") var directory = "/var/tmp"
    @Flag(help: "Print one JSON object instead of the table.") var json = false

    func run() async throws {
        let work = directory + "/coffre-bench-rotation-\(getpid())"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let state = work + "/state"
        let keys = work + "/keys"
        let pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        let arena = try SecureArena(slotCount: 64)
        var logger = Logger(label: "coffre-bench")
        logger.logLevel = .error
        let configuration = VaultConfiguration(stateDirectory: state, keyDirectories: [keys])

        try MasterKeyring.writeNewKey(version: 1, in: keys)
        do {
            // Creates the schema and the vault's own keys, then lets go of the state lock.
            _ = try await Vault.open(
                configuration: configuration, io: BlockingIO(pool: pool), arena: arena, clock: SystemClock(), logger: logger)
        }
        let master = try require(try MasterKeyring.load(from: [keys], arena: arena).keys[1], "master key 1")
        let seedStart = ContinuousClock.now
        try seed(index: state + "/index.sqlite", count: dossiers, master: master, arena: arena)
        let seedTime = ContinuousClock.now - seedStart

        let baselinePath = work + "/baseline.sqlite"
        try FileManager.default.copyItem(atPath: state + "/index.sqlite", toPath: baselinePath)
        let baselineTime = try updateInBatches(index: baselinePath, count: dossiers, batch: batch)

        let cryptoTime = try rewrapAlone(count: min(dossiers, 200_000), master: master, arena: arena)

        try MasterKeyring.writeNewKey(version: 2, in: keys)
        let vault = try await Vault.open(
            configuration: configuration, io: BlockingIO(pool: pool), arena: arena, clock: SystemClock(), logger: logger)
        // As an operator would: the rotation is traced before it starts, then runs in batches.
        let pipeline = OperationPipeline(vault: vault, policy: AccessPolicy(matrix: HabilitationMatrix(version: "bench", rows: [])))
        let rotationStart = ContinuousClock.now
        _ = try await pipeline.rotateKeys(by: .operator(uid: getuid()), developmentKeyDirectory: nil)
        while let step = try await vault.rotateBatch(limit: batch), !step.finished {}
        let rotationTime = ContinuousClock.now - rotationStart
        let status = try await pipeline.keyStatus(by: .operator(uid: getuid()))
        guard status.versions.first(where: { $0.version == 1 })?.wrappedKeys == 0, status.rotation?.failed == 0 else {
            throw ValidationError("the rotation left keys under version 1: \(status)")
        }

        try await pool.shutdownGracefully()
        let result = Result(
            dossiers: dossiers, batch: batch, seedSeconds: seedTime.seconds, sqliteBatchedUpdateSeconds: baselineTime.seconds,
            rotationSeconds: rotationTime.seconds, rewrapAloneMicroseconds: cryptoTime)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            result.printTable()
        }
    }

    struct Result: Encodable {
        var dossiers: Int
        var batch: Int
        var seedSeconds: Double
        var sqliteBatchedUpdateSeconds: Double
        var rotationSeconds: Double
        /// Unwrap + wrap of one key with no database, in microseconds: the crypto's share.
        var rewrapAloneMicroseconds: Double
        var sqliteRowsPerSecond: Double { Double(dossiers) / sqliteBatchedUpdateSeconds }
        var rotationKeysPerSecond: Double { Double(dossiers) / rotationSeconds }
        /// Coffre's rate over the limit's; the goal is 0.5 or more.
        var ratio: Double { rotationKeysPerSecond / sqliteRowsPerSecond }

        enum CodingKeys: String, CodingKey {
            case dossiers, batch, seedSeconds, sqliteBatchedUpdateSeconds, rotationSeconds, rewrapAloneMicroseconds, sqliteRowsPerSecond
            case rotationKeysPerSecond, ratio
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(dossiers, forKey: .dossiers)
            try container.encode(batch, forKey: .batch)
            try container.encode(seedSeconds, forKey: .seedSeconds)
            try container.encode(sqliteBatchedUpdateSeconds, forKey: .sqliteBatchedUpdateSeconds)
            try container.encode(rotationSeconds, forKey: .rotationSeconds)
            try container.encode(rewrapAloneMicroseconds, forKey: .rewrapAloneMicroseconds)
            try container.encode(sqliteRowsPerSecond, forKey: .sqliteRowsPerSecond)
            try container.encode(rotationKeysPerSecond, forKey: .rotationKeysPerSecond)
            try container.encode(ratio, forKey: .ratio)
        }

        func printTable() {
            print("master key rotation, \(dossiers) dossier keys, \(batch) per transaction")
            func row(_ label: String, _ seconds: Double, _ rate: Double, _ unit: String) {
                print(
                    "  " + label.padding(toLength: 44, withPad: " ", startingAt: 0)
                        + String(format: "%8.2f s  %10.0f %@", seconds, rate, unit))
            }
            row("SQLite batched UPDATE (the limit)", sqliteBatchedUpdateSeconds, sqliteRowsPerSecond, "rows/s")
            row("Coffre rotation (unwrap + wrap + UPDATE)", rotationSeconds, rotationKeysPerSecond, "keys/s")
            print(
                String(
                    format: "  per key: SQLite %.1f µs, Coffre %.1f µs, of which unwrap + wrap alone %.1f µs",
                    1e6 / sqliteRowsPerSecond, 1e6 / rotationKeysPerSecond, rewrapAloneMicroseconds))
            print(String(format: "  ratio %.2f of the limit (goal: 0.50 or more: %@)", ratio, ratio >= 0.5 ? "met" : "MISSED"))
        }
    }

    /// Dossier rows as `createDossier` makes them, with keys wrapped by `master`, in 50,000-row
    /// transactions.
    func seed(index: String, count: Int, master: SymmetricKey, arena: SecureArena) throws {
        let queue = try DatabaseQueue(path: index)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var done = 0
        while done < count {
            let chunk = min(50_000, count - done)
            try queue.write { db in
                let insert = try db.makeStatement(
                    sql: """
                        INSERT INTO dossier (id, ins_hash, state, created_at, master_version, key_generation, wrapped_key, sealed)
                        VALUES (?, ?, 'active', ?, 1, 1, ?, ?)
                        """)
                for _ in 0..<chunk {
                    let id = SecureRandom.hexIdentifier()
                    let key = try SymmetricKey.random(in: arena)
                    let context = WrapContext(purpose: "dossier-key", owners: [id], wrappingKeyVersion: 1)
                    try insert.execute(arguments: [
                        id, Data(SecureRandom.bytes(32)), now, Data(KeyWrap.wrap(key, with: master, context: context)),
                        Data(SecureRandom.bytes(200)),
                    ])
                }
            }
            done += chunk
        }
        try queue.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
    }

    /// Microseconds per unwrap + wrap of a dossier key, with no database: the crypto's share.
    func rewrapAlone(count: Int, master: SymmetricKey, arena: SecureArena) throws -> Double {
        let id = SecureRandom.hexIdentifier()
        let key = try SymmetricKey.random(in: arena)
        let wrapped = Data(
            KeyWrap.wrap(key, with: master, context: WrapContext(purpose: "dossier-key", owners: [id], wrappingKeyVersion: 1)))
        let start = ContinuousClock.now
        for _ in 0..<count {
            let opened = try KeyWrap.unwrap(
                Array(wrapped), with: master, context: WrapContext(purpose: "dossier-key", owners: [id], wrappingKeyVersion: 1), in: arena)
            _ = Data(KeyWrap.wrap(opened, with: master, context: WrapContext(purpose: "dossier-key", owners: [id], wrappingKeyVersion: 2)))
        }
        return (ContinuousClock.now - start).seconds * 1e6 / Double(count)
    }

    /// The limit: every row's wrapped key replaced, `batch` rows per transaction, with the
    /// vault's durability settings.
    func updateInBatches(index: String, count: Int, batch: Int) throws -> Duration {
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA secure_delete = ON") }
        let pool = try DatabasePool(path: index, configuration: configuration)
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        var value = [UInt8](repeating: 0, count: KeyWrap.wrappedByteCount)
        let start = ContinuousClock.now
        var rowid: Int64 = 0
        let last = Int64(count)
        while rowid < last {
            let end = min(rowid + Int64(batch), last)
            try pool.write { db in
                let update = try db.cachedStatement(sql: "UPDATE dossier SET master_version = 2, wrapped_key = ? WHERE rowid = ?")
                while rowid < end {
                    rowid += 1
                    value[Int(rowid % Int64(value.count))] &+= 1
                    try update.execute(arguments: [Data(value), rowid])
                }
            }
        }
        return ContinuousClock.now - start
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// `#require` for a command-line tool.
func require<T>(_ value: T?, _ what: String) throws -> T {
    guard let value else { throw ValidationError("missing \(what)") }
    return value
}
