import Crypto
import Foundation
import TYDFSCore

/// The checksum algorithms of S3's flexible checksums: what `x-amz-checksum-algorithm` (or the
/// SDKs' `x-amz-sdk-checksum-algorithm`) names, and what an `x-amz-checksum-*` header or trailer
/// carries, base64 of the big-endian digest.
public enum S3ChecksumAlgorithm: String, Sendable, CaseIterable {
    /// zlib's CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320): botocore's default.
    case crc32
    /// CRC-32C (Castagnoli), the same checksum TYDFS keeps for every chunk.
    case crc32c
    /// CRC-64/NVME (reflected polynomial 0x9A6C9329AC4BC9B5; the normal form is 0xAD93D23594C93659).
    case crc64nvme
    case sha1
    case sha256

    static let headerPrefix = "x-amz-checksum-"

    /// The header (or trailer) that carries this checksum: `x-amz-checksum-crc32`.
    public var headerName: String { Self.headerPrefix + rawValue }

    /// The algorithm of an `x-amz-checksum-*` header name, in any case; nil for another header
    /// (`x-amz-checksum-type`, `x-amz-checksum-algorithm` and unknown algorithms included).
    public init?(headerName: String) {
        let lowered = headerName.lowercased()
        guard lowered.hasPrefix(Self.headerPrefix) else { return nil }
        self.init(rawValue: String(lowered.dropFirst(Self.headerPrefix.count)))
    }

    /// The name `x-amz-checksum-algorithm` and `x-amz-sdk-checksum-algorithm` use: `CRC32`, `CRC64NVME`.
    public var algorithmName: String { rawValue.uppercased() }

    /// The algorithm a `x-amz-checksum-algorithm` value names, in any case; nil when unknown.
    public init?(algorithmName: String) {
        self.init(rawValue: algorithmName.lowercased())
    }

    /// The length of the digest in bytes (before base64).
    public var digestByteCount: Int {
        switch self {
        case .crc32, .crc32c: 4
        case .crc64nvme: 8
        case .sha1: 20
        case .sha256: 32
        }
    }
}

/// A running S3 flexible checksum: feed it the object's bytes in order, then read the value in
/// the form the `x-amz-checksum-*` header carries.
public struct S3ChecksumState: Sendable {
    public let algorithm: S3ChecksumAlgorithm
    /// The CRC-32 and CRC-64 as zlib keeps them (already complemented), so an empty input gives 0.
    private var crc32: UInt32 = 0
    private var crc64: UInt64 = 0
    private var crc32c = CRC32C()
    private var sha1: SendableHashFunction<Insecure.SHA1>?
    private var sha256: SendableHashFunction<SHA256>?

    public init(_ algorithm: S3ChecksumAlgorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .sha1: sha1 = SendableHashFunction(Insecure.SHA1())
        case .sha256: sha256 = SendableHashFunction(SHA256())
        case .crc32, .crc32c, .crc64nvme: break
        }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        switch algorithm {
        case .crc32: crc32 = CRC32IEEE.update(crc32, bytes)
        case .crc32c: crc32c.update(bytes)
        case .crc64nvme: crc64 = CRC64NVME.update(crc64, bytes)
        case .sha1: sha1?.function.update(bufferPointer: bytes)
        case .sha256: sha256?.function.update(bufferPointer: bytes)
        }
    }

    public mutating func update(_ bytes: some Sequence<UInt8>) {
        let done: Void? = bytes.withContiguousStorageIfAvailable { buffer in
            update(UnsafeRawBufferPointer(buffer))
        }
        if done == nil {
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    /// The digest of everything fed so far, big-endian for the CRCs. Does not end the state:
    /// more bytes may be fed after.
    public func finalizedDigest() -> [UInt8] {
        switch algorithm {
        case .crc32: return Self.bigEndianBytes(crc32)
        case .crc32c: return Self.bigEndianBytes(crc32c.value)
        case .crc64nvme: return Self.bigEndianBytes(crc64)
        case .sha1: return sha1.map { Array($0.function.finalize()) } ?? []
        case .sha256: return sha256.map { Array($0.function.finalize()) } ?? []
        }
    }

    /// The value of the `x-amz-checksum-*` header for everything fed so far: base64 of the digest.
    public func finalizedBase64() -> String {
        Data(finalizedDigest()).base64EncodedString()
    }

    /// The header value of `bytes` in one call.
    public static func base64(_ algorithm: S3ChecksumAlgorithm, of bytes: some Sequence<UInt8>) -> String {
        var state = S3ChecksumState(algorithm)
        state.update(bytes)
        return state.finalizedBase64()
    }

    private static func bigEndianBytes<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] {
        let byteCount = Value.bitWidth / 8
        return (0..<byteCount).map { index in
            UInt8(truncatingIfNeeded: value >> ((byteCount - 1 - index) * 8))
        }
    }
}

/// A swift-crypto hash function carried in a `Sendable` value. The hash functions are values
/// whose state is copied on write (a uniquely referenced context is mutated, a shared one copied
/// first), so sending a copy to another task shares nothing mutable; they are only not declared
/// `Sendable` upstream.
struct SendableHashFunction<Function: HashFunction>: @unchecked Sendable {
    var function: Function

    init(_ function: Function) {
        self.function = function
    }
}

/// The eight 256-entry tables of a reflected CRC sliced by 8, one after another: table `k`
/// (entries `k*256 ..< (k+1)*256`) gives the effect of a byte followed by `k` zero bytes.
private func slicingBy8Tables<Register: FixedWidthInteger & UnsignedInteger>(polynomial: Register) -> [Register] {
    var tables = [Register](repeating: 0, count: 8 * 256)
    for index in 0..<256 {
        var crc = Register(index)
        for _ in 0..<8 {
            crc = crc & 1 != 0 ? (crc >> 1) ^ polynomial : crc >> 1
        }
        tables[index] = crc
    }
    for slice in 1..<8 {
        for index in 0..<256 {
            let previous = tables[(slice - 1) * 256 + index]
            tables[slice * 256 + index] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
        }
    }
    return tables
}

/// zlib's CRC-32 (reflected polynomial 0xEDB88320, initial value and final xor all ones), sliced
/// by 8: eight bytes per step through eight 256-entry tables.
enum CRC32IEEE {
    static let polynomial: UInt32 = 0xEDB8_8320

    static let tables = slicingBy8Tables(polynomial: polynomial)

    /// The CRC of the bytes before and then `bytes`, from the CRC of the bytes before (0 at first).
    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var register = ~crc
        let count = bytes.count
        tables.withUnsafeBufferPointer { table in
            var offset = 0
            while count - offset >= 8 {
                let low = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) ^ register
                let high = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                let t7 = table[7 * 256 + Int(low & 0xFF)]
                let t6 = table[6 * 256 + Int((low >> 8) & 0xFF)]
                let t5 = table[5 * 256 + Int((low >> 16) & 0xFF)]
                let t4 = table[4 * 256 + Int(low >> 24)]
                let t3 = table[3 * 256 + Int(high & 0xFF)]
                let t2 = table[2 * 256 + Int((high >> 8) & 0xFF)]
                let t1 = table[1 * 256 + Int((high >> 16) & 0xFF)]
                let t0 = table[Int(high >> 24)]
                register = (t7 ^ t6) ^ (t5 ^ t4) ^ (t3 ^ t2) ^ (t1 ^ t0)
                offset += 8
            }
            while offset < count {
                register = table[Int((register ^ UInt32(bytes[offset])) & 0xFF)] ^ (register >> 8)
                offset += 1
            }
        }
        return ~register
    }
}

/// CRC-64/NVME (reflected polynomial 0x9A6C9329AC4BC9B5, initial value and final xor all ones;
/// check value 0xAE8B14860A799888 for "123456789"), sliced by 8.
enum CRC64NVME {
    static let polynomial: UInt64 = 0x9A6C_9329_AC4B_C9B5

    static let tables = slicingBy8Tables(polynomial: polynomial)

    static func update(_ crc: UInt64, _ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var register = ~crc
        let count = bytes.count
        tables.withUnsafeBufferPointer { table in
            var offset = 0
            while count - offset >= 8 {
                let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) ^ register
                let t7 = table[7 * 256 + Int(word & 0xFF)]
                let t6 = table[6 * 256 + Int((word >> 8) & 0xFF)]
                let t5 = table[5 * 256 + Int((word >> 16) & 0xFF)]
                let t4 = table[4 * 256 + Int((word >> 24) & 0xFF)]
                let t3 = table[3 * 256 + Int((word >> 32) & 0xFF)]
                let t2 = table[2 * 256 + Int((word >> 40) & 0xFF)]
                let t1 = table[1 * 256 + Int((word >> 48) & 0xFF)]
                let t0 = table[Int(word >> 56)]
                register = (t7 ^ t6) ^ (t5 ^ t4) ^ (t3 ^ t2) ^ (t1 ^ t0)
                offset += 8
            }
            while offset < count {
                register = table[Int((register ^ UInt64(bytes[offset])) & 0xFF)] ^ (register >> 8)
                offset += 1
            }
        }
        return ~register
    }
}
