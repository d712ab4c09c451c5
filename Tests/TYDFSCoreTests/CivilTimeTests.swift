import Foundation
import TYDFSCore
import XCTest

/// Calendar fields from milliseconds, against Foundation's Gregorian calendar, and at the ends
/// of an Int64 (a time a master refuses may still be stored by an older build, and must print).
final class CivilTimeTests: XCTestCase {
    func testFieldsMatchFoundationsCalendarOverTheYearsAMasterAccepts() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var generator = SystemRandomNumberGenerator()
        // Foundation's Gregorian calendar is Julian before 15 October 1582: compared from 1583.
        let from: Int64 = -12_212_553_600_000
        let samples = [from, -1, 0, 1, 951_868_800_000, 1_709_251_199_999, Limits.modificationMillis.upperBound]
            + (0..<2000).map { _ in Int64.random(in: from...Limits.modificationMillis.upperBound, using: &generator) }
        for millis in samples {
            let time = CivilTime(millisSince1970: millis)
            let date = Date(timeIntervalSince1970: TimeInterval(millis) / 1000)
            let fields = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
            XCTAssertEqual(time.year, Int64(fields.year!), "\(millis)")
            XCTAssertEqual(time.month, Int64(fields.month!), "\(millis)")
            XCTAssertEqual(time.day, Int64(fields.day!), "\(millis)")
            XCTAssertEqual(time.hour, Int64(fields.hour!), "\(millis)")
            XCTAssertEqual(time.minute, Int64(fields.minute!), "\(millis)")
            XCTAssertEqual(time.second, Int64(fields.second!), "\(millis)")
            XCTAssertEqual(time.weekday, fields.weekday! - 1, "\(millis)")
            XCTAssertEqual(time.millisecond, (millis % 1000 + 1000) % 1000, "\(millis)")
        }
        XCTAssertEqual(CivilTime(millisSince1970: Limits.modificationMillis.lowerBound).year, 1)
        XCTAssertEqual(CivilTime(millisSince1970: Limits.modificationMillis.lowerBound - 1).year, 0)
        XCTAssertEqual(CivilTime(millisSince1970: Limits.modificationMillis.upperBound + 1).year, 10000)
    }

    func testTheEndsOfAnInt64GiveCalendarFieldsWithoutTrapping() {
        let ends: [Int64] = [.min, .min + 1, .min + 999, .min + 86_400_000, .max - 86_400_000, .max - 1, .max]
        for millis in ends {
            let time = CivilTime(millisSince1970: millis)
            XCTAssertTrue((1...12).contains(time.month), "\(millis)")
            XCTAssertTrue((1...31).contains(time.day), "\(millis)")
            XCTAssertTrue((0..<24).contains(time.hour) && (0..<60).contains(time.minute) && (0..<60).contains(time.second), "\(millis)")
            XCTAssertTrue((0..<1000).contains(time.millisecond) && (0..<7).contains(time.weekday), "\(millis)")
        }
        XCTAssertLessThan(CivilTime(millisSince1970: .min).year, -292_000_000)
        XCTAssertGreaterThan(CivilTime(millisSince1970: .max).year, 292_000_000)
    }
}
