/// An RFC 9457 problem document (`application/problem+json`), with Coffre's stable `code`.
public struct Problem: Codable, Sendable, Error, Equatable {
    /// A URI naming the kind of problem: `urn:coffre:error:<code>`.
    public var type: String
    /// A short summary of the kind of problem.
    public var title: String
    /// The HTTP status.
    public var status: Int
    /// What went wrong in this case and how to fix it. Never personal data.
    public var detail: String
    /// The stable error code.
    public var code: ErrorCode

    public init(_ code: ErrorCode, detail: String) {
        self.type = "urn:coffre:error:\(code.rawValue)"
        self.title = String(code.rawValue.map { $0 == "_" ? " " : $0 })
        self.status = code.httpStatus
        self.detail = detail
        self.code = code
    }

    /// The media type problems are served as.
    public static let mediaType = "application/problem+json"
}
