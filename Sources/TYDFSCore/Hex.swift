/// Hexadecimal, both ways (lower-case out, either case in): digests, secrets and signatures in
/// text, and the digits of `%XX` escapes. One place, so no parser takes a sign or a space for a
/// digit (`UInt8(_:radix:)` would take `+f`).
public enum Hex {
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The bytes `text` spells, two digits each; nil for an odd length or a non-digit.
    public static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = digitValue(utf8[index]), let low = digitValue(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    /// The value of one hexadecimal digit (either case), or nil.
    public static func digitValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// `text` with its `%XX` escapes decoded strictly, as UTF-8: nil for an escape that is not
    /// `%` and two hex digits, or for bytes that are not UTF-8 (never replaced, so two different
    /// byte strings cannot name one path). `+` stays `+`.
    public static func percentDecoded(_ text: Substring.UTF8View) -> String? {
        percentDecodedBytes(text).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// The bytes `text` percent-encodes; nil for an escape that is not `%` and two hex digits.
    public static func percentDecodedBytes(_ text: Substring.UTF8View) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var iterator = text.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(digitValue), let low = iterator.next().flatMap(digitValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }
}
