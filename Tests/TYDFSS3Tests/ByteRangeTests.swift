@testable import TYDFSS3
import XCTest

/// GetObject's `Range` header, read as S3 reads it.
final class ByteRangeTests: XCTestCase {
    func testEveryFormOfARangeAndWhatS3Ignores() throws {
        let size: Int64 = 1000
        XCTAssertEqual(try ByteRange.resolve("bytes=0-9", sizeBytes: size), 0..<10)
        XCTAssertEqual(try ByteRange.resolve("bytes=990-5000", sizeBytes: size), 990..<1000, "an end past the object is cut to it")
        XCTAssertEqual(try ByteRange.resolve("bytes=500-", sizeBytes: size), 500..<1000)
        XCTAssertEqual(try ByteRange.resolve("bytes=-10", sizeBytes: size), 990..<1000)
        XCTAssertEqual(try ByteRange.resolve("bytes=-5000", sizeBytes: size), 0..<1000, "the last N of a shorter object is all of it")
        XCTAssertEqual(try ByteRange.resolve("bytes=999-999", sizeBytes: size), 999..<1000)
        for ignored in [nil, "", "bytes=", "bytes=a-b", "items=0-9", "bytes=0-9,20-29", "bytes=9-0", "bytes=-", "bytes=-x", "bytes=--1"] {
            XCTAssertNil(try ByteRange.resolve(ignored, sizeBytes: size), "\(ignored ?? "nil") serves the whole object")
        }
        for unsatisfiable in ["bytes=1000-", "bytes=1000-2000", "bytes=-0"] {
            XCTAssertThrowsError(try ByteRange.resolve(unsatisfiable, sizeBytes: size)) { error in
                XCTAssertEqual((error as? S3Error)?.code, "InvalidRange", unsatisfiable)
                XCTAssertEqual((error as? S3Error)?.httpStatus, 416)
            }
        }
        XCTAssertThrowsError(try ByteRange.resolve("bytes=0-", sizeBytes: 0), "nothing of an empty object can be asked for")
        XCTAssertEqual(ByteRange.contentRange(990..<1000, sizeBytes: size), "bytes 990-999/1000")
    }
}
