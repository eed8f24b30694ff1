import ArgumentParser

/// `coffre-bench`: benchmarks that need the vault's own code rather than its socket. Each one
/// measures Coffre and its physical limit side by side in one run and prints the ratio; none of
/// them asserts anything (that is `make test`'s job). See docs/benchmarks.md.
@main
struct CoffreBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coffre-bench", abstract: "Coffre's benchmarks that run on the vault itself (see docs/benchmarks.md).",
        subcommands: [RotationBenchmark.self])
}
