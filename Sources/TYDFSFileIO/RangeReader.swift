import NIOCore
import TYDFSCore

/// Reads one range of a file in I/O-buffer pieces for a datakeeper serving it, asking the disk
/// for `aheadBytes` past each piece but never for anything past the range.
///
/// Why: a datakeeper serves one range of a chunk and another replica serves the next, but the
/// kernel's read-ahead (8 MiB here) read on past every range: a 1 GiB get made the datakeepers
/// read 1,310 MiB from the disk, and a `cp` of 1 GiB out of the mount, whose 8 MiB windows rotate
/// over the replicas, 2,576 MiB. With the kernel's read-ahead off for the descriptor and this
/// reader's own within the range, they read 1,024. It asks a little ahead of the reader, not for
/// the whole range at once, so the first piece never waits behind the rest of the range and a
/// range abandoned early (a hedge that lost) cost little disk time.
public struct RangeReader {
    private let file: LocalFile
    private let end: Int64
    private let aheadBytes: Int64
    /// Where the next piece starts.
    public private(set) var position: Int64

    /// Starts reading `range` of `file`, a descriptor of the caller's own (its read-ahead is
    /// switched off), with the first `aheadBytes` asked of the disk at once.
    public static func start(_ file: LocalFile, range: Range<Int64>, aheadBytes: Int64) async -> RangeReader {
        await file.readOnlyWhatIsAsked(prefetching: range.lowerBound..<min(range.upperBound, range.lowerBound + aheadBytes))
        return RangeReader(file: file, end: range.upperBound, aheadBytes: aheadBytes, position: range.lowerBound)
    }

    private init(file: LocalFile, end: Int64, aheadBytes: Int64, position: Int64) {
        self.file = file
        self.end = end
        self.aheadBytes = aheadBytes
        self.position = position
    }

    /// The next piece (up to an I/O buffer, in a buffer of `RecycledIOBuffers`), nil once the
    /// range is read. An empty piece means the file ended early: the caller decides what that is.
    public mutating func next() async throws -> ByteBuffer? {
        guard position < end else { return nil }
        let count = min(Int64(Limits.ioBufferBytes), end - position)
        // What enters the window ahead of the reader with this piece, asked for in the same
        // trip to the thread pool as the piece.
        let (from, to) = (max(position + aheadBytes, position + count), min(end, position + count + aheadBytes))
        let piece = try await RecycledIOBuffers.read(count: Int(count), at: position, from: file, prefetching: from < to ? from..<to : nil)
        position += Int64(piece.readableBytes)
        return piece
    }
}
