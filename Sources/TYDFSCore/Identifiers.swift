/// Identifies one chunk everywhere: in the metadata, in datakeeper file names, on the wire.
///
/// 128 random bits, written as 32 lowercase hex digits, so ids never collide and need no
/// coordination, and a chunk id is always safe to use as a file name. Held as two integers
/// (16 bytes, no heap allocation): a master keeps millions of them in memory.
public struct ChunkID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public init(_ text: String) throws {
        // Read byte by byte: ids arrive in every chunk request, header and token.
        func invalid() -> TYDFSError { TYDFSError(.invalidArgument, "'\(text.prefix(80))' is not a chunk id (32 lowercase hex digits)") }
        guard text.utf8.count == 32 else { throw invalid() }
        var high: UInt64 = 0, low: UInt64 = 0, digits = 0
        for byte in text.utf8 {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = byte - UInt8(ascii: "a") + 10
            default: throw invalid()
            }
            if digits < 16 { high = high << 4 | UInt64(value) } else { low = low << 4 | UInt64(value) }
            digits += 1
        }
        self.high = high
        self.low = low
    }

    /// The 32 hex digits.
    public var value: String { hex64(high) + hex64(low) }

    /// A fresh id from 128 bits of `generator`.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> ChunkID {
        ChunkID(high: generator.next(), low: generator.next())
    }

    public static func random() -> ChunkID {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    public init(from decoder: Decoder) throws { try self.init(try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    public var description: String { value }
    /// The same order as the hex strings'.
    public static func < (lhs: ChunkID, rhs: ChunkID) -> Bool { (lhs.high, lhs.low) < (rhs.high, rhs.low) }
}

/// Names one datakeeper for its whole life, across restarts and address changes.
///
/// 1–64 characters from `A–Z a–z 0–9 . _ -`, so it is safe in file names, URLs and logs.
public struct DataKeeperID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let value: String

    public init(_ text: String) throws {
        let allowed = text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                return true
            default:
                return false
            }
        }
        guard !text.isEmpty, text.utf8.count <= 64, allowed else {
            throw TYDFSError(.invalidArgument, "'\(text.prefix(80))' is not a datakeeper id: use 1–64 of A–Z a–z 0–9 . _ -")
        }
        value = text
    }

    public init(from decoder: Decoder) throws { try self.init(try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    public var description: String { value }
    public static func < (lhs: DataKeeperID, rhs: DataKeeperID) -> Bool { lhs.value < rhs.value }
}

/// 16 lowercase hex digits of `value`, zero-padded.
public func hex64(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}

/// 8 lowercase hex digits of `value`, zero-padded (how CRC32C values are shown).
public func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}

/// Which leadership term a master acts in (issue 17). Every takeover of the leader lease
/// raises it by one; the metadata database and the datakeepers refuse anything carrying a lower
/// one, so a leader that lost the lease (paused, cut off) can change nothing. A plain number on
/// the wire; 0 is a lone master on SQLite, which never competes.
public struct LeaderEpoch: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public let value: Int64

    public init(_ value: Int64) { self.value = value }

    public static let solo = LeaderEpoch(0)

    public var description: String { String(value) }
    public static func < (lhs: LeaderEpoch, rhs: LeaderEpoch) -> Bool { lhs.value < rhs.value }
    public init(from decoder: Decoder) throws { value = try decoder.singleValueContainer().decode(Int64.self) }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}
