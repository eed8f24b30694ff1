import ArgumentParser
import CoffreAPI
import CoffreClient
import CoffreCrypto
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `coffre admin keys …`: the master keys (see keys/README.md for the runbook).
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Master keys: status, new, rotate, retire, reload (operators).",
        subcommands: [Status.self, New.self, Rotate.self, Retire.self, Reload.self], defaultSubcommand: Status.self)

    struct Status: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each master key version, how many keys it wraps, and the rotation's progress.")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            let keys = try await global.client().masterKeys()
            if global.json { return Output.json(keys) }
            KeysCommand.print(keys)
        }
    }

    struct New: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a fresh master key (32 random bytes) in the format the daemon reads.",
            discussion: """
                Writes DIR/coffre-master-VERSION (mode 0400), or the raw key to stdout with `--output -` for \
                `systemd-creds encrypt --name=coffre-master-VERSION - /etc/credstore.encrypted/coffre-master-VERSION`. \
                Then reload the daemon (`systemctl reload coffred`) and run `coffre admin keys rotate`.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "The version (default: one above every version the daemon knows, or found in --dir).")
        var version: UInt32?
        @Option(help: "The key directory to write into.") var dir = "/etc/coffre/keys"
        @Option(name: [.customShort("o"), .long], help: "Write the raw key to this file instead ('-' for stdout).")
        var output: String?

        func execute() async throws(ClientError) {
            var version = self.version ?? 0
            if self.version == nil { version = await nextVersion() }
            guard version > 0 else {
                throw ClientError(code: "invalid_version", message: "versions start at 1", exitCode: ExitStatus.usage)
            }
            let name = "coffre-master-\(version)"
            if output == "-" {
                guard isatty(STDOUT_FILENO) == 0 else {
                    throw ClientError(
                        code: "stdout_is_terminal", message: "refusing to print a key on a terminal: pipe it into systemd-creds",
                        exitCode: ExitStatus.usage)
                }
                try KeyFile.write(to: nil, version: version)
                return
            }
            let path = output ?? (dir + "/" + name)
            try KeyFile.write(to: path, version: version)
            if global.json { return Output.json(["path": path, "version": String(version)]) }
            Output.line(path)
            Output.message("next: `systemctl reload coffred` (or `coffre admin keys reload`), then `coffre admin keys rotate`")
        }

        private func nextVersion() async -> UInt32 {
            if let client = try? global.client(), let keys = try? await client.masterKeys() {
                return (keys.versions.map(\.version).max() ?? 0) + 1
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return (names.compactMap { UInt32($0.dropFirst("coffre-master-".count)) }.max() ?? 0) + 1
        }
    }

    struct Rotate: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make the newest installed master key active and rewrap every dossier key under it.",
            discussion: """
                The daemon rewraps in the background while stores and fetches go on; this command follows the \
                progress (a bar on a terminal; with --json one status document per line) until it is done. \
                A rotation survives a restart of the daemon and resumes where it stopped. In development mode, \
                the daemon creates the next key itself when none is newer.
                """)
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Start the rotation and return at once.") var noWait = false

        func execute() async throws(ClientError) {
            let client = try global.client()
            var keys = try await client.rotateMasterKey()
            guard !noWait else {
                if global.json { return Output.json(keys) }
                return KeysCommand.print(keys)
            }
            let bar = ProgressBar.make(count: keys.rotation?.total ?? 0, label: "rewrapping")
            var shown = 0
            var lastProgress = Date()
            var lastDone = -1
            while let rotation = keys.rotation, rotation.state == "running" {
                if global.json { Output.jsonLine(keys) }
                bar?.advance(max(rotation.done - shown, 0))
                shown = max(shown, rotation.done)
                if rotation.done != lastDone {
                    lastDone = rotation.done
                    lastProgress = Date()
                } else if Date().timeIntervalSince(lastProgress) > 60 {
                    throw ClientError(
                        code: "rotation_stalled",
                        message: "the rotation has not moved for a minute; see the daemon's log (it resumes at the next start "
                            + "or `coffre admin keys rotate`)", exitCode: ExitStatus.temporaryFailure)
                }
                try? await Task.sleep(for: .milliseconds(200))
                keys = try await client.masterKeys()
            }
            bar?.advance(max((keys.rotation?.done ?? 0) - shown, 0))
            bar?.finish()
            if global.json { return Output.jsonLine(keys) }
            KeysCommand.print(keys)
        }
    }

    struct Retire: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire a master key version once nothing uses it; then destroy its file.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The version to retire.") var version: UInt32

        func execute() async throws(ClientError) {
            let keys = try await global.client().retireMasterKey(version: version)
            if global.json { return Output.json(keys) }
            KeysCommand.print(keys)
            Output.message("version \(version) is retired: destroy coffre-master-\(version) wherever it is installed")
        }
    }

    struct Reload: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Have the daemon read its key files again (as `systemctl reload coffred` does).")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            let keys = try await global.client().reloadMasterKeys()
            if global.json { return Output.json(keys) }
            KeysCommand.print(keys)
        }
    }

    static func print(_ keys: MasterKeysView) {
        Output.line("active master key: \(keys.activeVersion)")
        Output.line("VERSION  STATE      INSTALLED  DOSSIER KEYS  ARCHIVED  VAULT KEYS")
        for version in keys.versions {
            Output.line(
                [
                    String(version.version).padding(toLength: 8, withPad: " ", startingAt: 0),
                    version.state.padding(toLength: 10, withPad: " ", startingAt: 0),
                    (version.installed ? "yes" : "no").padding(toLength: 10, withPad: " ", startingAt: 0),
                    String(version.dossierKeys).padding(toLength: 13, withPad: " ", startingAt: 0),
                    String(version.archivedDossierKeys).padding(toLength: 9, withPad: " ", startingAt: 0),
                    String(version.vaultKeys),
                ].joined(separator: " "))
        }
        if let rotation = keys.rotation {
            let failed = rotation.failed > 0 ? ", \(rotation.failed) failed (run `coffre admin verify`)" : ""
            Output.line(
                "rotation to \(rotation.targetVersion): \(rotation.state), \(rotation.done) of \(rotation.total) rewrapped\(failed)"
                    + ", started \(rotation.startedAt)" + (rotation.finishedAt.map { ", finished \($0)" } ?? ""))
        }
        if let purges = keys.purges {
            // Crypto-shredding reaches a backup only once no key that opens it is left.
            let older = keys.versions.filter(\.predatesLastPurge)
            let inUse = older.filter { $0.state != "retired" }.map { String($0.version) }
            let retired = older.filter { $0.state == "retired" }.map { String($0.version) }
            Output.line("last purge: \(purges.lastAt) (\(purges.dossiers) dossier(s) purged in all)")
            if !inUse.isEmpty {
                Output.line(
                    "backups made before it hold purged dossiers' keys, which version(s) \(inUse.joined(separator: ", ")) open: "
                        + "rotate past them, at the site's rotation period")
            }
            if !retired.isEmpty {
                Output.line(
                    "retired version(s) \(retired.joined(separator: ", ")) open such backups too: destroy their last copies "
                        + "once the backups made before their retirement have expired")
            }
        }
    }
}

/// A new master key file: 32 bytes from libsodium's CSPRNG, created exclusively (an existing
/// key is never overwritten), mode 0400, fsync'd with its directory; the bytes are zeroed after.
enum KeyFile {
    /// - Parameter path: the file, or nil for stdout.
    static func write(to path: String?, version: UInt32) throws(ClientError) {
        var bytes = SecureRandom.bytes(32)
        defer { secureZero(&bytes) }
        let fd = path.map { open($0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o400) } ?? STDOUT_FILENO
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw ClientError(
                code: "cannot_create", message: "cannot create \(path ?? "stdout"): \(reason)", exitCode: ExitStatus.cannotCreate)
        }
        defer { if path != nil { close(fd) } }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == 32, path == nil || fsync(fd) == 0 else {
            if let path { unlink(path) }
            throw ClientError(code: "cannot_create", message: "cannot write the new key", exitCode: ExitStatus.ioFailure)
        }
        if let path {
            let directory = (path as NSString).deletingLastPathComponent
            let dirfd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dirfd >= 0 {
                fsync(dirfd)
                close(dirfd)
            }
        }
    }
}
