/// The one format a chunk has on the wire and on disk: its data, then the CRC32C of that data
/// as 4 little-endian bytes.
///
/// Because the checksum travels with the bytes, every hop (datakeeper on write, datakeeper on
/// serve, client on read, scrubber) verifies the same way, and no side file can drift out of
/// step with the data it describes.
public enum ChunkFrame {
    /// Size of a frame holding `dataBytes` bytes of data.
    public static func frameBytes(dataBytes: Int64) -> Int64 { dataBytes + Int64(Limits.chunkTrailerBytes) }

    /// The trailer that ends a frame whose data has checksum `crc`.
    public static func trailer(_ crc: UInt32) -> [UInt8] {
        [UInt8(crc & 0xff), UInt8((crc >> 8) & 0xff), UInt8((crc >> 16) & 0xff), UInt8(crc >> 24)]
    }
}

/// Reads a frame arriving in pieces of any size, separating data from trailer and verifying it.
///
/// Holds back the last 4 bytes seen, because until the stream ends they may be the trailer.
/// `consume` hands out, through `emit`, exactly the bytes that are certainly data, in order.
public struct ChunkFrameReader: Sendable {
    private var held: [UInt8] = []
    private var crc = CRC32C()
    /// Bytes received so far, trailer included.
    public private(set) var frameBytesSeen: Int64 = 0
    /// Upper bound on the frame's size; more bytes than this are a protocol violation.
    public let maxFrameBytes: Int64

    public init(maxFrameBytes: Int64) {
        self.maxFrameBytes = maxFrameBytes
        held.reserveCapacity(2 * Limits.chunkTrailerBytes)
    }

    /// Data bytes handed out so far.
    public var dataBytesEmitted: Int64 { max(0, frameBytesSeen - Int64(held.count)) }

    public mutating func consume(
        _ bytes: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        frameBytesSeen += Int64(bytes.count)
        guard frameBytesSeen <= maxFrameBytes else {
            throw TYDFSError(.protocolViolation, "chunk is larger than the \(maxFrameBytes) bytes announced")
        }
        let trailer = Limits.chunkTrailerBytes
        if bytes.count >= trailer {
            if !held.isEmpty {
                try held.withUnsafeBytes { try release($0, emit: emit) }
                held.removeAll(keepingCapacity: true)
            }
            try release(UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count - trailer)]), emit: emit)
            held.append(contentsOf: bytes[(bytes.count - trailer)...])
        } else {
            held.append(contentsOf: bytes)
            if held.count > trailer {
                let excess = held.count - trailer
                try held.withUnsafeBytes { try release(UnsafeRawBufferPointer(rebasing: $0[..<excess]), emit: emit) }
                held.removeFirst(excess)
            }
        }
    }

    private mutating func release(_ bytes: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard bytes.count > 0 else { return }
        crc.update(bytes)
        try emit(bytes)
    }

    /// Ends the frame: checks that a whole trailer arrived and matches the data.
    /// Returns the data's CRC32C.
    public func finish(expectedDataBytes: Int64? = nil) throws -> UInt32 {
        guard held.count == Limits.chunkTrailerBytes else {
            throw TYDFSError(.protocolViolation, "chunk ended after \(frameBytesSeen) bytes, before its 4-byte checksum trailer")
        }
        if let expected = expectedDataBytes, expected != dataBytesEmitted {
            throw TYDFSError(.protocolViolation, "chunk holds \(dataBytesEmitted) bytes of data, expected \(expected)")
        }
        let stored = UInt32(held[0]) | UInt32(held[1]) << 8 | UInt32(held[2]) << 16 | UInt32(held[3]) << 24
        guard stored == crc.value else {
            throw TYDFSError(.checksumMismatch, "chunk checksum mismatch: data has crc32c \(hex32(crc.value)), trailer says \(hex32(stored))")
        }
        return stored
    }
}
