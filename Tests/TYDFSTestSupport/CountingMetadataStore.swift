import NIOConcurrencyHelpers
import TYDFSCore
import TYDFSMetadata

/// A metadata store that counts the batches (transactions) it is asked to write and passes
/// them on to SQLite: how tests see what group commit joined. Unchecked as `SQLMetadataStore`
/// is; its own counter is locked.
public final class CountingMetadataStore: MetadataStore, @unchecked Sendable {
    public let inner: SQLMetadataStore
    private let count = NIOLockedValueBox(0)

    /// Batches written so far.
    public var batches: Int { count.withLockedValue { $0 } }

    public init(_ inner: SQLMetadataStore) { self.inner = inner }

    public var maxPathBytes: Int { inner.maxPathBytes }

    public func load(
        file: @escaping @Sendable (StoredFile) -> Void, directory: @escaping @Sendable (MadeDirectory) -> Void,
        deletion: @escaping @Sendable (ChunkID, DataKeeperID) -> Void
    ) async throws {
        try await inner.load(file: file, directory: directory, deletion: deletion)
    }

    public func apply(_ edits: [MetadataEdit]) async throws {
        count.withLockedValue { $0 += 1 }
        try await inner.apply(edits)
    }

    public func close() async throws { try await inner.close() }
}
