/// The part of an object a GetObject `Range` header asks for, as S3 reads it: `bytes=A-B`,
/// `bytes=A-` (to the end) and `bytes=-N` (the last N bytes). S3 serves the whole object for a
/// header it cannot read or one with several ranges, and answers `InvalidRange` (416) only for a
/// well-formed range that starts past the end.
public enum ByteRange {
    /// The bytes to send for `header` of an object of `sizeBytes`: nil means the whole object
    /// (no header, or one S3 ignores).
    public static func resolve(_ header: String?, sizeBytes: Int64) throws(S3Error) -> Range<Int64>? {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst("bytes=".count).trimmingSpaces()
        guard let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash].trimmingSpaces(), last = spec[spec.index(after: dash)...].trimmingSpaces()
        if first.isEmpty {
            // The last N bytes: all of a shorter object; none is not a range.
            guard let count = Int64(last), count >= 0 else { return nil }
            guard count > 0, sizeBytes > 0 else { throw unsatisfiable(header, sizeBytes) }
            return max(0, sizeBytes - count)..<sizeBytes
        }
        guard let start = Int64(first), start >= 0 else { return nil }
        var end = sizeBytes - 1
        if !last.isEmpty {
            guard let given = Int64(last) else { return nil }
            guard given >= start else { return nil }
            end = min(given, sizeBytes - 1)
        }
        guard start < sizeBytes else { throw unsatisfiable(header, sizeBytes) }
        return start..<(end + 1)
    }

    /// The `Content-Range` value for `range` of an object of `sizeBytes`.
    public static func contentRange(_ range: Range<Int64>, sizeBytes: Int64) -> String {
        "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(sizeBytes)"
    }

    private static func unsatisfiable(_ header: String, _ sizeBytes: Int64) -> S3Error {
        .invalidRange("The requested range \(header) is not satisfiable: the object holds \(sizeBytes) bytes")
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}
