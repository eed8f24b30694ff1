// swift-tools-version:6.2
import PackageDescription

/// Upcoming features Hummingbird enables too: explicit existentials, imports that say what they
/// expose, and members visible only through the modules a file imports. Warnings are errors in
/// Coffre's own targets (not in dependencies, which SwiftPM's -Xswiftc would also hit).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "coffre",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "coffred", targets: ["coffred"]),
        .executable(name: "coffre", targets: ["coffre"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    ],
    targets: [
        // System libraries, found through pkg-config (Debian's libsodium-dev, libsystemd-dev).
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // OpenSSL's libcrypto, for SHA-256 only: it uses the CPU's SHA extensions (Debian's libssl-dev).
        .systemLibrary(name: "CLibcrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Linux calls Swift cannot make directly (openat2, preadv2 with RWF_NOWAIT, sync_file_range), in C.
        .target(name: "CLinux"),

        // Cryptography: typed keys in locked memory, envelope wrapping, the blob stream format,
        // keyed hashes and Ed25519. Knows nothing of files, SQL or HTTP.
        .target(name: "CoffreCrypto", dependencies: ["CSodium", "CLibcrypto"], swiftSettings: swiftSettings),

        // The dossier's rules: identifiers, actors, document classes, access decisions. Pure logic.
        .target(name: "CoffreDomain", swiftSettings: swiftSettings),

        // The wire contract shared by server and client: Codable bodies, error codes, headers,
        // actor assertions.
        .target(
            name: "CoffreAPI",
            dependencies: ["CoffreDomain", "CoffreCrypto"],
            swiftSettings: swiftSettings
        ),

        // Storage: atomic blob files, the SQLite index, and the vault that combines them with keys.
        .target(
            name: "CoffreStore",
            dependencies: [
                "CoffreCrypto", "CoffreDomain", "CLinux",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // The daemon's HTTP API on a Unix socket (passed by systemd or bound), systemd integration
        // (notify, watchdog, reload, journal), and the wiring of everything into one service group.
        .target(
            name: "CoffreServer",
            dependencies: [
                "CoffreAPI", "CoffreStore", "CoffreDomain", "CoffreCrypto", "CSystemd", "CLinux",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // ServerQuiescingHelper: the graceful stop of the socket server (Hummingbird's own).
                .product(name: "NIOExtras", package: "swift-nio-extras"),
            ],
            resources: [.copy("Resources/habilitations-default.json")],
            swiftSettings: swiftSettings
        ),

        // The client library: HTTP over the Unix socket, assertions minted for development.
        .target(
            name: "CoffreClient",
            dependencies: [
                "CoffreAPI", "CoffreCrypto", "CoffreDomain",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        .executableTarget(
            name: "coffred",
            dependencies: [
                "CoffreServer", "CoffreDomain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "coffre",
            dependencies: [
                "CoffreClient", "CoffreAPI", "CoffreDomain", "CoffreCrypto", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // Benchmarks that run on the vault's own code (`make bench-rotation`; see docs/benchmarks.md).
        .executableTarget(
            name: "coffre-bench",
            dependencies: [
                "CoffreStore", "CoffreCrypto", "CoffreDomain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // libFuzzer targets for every parser that sees client bytes (`make fuzz`); built without
        // the fuzzer it writes the seed corpus and replays inputs.
        .executableTarget(
            name: "coffre-fuzz",
            dependencies: ["CoffreAPI", "CoffreCrypto", "CoffreDomain"],
            swiftSettings: swiftSettings
        ),

        // Helpers for tests: temporary state directories, a daemon on a private socket, the client.
        .target(
            name: "CoffreTesting",
            dependencies: ["CoffreAPI", "CoffreCrypto", "CoffreDomain"],
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "CoffreCryptoTests", dependencies: ["CoffreCrypto"], swiftSettings: swiftSettings),
        .testTarget(name: "CoffreAPITests", dependencies: ["CoffreAPI", "CoffreDomain"], swiftSettings: swiftSettings),
        .testTarget(name: "CoffreDomainTests", dependencies: ["CoffreDomain", "CoffreClient"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CoffreStoreTests",
            dependencies: [
                "CoffreStore", "CoffreCrypto", "CoffreDomain", "CoffreTesting",
                // To damage an index on purpose (RecoveryTests).
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The server in-process: its router driven through Hummingbird's testing support, over a
        // real vault, with a clock the tests set.
        .testTarget(
            name: "CoffreServerTests",
            dependencies: [
                "CoffreServer", "CoffreStore", "CoffreAPI", "CoffreDomain", "CoffreCrypto", "CoffreTesting",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CoffreEndToEndTests",
            dependencies: ["CoffreTesting", "CoffreAPI", "CoffreCrypto", "CoffreDomain"],
            swiftSettings: swiftSettings
        ),
    ]
)
