/// A moment in UTC as calendar fields, from milliseconds since 1970, computed directly (Howard
/// Hinnant's `civil_from_days`): `ls` writes a date per entry, S3 one per listed key and per
/// `Last-Modified`, and a `DateFormatter` costs more to make than a whole line. Defined for
/// every `Int64` (floor division that never overflows), so a stored time outside the years a
/// master accepts (`Limits.modificationMillis`) still prints instead of trapping.
public struct CivilTime: Equatable, Sendable {
    /// The proleptic Gregorian year (0 is 1 BC; negative before).
    public var year: Int64
    /// 1…12.
    public var month: Int64
    /// 1…31.
    public var day: Int64
    public var hour: Int64
    public var minute: Int64
    public var second: Int64
    public var millisecond: Int64
    /// Whole days since 1970-01-01 (a Thursday), rounded down.
    public var daysSince1970: Int64

    public init(millisSince1970 millis: Int64) {
        let (days, millisOfDay) = Self.floorDivision(millis, by: 86_400_000)
        daysSince1970 = days
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        hour = millisOfDay / 3_600_000
        minute = millisOfDay / 60_000 % 60
        second = millisOfDay / 1000 % 60
        millisecond = millisOfDay % 1000
    }

    /// 0 for Sunday … 6 for Saturday.
    public var weekday: Int { Int((daysSince1970 % 7 + 7 + 4) % 7) }

    /// `value` divided by `divisor` (> 0) rounded down, and the remainder, 0…divisor-1.
    static func floorDivision(_ value: Int64, by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
        return remainder < 0 ? (quotient - 1, remainder + divisor) : (quotient, remainder)
    }
}
