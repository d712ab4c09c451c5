import Foundation
import NIOConcurrencyHelpers
import TYDFSClient
import TYDFSCore
import TYDFSSecurity

/// The access keys S3 callers sign with, fetched from the master and kept for a few seconds, so a
/// busy caller costs the master one lookup per `lifetimeSeconds`, and a revoked key stops working
/// within that time. Each key comes with a client that acts for it.
final class AccessKeyCache: Sendable {
    struct Entry {
        var key: AccessKey
        var client: TYDFSClient
        var fetched: ContinuousClock.Instant
    }

    static let lifetimeSeconds = 5
    private let cluster: TYDFSClient
    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    /// Ids the master said it does not know, and when: asked again only after the lifetime, so
    /// requests signed with made-up keys do not each cost the master a lookup.
    private let misses = RecentlySeen(lifetimeSeconds: AccessKeyCache.lifetimeSeconds)

    init(cluster: TYDFSClient) { self.cluster = cluster }

    /// The key `id` if it was fetched within the lifetime.
    func cached(_ id: String) -> Entry? {
        entries.withLockedValue { entries in
            guard let entry = entries[id] else { return nil }
            guard ContinuousClock.now - entry.fetched < .seconds(Self.lifetimeSeconds) else {
                entries[id] = nil
                return nil
            }
            return entry
        }
    }

    /// Fetches the key `id` from the master; nil when the master knows no such key.
    func fetch(_ id: String) async throws -> Entry? {
        guard AccessKey.isWellFormedID(id) else { return nil }
        if misses.contains(id) { return nil }
        let key: AccessKey
        do {
            key = try await cluster.accessKey(id)
        } catch let error as TYDFSError where error.code == .notFound {
            misses.insert(id)
            return nil
        }
        let entry = Entry(
            key: key, client: cluster.signed(by: RequestSigner(accessKeyID: key.accessKeyID, secret: key.secretAccessKey)),
            fetched: .now)
        entries.withLockedValue { $0[id] = entry }
        return entry
    }
}
