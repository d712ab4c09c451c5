import TYDFSCore

/// The chunks that appeared on or left this datakeeper since the last report, so that a
/// heartbeat can carry what changed instead of every chunk held.
///
/// Only the last change of each chunk counts: a chunk stored then deleted before the report is
/// reported removed, one quarantined then copied back is reported added. The log is bounded
/// (`Limits.chunkChangeLogMaxEntries`); past the bound it forgets everything and says so through
/// `overflowed`, and only a full report can then tell the master the truth.
struct ChunkChangeLog {
    /// Chunk → whether its last change was an arrival (true) or a departure (false).
    private var changes: [ChunkID: Bool] = [:]
    let maxEntries: Int
    /// Set when changes were forgotten; cleared by `takeOverflow`.
    private(set) var overflowed = false

    init(maxEntries: Int = Limits.chunkChangeLogMaxEntries) {
        self.maxEntries = maxEntries
    }

    var count: Int { changes.count }

    mutating func added(_ chunk: ChunkID) { record(chunk, present: true) }
    mutating func removed(_ chunk: ChunkID) { record(chunk, present: false) }

    private mutating func record(_ chunk: ChunkID, present: Bool) {
        changes[chunk] = present
        if changes.count > maxEntries {
            changes = [:]
            overflowed = true
        }
    }

    /// Takes every change recorded so far, each list sorted.
    mutating func drain() -> (added: [ChunkID], removed: [ChunkID]) {
        defer { changes = [:] }
        return (changes.filter(\.value).keys.sorted(), changes.filter { !$0.value }.keys.sorted())
    }

    /// Puts back a drained batch whose report did not reach the master. A chunk that changed
    /// again since keeps its newer change.
    mutating func restore(added: [ChunkID], removed: [ChunkID]) {
        for chunk in added where changes[chunk] == nil { record(chunk, present: true) }
        for chunk in removed where changes[chunk] == nil { record(chunk, present: false) }
    }

    /// Whether changes were forgotten since the last call (then a full report is due).
    mutating func takeOverflow() -> Bool {
        defer { overflowed = false }
        return overflowed
    }
}
