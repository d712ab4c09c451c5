/// The one format a chunk has on the wire and on disk: its data, then one CRC32C per block of
/// `ChunkFrame.blockBytes` (the last block may be shorter), each as 4 little-endian bytes.
///
/// A checksum per block, as HDFS keeps one per 512 bytes, lets any block-aligned range be
/// verified on its own: a reader fetches ranges of one chunk from several replicas and checks
/// each, and a datakeeper checks each block before it sends it. A range travels in the same
/// format: its blocks' data, then their checksums. Because the checksums travel with the
/// bytes, every hop (datakeeper on write, datakeeper on serve, client on read, scrubber)
/// verifies the same way, and no side file can drift out of step with the data it describes.
///
/// A chunk of at most one block (every small file) has a 4-byte trailer, the CRC32C of its
/// data: the format chunks had before per-block checksums, byte for byte.
public enum ChunkFrame {
    /// Bytes of data each checksum covers, and the granularity of range reads.
    public static let blockBytes = Limits.checksumBlockBytes

    /// Blocks in a chunk of `dataBytes` (an empty chunk has one empty block).
    public static func blockCount(dataBytes: Int64) -> Int64 { max(1, (dataBytes + blockBytes - 1) / blockBytes) }

    /// Bytes of checksums that follow `dataBytes` of data.
    public static func trailerBytes(dataBytes: Int64) -> Int64 { 4 * blockCount(dataBytes: dataBytes) }

    /// Size of a frame holding `dataBytes` bytes of data.
    public static func frameBytes(dataBytes: Int64) -> Int64 { dataBytes + trailerBytes(dataBytes: dataBytes) }

    /// The data size of a frame of `frameBytes` bytes (e.g. a chunk file's size), or nil when no
    /// data size gives a frame that long (a truncated or padded file).
    public static func dataBytes(frameBytes: Int64) -> Int64? {
        // No chunk is larger than `Limits.maxChunkSizeBytes`; past that (a damaged or made-up
        // file's size), the arithmetic below could overflow.
        guard frameBytes >= 4, frameBytes <= Self.frameBytes(dataBytes: Limits.maxChunkSizeBytes) else { return nil }
        // frameBytes grows strictly with dataBytes, so at most one data size fits.
        let blocks = max(1, (frameBytes + blockBytes + 3) / (blockBytes + 4))
        let data = frameBytes - 4 * blocks
        return data >= 0 && Self.frameBytes(dataBytes: data) == frameBytes ? data : nil
    }

    /// The trailer of data whose blocks have the checksums `blockCRCs`.
    public static func trailer(blockCRCs: some Collection<UInt32>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 * blockCRCs.count)
        for crc in blockCRCs {
            bytes += [UInt8(crc & 0xff), UInt8((crc >> 8) & 0xff), UInt8((crc >> 16) & 0xff), UInt8(crc >> 24)]
        }
        return bytes
    }

    /// The checksum at `index` of a trailer.
    public static func blockCRC(in trailer: some Collection<UInt8>, at index: Int) -> UInt32 {
        let start = trailer.index(trailer.startIndex, offsetBy: 4 * index)
        var value: UInt32 = 0
        for (shift, byte) in trailer[start...].prefix(4).enumerated() { value |= UInt32(byte) << (8 * shift) }
        return value
    }

    /// A whole frame of `data`: for small chunks held in memory, and for tests.
    public static func frame(_ data: [UInt8]) -> [UInt8] {
        var checksums = BlockChecksums()
        data.withUnsafeBytes { checksums.update($0) }
        return data + trailer(blockCRCs: checksums.all)
    }

    /// The CRC32C of a whole run of data from the checksums of its blocks, in order (every
    /// block full but the last, which holds what is left of `dataBytes`).
    public static func combine(_ blockCRCs: [UInt32], dataBytes: Int64) -> UInt32 {
        guard var crc = blockCRCs.first else { return 0 }
        for (index, block) in blockCRCs.enumerated().dropFirst() {
            let length = index == blockCRCs.count - 1 ? dataBytes - Int64(index) * blockBytes : blockBytes
            crc = length == blockBytes ? fullBlockShift.apply(crc) ^ block : CRC32C.combine(crc, block, length2: length)
        }
        return crc
    }

    private static let fullBlockShift = CRC32C.Shift(bytes: blockBytes)
}

/// A range of a chunk that a reader can verify on its own: whole blocks, from a block boundary
/// to a block boundary or the chunk's end.
public struct ChunkRange: Sendable, Equatable, CustomStringConvertible {
    public var offset: Int64
    public var length: Int64

    public init(offset: Int64, length: Int64) {
        self.offset = offset
        self.length = length
    }

    /// The range of a chunk of `dataBytes` that `offset` and `length` (from a request) name;
    /// throws `.invalidArgument` unless it is block-aligned, non-empty and inside the chunk.
    public static func validated(offset: Int64, length: Int64, dataBytes: Int64) throws -> ChunkRange {
        let end = offset.addingReportingOverflow(length)
        guard offset >= 0, length > 0, !end.overflow, end.partialValue <= dataBytes, offset % ChunkFrame.blockBytes == 0,
              end.partialValue == dataBytes || end.partialValue % ChunkFrame.blockBytes == 0
        else {
            throw TYDFSError(.invalidArgument, "bytes \(offset)+\(length) are not a range of whole \(ChunkFrame.blockBytes)-byte blocks inside a chunk of \(dataBytes) bytes")
        }
        return ChunkRange(offset: offset, length: length)
    }

    /// Splits a chunk of `dataBytes` into at most `parts` block-aligned ranges of nearly equal
    /// size, none smaller than `minimumBytes` (so a small chunk stays whole).
    public static func split(dataBytes: Int64, parts: Int, minimumBytes: Int64) -> [ChunkRange] {
        let blocks = ChunkFrame.blockCount(dataBytes: dataBytes)
        let minimumBlocks = max(1, minimumBytes / ChunkFrame.blockBytes)
        let count = max(1, min(Int64(parts), blocks / minimumBlocks))
        var ranges: [ChunkRange] = []
        var firstBlock: Int64 = 0
        for part in 0..<count {
            let blocksHere = blocks / count + (part < blocks % count ? 1 : 0)
            let offset = firstBlock * ChunkFrame.blockBytes
            let end = min(dataBytes, (firstBlock + blocksHere) * ChunkFrame.blockBytes)
            ranges.append(ChunkRange(offset: offset, length: end - offset))
            firstBlock += blocksHere
        }
        return ranges
    }

    /// The first block this range covers.
    public var firstBlock: Int64 { offset / ChunkFrame.blockBytes }

    public var description: String { "bytes \(offset)–\(offset + length - 1)" }
}

/// Per-block CRC32Cs of a chunk's data (or of a range starting at a block boundary), fed in
/// pieces of any size: what a writer puts in a frame's trailer, and what a reader checks it against.
public struct BlockChecksums: Sendable {
    /// Checksums of the blocks completed so far.
    public private(set) var completed: [UInt32] = []
    private var current = CRC32C()
    private var currentBytes: Int64 = 0
    /// Bytes of data fed so far.
    public private(set) var dataBytes: Int64 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var start = 0
        while start < bytes.count {
            let take = min(bytes.count - start, Int(ChunkFrame.blockBytes - currentBytes))
            current.update(UnsafeRawBufferPointer(rebasing: bytes[start..<(start + take)]))
            currentBytes += Int64(take)
            start += take
            if currentBytes == ChunkFrame.blockBytes {
                completed.append(current.value)
                current = CRC32C()
                currentBytes = 0
            }
        }
        dataBytes += Int64(bytes.count)
    }

    /// Every block's checksum, the last partial block (or an empty chunk's one block) included.
    public var all: [UInt32] { currentBytes > 0 || completed.isEmpty ? completed + [current.value] : completed }

    /// The CRC32C of all the data fed.
    public var whole: UInt32 { ChunkFrame.combine(all, dataBytes: dataBytes) }
}

/// Reads a frame of a known data size arriving in pieces of any size, separating data from
/// trailer and verifying every block.
///
/// `consume` hands out, through `emit`, the data bytes in order; only `finish` says whether they
/// were right, so a caller keeps them out of service until then.
public struct ChunkFrameReader: Sendable {
    /// Bytes of data the frame holds (known from the request, the volume record or the file size).
    public let dataBytes: Int64
    private var checksums = BlockChecksums()
    private var trailer: [UInt8] = []
    private var frameBytesSeen: Int64 = 0

    public init(dataBytes: Int64) {
        self.dataBytes = dataBytes
        trailer.reserveCapacity(Int(ChunkFrame.trailerBytes(dataBytes: dataBytes)))
    }

    /// The whole frame's size.
    public var frameBytes: Int64 { ChunkFrame.frameBytes(dataBytes: dataBytes) }

    /// Data bytes handed out so far.
    public var dataBytesEmitted: Int64 { checksums.dataBytes }

    public mutating func consume(
        _ bytes: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        guard frameBytesSeen + Int64(bytes.count) <= frameBytes else {
            throw TYDFSError(.protocolViolation, "chunk is larger than the \(frameBytes) bytes announced")
        }
        frameBytesSeen += Int64(bytes.count)
        let dataHere = Int(min(Int64(bytes.count), dataBytes - checksums.dataBytes))
        if dataHere > 0 {
            let data = UnsafeRawBufferPointer(rebasing: bytes[..<dataHere])
            checksums.update(data)
            try emit(data)
        }
        if dataHere < bytes.count { trailer.append(contentsOf: bytes[dataHere...]) }
    }

    /// Ends the frame: checks that all of it arrived and that every block matches its checksum.
    /// Returns the CRC32C of the whole data.
    public func finish() throws -> UInt32 {
        guard frameBytesSeen == frameBytes else {
            throw TYDFSError(.protocolViolation, "chunk ended after \(frameBytesSeen) of its \(frameBytes) bytes (\(dataBytes) of data and its checksums)")
        }
        let computed = checksums.all
        for (index, crc) in computed.enumerated() {
            let stored = ChunkFrame.blockCRC(in: trailer, at: index)
            guard stored == crc else {
                let start = Int64(index) * ChunkFrame.blockBytes
                let end = min(dataBytes, start + ChunkFrame.blockBytes)
                throw TYDFSError(.checksumMismatch, "chunk checksum mismatch in block \(index) (data bytes \(start)–\(max(start, end - 1))): data has crc32c \(hex32(crc)), trailer says \(hex32(stored))")
            }
        }
        return ChunkFrame.combine(computed, dataBytes: dataBytes)
    }
}
