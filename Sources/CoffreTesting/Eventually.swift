/// Polls `condition` until it holds, or until `timeout` has passed; true as soon as it holds.
///
/// The timeout bounds a wait for the daemon's background work on a loaded machine (the whole
/// suite runs at once on CI's two cores); it never measures speed, so it is generous and costs
/// nothing when the condition comes quickly.
public func eventually(
    timeout: Duration = .seconds(60), every interval: Duration = .milliseconds(10),
    _ condition: () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline, !Task.isCancelled {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}
