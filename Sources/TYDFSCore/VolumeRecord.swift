/// The format of one record in a volume, the append-only file that holds many small chunks.
///
/// Small chunks share volumes so that storing one costs an append and a share of one
/// `fdatasync`, not a file of its own, two fsyncs and a rename. Every record describes itself,
/// so a volume's index can be rebuilt by reading the volume alone:
///
///     0  magic "TYDV"              4 bytes
///     4  kind (1 chunk, 2 tombstone) 1 byte
///     5  format version (1)        1 byte
///     6  zero                      2 bytes
///     8  chunk id, high half       8 bytes, little-endian
///    16  chunk id, low half        8 bytes, little-endian
///    24  frame length              4 bytes, little-endian (0 for a tombstone)
///    28  CRC32C of bytes 0..<28    4 bytes, little-endian
///    32  the chunk's frame (data + CRC32C trailer, see `ChunkFrame`), for a chunk record
///
/// The header's own checksum catches a damaged header (whose length could not be trusted); the
/// frame's trailer catches damaged data, as for every chunk everywhere.
public enum VolumeRecord {
    /// Bytes in a record header.
    public static let headerBytes = 32
    static let magic: [UInt8] = Array("TYDV".utf8)
    static let version: UInt8 = 1

    /// What a record says.
    public enum Kind: UInt8, Sendable {
        /// The chunk's frame follows the header.
        case chunk = 1
        /// The chunk was deleted or quarantined: an earlier record of it no longer counts.
        case tombstone = 2
    }

    /// A decoded record header.
    public struct Header: Equatable, Sendable {
        public var kind: Kind
        public var chunk: ChunkID
        /// Bytes of frame after the header (0 for a tombstone).
        public var frameBytes: Int64

        public init(kind: Kind, chunk: ChunkID, frameBytes: Int64) {
            self.kind = kind
            self.chunk = chunk
            self.frameBytes = frameBytes
        }

        /// Bytes of the whole record, header included.
        public var recordBytes: Int64 { Int64(VolumeRecord.headerBytes) + frameBytes }
    }

    /// The header of a chunk record whose frame holds `frameBytes` bytes.
    public static func chunkHeader(_ chunk: ChunkID, frameBytes: Int64) -> [UInt8] {
        encode(Header(kind: .chunk, chunk: chunk, frameBytes: frameBytes))
    }

    /// The whole record that marks `chunk` deleted.
    public static func tombstone(_ chunk: ChunkID) -> [UInt8] {
        encode(Header(kind: .tombstone, chunk: chunk, frameBytes: 0))
    }

    /// The 32 header bytes. `frameBytes` must be below `Limits.volumeChunkMaxBytes` (checked
    /// by the caller, which decides what goes into a volume).
    public static func encode(_ header: Header) -> [UInt8] {
        precondition(header.frameBytes >= 0 && header.frameBytes <= Int64(UInt32.max), "frame too large for a volume record")
        var bytes = magic + [header.kind.rawValue, version, 0, 0]
        append(header.chunk.high, to: &bytes)
        append(header.chunk.low, to: &bytes)
        append(UInt32(header.frameBytes), to: &bytes)
        append(CRC32C.checksum(bytes), to: &bytes)
        return bytes
    }

    /// The header at the start of `bytes`, or nil when the bytes are not a valid header (too few,
    /// wrong magic or version, unknown kind, a frame too large for a volume, or a checksum that
    /// does not match).
    public static func decode<Bytes: Collection>(_ bytes: Bytes) -> Header? where Bytes.Element == UInt8 {
        if let header = bytes.withContiguousStorageIfAvailable({ decode(raw: UnsafeRawBufferPointer($0)) }) { return header }
        return Array(bytes).withUnsafeBytes { decode(raw: $0) }
    }

    /// The same from raw memory: the start-up scan decodes millions of headers, so no copies.
    public static func decode(raw bytes: UnsafeRawBufferPointer) -> Header? {
        guard bytes.count >= headerBytes,
              bytes[0] == magic[0], bytes[1] == magic[1], bytes[2] == magic[2], bytes[3] == magic[3],
              bytes[5] == version, bytes[6] == 0, bytes[7] == 0, let kind = Kind(rawValue: bytes[4])
        else { return nil }
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: bytes[0..<28]))
        guard UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 28, as: UInt32.self)) == crc.value else { return nil }
        let frameBytes = Int64(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt32.self)))
        switch kind {
        case .chunk: guard ChunkFrame.dataBytes(frameBytes: frameBytes) != nil, frameBytes <= Limits.volumeChunkMaxBytes else { return nil }
        case .tombstone: guard frameBytes == 0 else { return nil }
        }
        let chunk = ChunkID(
            high: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
            low: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        return Header(kind: kind, chunk: chunk, frameBytes: frameBytes)
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        for index in 0..<(T.bitWidth / 8) { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
}

/// Reads a volume from its start and finds its records: how the index is rebuilt at start-up.
///
/// The rules, for a volume that may have been cut off by a crash or damaged since:
/// - a header that decodes and whose frame fits in the volume is a record;
/// - a header that decodes but whose frame runs past the end, or fewer than 32 bytes left, is a
///   torn tail: the scan ends there and `validBytes` says where to truncate;
/// - a header that does not decode is damage: the scan looks for the next valid header after it
///   and carries on there (the bytes between are reported in `damaged`, the chunks in them are
///   lost to this datakeeper and re-replicated by the master). With none after it, it is a torn
///   tail too. A damaged header in the middle thus never costs the good records behind it.
///
/// Reading goes through `read` in blocks, so the scanner itself does no I/O and a test can drive it.
public enum VolumeScanner {
    /// A record found in the volume.
    public struct Record: Equatable, Sendable {
        public var header: VolumeRecord.Header
        /// Offset of the record's header in the volume.
        public var offset: Int64
    }

    /// What the scan found besides the records.
    public struct Result: Equatable, Sendable {
        /// Bytes from the start that hold whole records (and skipped damage); the rest is a torn tail.
        public var validBytes: Int64
        /// Ranges whose bytes were not records: damage skipped to reach later records.
        public var damaged: [Range<Int64>]

        public init(validBytes: Int64, damaged: [Range<Int64>]) {
            self.validBytes = validBytes
            self.damaged = damaged
        }
    }

    /// Scans a volume of `volumeBytes` bytes. `read(offset, count)` returns the bytes at `offset`
    /// (fewer only at the end of the volume); `visit` receives every record in order.
    public static func scan(
        volumeBytes: Int64, blockBytes: Int, read: (_ offset: Int64, _ count: Int) throws -> [UInt8], visit: (Record) throws -> Void
    ) throws -> Result {
        var window = Window(volumeBytes: volumeBytes, blockBytes: max(blockBytes, VolumeRecord.headerBytes))
        var offset: Int64 = 0
        var damaged: [Range<Int64>] = []
        while offset < volumeBytes {
            if let header = try window.header(at: offset, read: read) {
                guard offset + header.recordBytes <= volumeBytes else { break }
                try visit(Record(header: header, offset: offset))
                offset += header.recordBytes
                continue
            }
            guard offset + Int64(VolumeRecord.headerBytes) <= volumeBytes,
                  let next = try window.nextRecord(after: offset, read: read)
            else { break }
            damaged.append(offset..<next)
            offset = next
        }
        return Result(validBytes: offset, damaged: damaged)
    }

    /// One block of the volume held in memory, so that small records cost no read each.
    private struct Window {
        let volumeBytes: Int64
        let blockBytes: Int
        var start: Int64 = 0
        var bytes: [UInt8] = []

        mutating func header(at offset: Int64, read: (Int64, Int) throws -> [UInt8]) throws -> VolumeRecord.Header? {
            let count = VolumeRecord.headerBytes
            guard offset + Int64(count) <= volumeBytes else { return nil }
            if offset < start || offset + Int64(count) > start + Int64(bytes.count) {
                start = offset
                bytes = try read(offset, Int(min(Int64(blockBytes), volumeBytes - offset)))
                guard bytes.count >= count else { return nil }
            }
            let from = Int(offset - start)
            return bytes.withUnsafeBytes { VolumeRecord.decode(raw: UnsafeRawBufferPointer(rebasing: $0[from..<(from + count)])) }
        }

        /// The offset of the first valid record after `offset` whose frame fits in the volume.
        mutating func nextRecord(after offset: Int64, read: (Int64, Int) throws -> [UInt8]) throws -> Int64? {
            var candidate = offset + 1
            while candidate + Int64(VolumeRecord.headerBytes) <= volumeBytes {
                if let header = try header(at: candidate, read: read), candidate + header.recordBytes <= volumeBytes {
                    return candidate
                }
                candidate += 1
            }
            return nil
        }
    }
}
