#if canImport(Glibc)
    import Glibc
#endif
public import CoffreDomain
public import Hummingbird
import NIOCore
import NIOPosix

/// What the server knows about a request beyond the request itself: the connection it came on
/// (for `SO_PEERCRED`) and, once the assertion is verified, the person it acts for.
public struct CoffreRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection; the kernel tells who is on the other end.
    let channel: any Channel
    /// The verified actor of a person-level request.
    public var actor: Actor?
    /// A transfer route's place among the transfers in flight (`TransferAdmission`): a streamed
    /// body keeps it until it is written.
    var transfer: TransferTicket?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
        actor = nil
        transfer = nil
    }

    /// JSON bodies are small; documents stream and never go through `collect`.
    public var maxUploadSize: Int { 64 * 1024 }

    /// The peer's credentials as the kernel reports them (`SO_PEERCRED`), never from anything the
    /// client sends.
    func peerCredentials() async throws -> PeerCredentials {
        guard let provider = channel as? any SocketOptionProvider else {
            throw PeerCredentialsUnavailable()
        }
        let credentials: KernelUCred = try await provider.unsafeGetSocketOption(
            level: .socket, name: .init(rawValue: SO_PEERCRED)
        ).get()
        return PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
    }
}

/// Who is on the other end of a Unix socket connection.
struct PeerCredentials: Sendable, Equatable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32

    /// Whether `uid` belongs to group `gid`, as primary or supplementary group.
    func isMember(of group: UInt32) -> Bool {
        if gid == group { return true }
        // getpwuid_r, not getpwuid: requests run on many threads at once.
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var scratch = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &scratch, scratch.count, &result) == 0, result != nil, let name = entry.pw_name else {
            return false
        }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, gid, &groups, &count) >= 0 else { return false }
        }
        return groups.prefix(Int(count)).contains(group)
    }
}

struct PeerCredentialsUnavailable: Error {}

/// Linux's `struct ucred` (pid_t, uid_t, gid_t), which Swift's Glibc module does not export
/// (it sits behind `_GNU_SOURCE`); same layout, so `getsockopt(SO_PEERCRED)` fills it.
struct KernelUCred {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}
