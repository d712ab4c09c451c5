import NIOConcurrencyHelpers
import TYDFSCore

/// Copies a whole namespace from one store to another (`tydfs metadata migrate`): SQLite to
/// PostgreSQL when a cluster outgrows one machine's master. The target must be empty, and the
/// copy is one transaction: a migration that fails leaves the target empty. (The command holds
/// the leader lease meanwhile, so no master can lead on a partial namespace.)
public enum MetadataMigration {
    /// What was copied.
    public struct Counts: Sendable, Equatable {
        public var files = 0
        public var chunks = 0
        public var directories = 0
        public var deletions = 0
    }

    public static func copy(from source: any MetadataStore, to target: SQLMetadataStore) async throws -> Counts {
        let existing = try await target.loadNamespace()
        guard existing.fileCount == 0, existing.madeDirectories(under: .root).isEmpty else {
            throw TYDFSError(.alreadyExists, "the target already holds \(existing.fileCount) files: migrate into an empty database")
        }
        let collected = NIOLockedValueBox((edits: [MetadataEdit](), counts: Counts()))
        try await source.load(
            file: { file in
                collected.withLockedValue {
                    $0.edits.append(.putFile(file))
                    $0.counts.files += 1
                    $0.counts.chunks += file.chunks.count
                }
            },
            directory: { directory in
                collected.withLockedValue {
                    $0.edits.append(.makeDirectory(directory.path, mtimeMillis: directory.mtimeMillis, attributes: directory.attributes))
                    $0.counts.directories += 1
                }
            },
            deletion: { chunk, datakeeper in
                collected.withLockedValue {
                    $0.edits.append(.queueDeletion(chunk, datakeeper))
                    $0.counts.deletions += 1
                }
            })
        let (edits, counts) = collected.withLockedValue { ($0.edits, $0.counts) }
        // Built as a master would load it, so that a source no master could load (see
        // `NamespaceConflict`) is refused before anything is written.
        let checked = Namespace()
        for edit in edits {
            switch edit {
            case .putFile(let file): try checked.load(file)
            case .makeDirectory(let path, let mtimeMillis, let attributes):
                try checked.loadDirectory(MadeDirectory(path: path, mtimeMillis: mtimeMillis, attributes: attributes))
            default: break
            }
        }
        try await target.apply(edits)
        return counts
    }
}
