import CCRC32C

/// A running CRC32C (Castagnoli), the checksum of every chunk on disk and on the wire.
///
/// CRC32C rather than SHA-256: it detects the accidental corruption a storage system must catch
/// (bit rot, torn writes, truncation) at ≈ 9 GB/s per core with SSE4.2, against ≈ 1.7 GB/s for
/// SHA-256 — and every byte is checksummed at every hop. It is not a defence against tampering;
/// that is authentication's job.
public struct CRC32C: Sendable, Equatable {
    public private(set) var value: UInt32 = 0

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        value = ccrc32c_extend(value, base, bytes.count)
    }

    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let array = Array(bytes)
        array.withUnsafeBytes { update($0) }
    }

    public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// The table-driven computation alone, for tests that compare it with the hardware path.
    public static func portableChecksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { ccrc32c_extend_portable(0, $0.baseAddress, $0.count) }
    }
}
