/// One chunk's place in its file.
public struct ChunkExtent: Equatable, Sendable {
    public let index: Int
    public let offset: Int64
    public let length: Int64
}

/// How a file of known size is cut into chunks: fixed-size pieces, the last one shorter,
/// and no chunk at all for an empty file.
public enum ChunkLayout {
    public static func extents(fileBytes: Int64, chunkBytes: Int64) -> [ChunkExtent] {
        precondition(chunkBytes > 0 && fileBytes >= 0)
        var result: [ChunkExtent] = []
        result.reserveCapacity(Int(fileBytes / chunkBytes) + 1)
        var offset: Int64 = 0
        while offset < fileBytes {
            let length = min(chunkBytes, fileBytes - offset)
            result.append(ChunkExtent(index: result.count, offset: offset, length: length))
            offset += length
        }
        return result
    }

    /// Checks that `lengths` (in index order) is a valid cut of a file of `fileBytes` bytes:
    /// every chunk but the last is exactly `chunkBytes`, the last is 1…`chunkBytes`, and they add up.
    /// The chunk count is checked first, so a hostile `fileBytes` (negative, huge) costs nothing.
    public static func validate(lengths: [Int64], fileBytes: Int64, chunkBytes: Int64) throws {
        let invalid = TYDFSError(.invalidArgument, "chunk sizes do not add up to a \(fileBytes)-byte file cut at \(chunkBytes) bytes")
        guard chunkBytes > 0, fileBytes >= 0 else { throw invalid }
        let count = fileBytes / chunkBytes + (fileBytes % chunkBytes == 0 ? 0 : 1)
        guard Int64(lengths.count) == count, lengths == extents(fileBytes: fileBytes, chunkBytes: chunkBytes).map(\.length) else {
            throw invalid
        }
    }
}
