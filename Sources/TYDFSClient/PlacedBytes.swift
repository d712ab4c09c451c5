import NIOCore

/// Bytes held as the buffers they arrived in, each at its offset, sorted and apart: a read's
/// verified pieces while they come (`ReceivedPieces`), or a mount's read window. A span comes out
/// as slices of them, never copied into one buffer.
public struct PlacedBytes: Sendable {
    private var placed: [(offset: Int64, bytes: ByteBuffer)] = []

    init() {}

    /// `pieces` one after another from offset 0.
    public init(contiguous pieces: [ByteBuffer]) {
        var offset: Int64 = 0
        for piece in pieces where piece.readableBytes > 0 {
            placed.append((offset, piece))
            offset += Int64(piece.readableBytes)
        }
    }

    /// Where the last piece ends: the byte count of contiguous pieces.
    public var end: Int64 { placed.last.map { $0.offset + Int64($0.bytes.readableBytes) } ?? 0 }

    /// Puts `incoming`, a run of non-empty pieces from `offset` to `end`, in place of whatever
    /// it covers, trimming the pieces it covers in part.
    mutating func place(_ incoming: [(offset: Int64, bytes: ByteBuffer)], from offset: Int64, to end: Int64) {
        // The pieces it overlaps lie together: from the first that ends past `offset` up to the
        // first that starts at or past `end`.
        let first = firstIndex { $0.offset + Int64($0.bytes.readableBytes) > offset }
        let last = firstIndex { $0.offset >= end }
        var replacement: [(offset: Int64, bytes: ByteBuffer)] = []
        if first < last, placed[first].offset < offset {
            let (start, bytes) = placed[first]
            replacement.append((start, bytes.getSlice(at: bytes.readerIndex, length: Int(offset - start))!))
        }
        replacement += incoming
        if first < last {
            let (start, bytes) = placed[last - 1]
            let stop = start + Int64(bytes.readableBytes)
            if stop > end { replacement.append((end, bytes.getSlice(at: bytes.readerIndex + Int(end - start), length: Int(stop - end))!)) }
        }
        placed.replaceSubrange(first..<last, with: replacement)
    }

    /// Up to `count` bytes from `start`, as slices of the pieces in order: all of them, or
    /// those before the first byte that is not held.
    public func slices(from start: Int64, count: Int64) -> [ByteBuffer] {
        var result: [ByteBuffer] = []
        var position = start
        let end = start + count
        var index = firstIndex { $0.offset + Int64($0.bytes.readableBytes) > start }
        while position < end, index < placed.count, placed[index].offset <= position {
            let (offset, bytes) = placed[index]
            let length = min(end, offset + Int64(bytes.readableBytes)) - position
            result.append(bytes.getSlice(at: bytes.readerIndex + Int(position - offset), length: Int(length))!)
            position += length
            index += 1
        }
        return result
    }

    /// The first index whose piece meets `condition`, or the count: pieces are sorted and
    /// apart, so `condition` is false for every piece before it and true after.
    private func firstIndex(where condition: ((offset: Int64, bytes: ByteBuffer)) -> Bool) -> Int {
        var low = 0
        var high = placed.count
        while low < high {
            let middle = (low + high) / 2
            if condition(placed[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
