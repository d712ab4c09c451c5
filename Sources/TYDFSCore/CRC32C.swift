import CCRC32C

/// A running CRC32C (Castagnoli), the checksum of every chunk on disk and on the wire.
///
/// CRC32C rather than SHA-256: it detects the accidental corruption a storage system must catch
/// (bit rot, torn writes, truncation) at ≈ 26 GB/s per core with SSE4.2, against ≈ 1.7 GB/s for
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

extension CRC32C {
    /// The CRC32C of A followed by B, from the CRC32C of A, that of B and B's length — as zlib's
    /// `crc32_combine`, for the Castagnoli polynomial. Lets chunks, ranges and blocks be
    /// checksummed apart (in parallel, or once per block) and still be checked as a whole.
    public static func combine(_ crcA: UInt32, _ crcB: UInt32, length2 lengthB: Int64) -> UInt32 {
        // The shift is linear: it maps 0 to 0. A file's first chunk starts from 0, and building
        // the shift for its length cost 2.7 % of a small-file put's client CPU.
        guard crcA != 0 else { return crcB }
        return Shift(bytes: lengthB).apply(crcA) ^ crcB
    }

    /// What appending `bytes` bytes does to a CRC32C, as a 32×32 matrix over GF(2): build it
    /// once for a length used often (a full block), then each combine costs 32 steps.
    public struct Shift: Sendable {
        private let columns: [UInt32]

        public init(bytes: Int64) {
            // The operator for one zero bit: shift right, folding in the reflected polynomial.
            var oneBit = [UInt32](repeating: 0, count: 32)
            oneBit[0] = 0x82F6_3B78
            for bit in 1..<32 { oneBit[bit] = 1 << (bit - 1) }
            // Squared three times: one zero byte. Then one squaring per bit of `bytes`.
            var power = Self.square(Self.square(Self.square(oneBit)))
            var result = Self.identity
            var remaining = bytes
            while remaining > 0 {
                if remaining & 1 != 0 { result = Self.multiply(power, result) }
                remaining >>= 1
                if remaining > 0 { power = Self.square(power) }
            }
            columns = result
        }

        public func apply(_ crc: UInt32) -> UInt32 { Self.times(columns, crc) }

        private static let identity: [UInt32] = (0..<32).map { 1 << $0 }

        private static func times(_ matrix: [UInt32], _ vector: UInt32) -> UInt32 {
            var sum: UInt32 = 0
            var vector = vector
            var index = 0
            while vector != 0 {
                if vector & 1 != 0 { sum ^= matrix[index] }
                vector >>= 1
                index += 1
            }
            return sum
        }

        private static func square(_ matrix: [UInt32]) -> [UInt32] { matrix.map { times(matrix, $0) } }

        /// `a` after `b`.
        private static func multiply(_ a: [UInt32], _ b: [UInt32]) -> [UInt32] { b.map { times(a, $0) } }
    }
}
