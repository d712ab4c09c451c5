/// Parses and prints byte counts the way people write them: `4096`, `64MiB`, `1.5GiB`, `10GB`.
///
/// Binary suffixes (KiB, MiB, GiB, TiB) are powers of 1024; the SI ones (KB, MB, GB, TB) powers
/// of 1000; `K`, `M`, `G`, `T` alone are binary, as in `dd` and HDFS.
public enum ByteSize {
    private static let suffixes: [(String, Double)] = [
        ("kib", 1024), ("mib", 1024 * 1024), ("gib", 1024 * 1024 * 1024), ("tib", 1024 * 1024 * 1024 * 1024),
        ("kb", 1000), ("mb", 1_000_000), ("gb", 1_000_000_000), ("tb", 1_000_000_000_000),
        ("k", 1024), ("m", 1024 * 1024), ("g", 1024 * 1024 * 1024), ("t", 1024 * 1024 * 1024 * 1024),
        ("b", 1),
    ]

    /// Parses `text`; throws `invalidArgument` with the accepted forms when it cannot.
    public static func parse(_ text: String) throws -> Int64 {
        let trimmed = text.trimmingSpaces().lowercased()
        var number = Substring(trimmed)
        var multiplier: Double = 1
        for (suffix, value) in suffixes where trimmed.hasSuffix(suffix) {
            number = trimmed.dropLast(suffix.count)
            multiplier = value
            break
        }
        let digits = String(number).trimmingSpaces()
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(digits), value >= 0
        else {
            throw TYDFSError(.invalidArgument, "'\(text)' is not a size; write a number of bytes, optionally with KiB, MiB, GiB or TiB (e.g. 64MiB)")
        }
        let bytes = (value * multiplier).rounded(.down)
        guard bytes < 9.0e18 else {
            throw TYDFSError(.invalidArgument, "'\(text)' is too large a size")
        }
        return Int64(bytes)
    }

    /// Formats `bytes` with the largest binary unit that keeps the number ≥ 1 (e.g. `1.5 GiB`).
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while abs(value) >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let rounded = (value * 10).rounded() / 10
        let text = rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
        return "\(text) \(units[unit])"
    }
}

/// Parses durations written as `5s`, `500ms`, `2m`, `1h` or a bare number of seconds.
public enum DurationText {
    public static func parseSeconds(_ text: String) throws -> Double {
        let trimmed = text.trimmingSpaces().lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = trimmed
        var multiplier = 1.0
        for (suffix, value) in units where trimmed.hasSuffix(suffix) {
            number = String(trimmed.dropLast(suffix.count))
            multiplier = value
            break
        }
        guard let value = Double(number), value.isFinite, value >= 0 else {
            throw TYDFSError(.invalidArgument, "'\(text)' is not a duration; write e.g. 5s, 500ms, 2m")
        }
        guard value * multiplier <= Limits.maxDurationSeconds else {
            throw TYDFSError(.invalidArgument, "'\(text)' is longer than the longest duration accepted (30 days)")
        }
        return value * multiplier
    }
}

extension Duration {
    /// The duration as a number of seconds, for printing and rates.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension String {
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}

extension Sequence where Element == Int64 {
    /// The sum, held at `Int64.max` instead of trapping: sizes many datakeepers report (each
    /// bounded by `Limits.maxReportedBytes`) may together pass what an `Int64` holds.
    public func saturatingSum() -> Int64 {
        reduce(0) { total, value in
            let (sum, overflow) = total.addingReportingOverflow(value)
            return overflow ? (value < 0 ? .min : .max) : sum
        }
    }
}
