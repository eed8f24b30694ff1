import CoffreTesting
import Foundation
import Testing

/// The configuration file the units ship, and what the daemon does with one it cannot use.
@Suite struct ConfigurationTests {
    static let shipped = Binaries.packageRoot + "/systemd/config.json"

    func unit(_ name: String) throws -> String {
        try String(contentsOfFile: Binaries.packageRoot + "/systemd/" + name, encoding: .utf8)
    }

    /// Runs `coffred --dev` on a fresh state directory with `config`; a daemon that starts is
    /// stopped once it answers.
    func start(config: String) async throws -> (status: Int32, stderr: String, stateCreated: Bool) {
        let scratch = try TemporaryDirectory(prefix: "coffre-config")
        let path = scratch.path + "/config.json"
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        let state = scratch.path + "/state"
        let result = try await Program.run(
            "/usr/bin/timeout", ["20", Binaries.coffred, "--dev", "--state-dir", state, "--config", path])
        return (result.status, result.stderr, FileManager.default.fileExists(atPath: state))
    }

    @Test func theShippedConfigurationNamesTheUsersTheShippedUnitsRunAs() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.shipped))
        let config = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        // The retention job's unit runs as the user the daemon lets in for retention.
        let retention = try unit("coffre-retention.service")
        let user = try #require(config["retentionUser"])
        #expect(retention.split(separator: "\n").contains("User=\(user)"))
        // The operators' group is one sysusers creates.
        let sysusers = try unit("sysusers.d/coffre.conf")
        let group = try #require(config["operatorGroup"])
        let fields: [[Substring]] = sysusers.split(separator: "\n").map { line in line.split(separator: " ") }
        let groups: [String] = fields.filter { $0.count > 1 && $0[0] == "g" }.map { String($0[1]) }
        #expect(groups.contains(group), "\(groups)")
        // The daemon's unit passes the file where the install puts it, and does not restart on
        // a configuration it cannot use.
        let service = try unit("coffred.service").split(separator: "\n")
        #expect(service.contains("ExecStart=/usr/bin/coffred --config /etc/coffre/config.json"))
        #expect(service.contains("RestartPreventExitStatus=78"))
    }

    @Test func theDaemonReadsEveryKeyOfTheShippedFile() async throws {
        // On a machine where sysusers made the users, the daemon starts with it.
        if getpwnam("coffre-retention") != nil, getgrnam("coffre-admin") != nil {
            let daemon = try await Daemon(arguments: ["--config", Self.shipped])
            await daemon.stop()
            #expect(await daemon.waitForExit() == 0)
            return
        }
        // Elsewhere every key is known and well typed: the daemon gets as far as looking the
        // names up, and names the one missing.
        let started = try await start(config: try String(contentsOfFile: Self.shipped, encoding: .utf8))
        #expect(started.status == 78)
        let missing = [#"operatorGroup "coffre-admin" is no group"#, #"retentionUser "coffre-retention" is no user"#]
        #expect(missing.contains { started.stderr.contains($0) }, "\(started.stderr)")
    }

    @Test(arguments: [
        (#"{"retentionUsers": "65534"}"#, "unknown key(s) retentionUsers; the keys are "),
        (#"{"retentionDays": "ten"}"#, "retentionDays has the wrong type"),
        (#"{"rotationBatchSize": 1.5}"#, "has the wrong type or a value out of range"),
        (#"{"traceSyncMilliseconds": 5000}"#, "traceSyncMilliseconds must be 0 to 1000 (got 5000)"),
        (#"{"transferRateWindowSeconds": 0}"#, "transferRateWindowSeconds 1 to 3600"),
        (#"{"maxTransfersPerCaller": 0}"#, "maxTransfers and maxTransfersPerCaller 1 to 1000000"),
        (#"["operatorGroup"]"#, "is not a JSON object"),
        (#"{"retentionUser": "no-such-user-here"}"#, #"retentionUser "no-such-user-here" is no user on this system"#),
        (#"{"operatorGroup": "no-such-group-here"}"#, #"operatorGroup "no-such-group-here" is no group on this system"#),
    ])
    func aConfigurationTheDaemonCannotUseStopsItBeforeAnythingIsCreated(config: String, message: String) async throws {
        let result = try await start(config: config)
        #expect(result.status == 78)
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!result.stateCreated)
    }

    @Test func aMissingFileIsNamed() async throws {
        let scratch = try TemporaryDirectory(prefix: "coffre-config")
        let result = try await Program.run(
            Binaries.coffred, ["--dev", "--state-dir", scratch.path + "/state", "--config", scratch.path + "/absent.json"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("absent.json: No such file or directory"), "\(result.stderr)")
    }
}
