import Histogram
import NIOConcurrencyHelpers
import NIOCore
import TYDFSClient
import TYDFSCore

/// What one `tydfs bench` run is asked to do.
public struct BenchConfiguration: Sendable {
    /// Files to put (then get, stat and remove).
    public var files = 10_000
    /// Bytes in each file.
    public var sizeBytes: Int64 = 4096
    /// Operations in flight at once, in each phase.
    public var concurrency = 16
    /// Folder the files are put under, as `PREFIX/<n>`.
    public var prefix: RemotePath
    /// Leave the files in place (no rm phase).
    public var keep = false
    /// Makes each file's content; different runs write different bytes.
    public var seed = UInt64.random(in: .min ... .max)

    public init(prefix: RemotePath) {
        self.prefix = prefix
    }
}

/// The numbers of one phase. `tydfs bench --json` prints these names; scripts parse them.
public struct PhaseReport: Codable, Sendable {
    /// Percentiles of the time one operation took, in milliseconds.
    public struct Latency: Codable, Sendable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var max: Double
    }

    /// Operations that succeeded (failed ones are reported apart, and make the run fail).
    public var files: Int
    public var seconds: Double
    public var filesPerSecond: Double
    /// Data moved per second; 0 for phases that move no file data (stat, rm).
    public var mibPerSecond: Double
    public var latencyMs: Latency
}

/// All phases of a run; `rm` is nil (and left out of the JSON) with `keep`.
public struct BenchReport: Codable, Sendable {
    public var put: PhaseReport
    public var get: PhaseReport
    public var stat: PhaseReport
    public var rm: PhaseReport?
}

/// A small-file benchmark driven through the client library in one process, like SeaweedFS's
/// `weed benchmark`: put N files (each durable on every replica, as any put), get them back in
/// random order verifying every byte, stat them, remove them. Every failure is reported with its
/// path through `onFailure` and counted, never dropped.
public enum Bench {
    /// Runs the phases one after the other; each phase works on the files the put phase stored.
    /// Returns the report and the number of failed operations.
    public static func run(
        client: TYDFSClient, configuration: BenchConfiguration,
        onFailure: @escaping @Sendable (_ phase: String, FileFailure) -> Void
    ) async -> (report: BenchReport, failures: Int) {
        let failures = NIOLockedValueBox(0)
        let fail: @Sendable (String, FileFailure) -> Void = { phase, failure in
            failures.withLockedValue { $0 += 1 }
            onFailure(phase, failure)
        }
        let size = configuration.sizeBytes
        let seed = configuration.seed
        let paths = (0..<configuration.files).map { index in
            // The prefix is a valid path and a decimal number is a valid segment.
            try! RemotePath(configuration.prefix.childPrefix + String(index))
        }
        let stored = NIOLockedValueBox<[Int]>([])
        let put = await phase("put", Array(paths.indices), concurrency: configuration.concurrency, dataBytes: size, fail: fail) { index in
            _ = try await client.put(bytes: content(index: index, sizeBytes: size, seed: seed), to: paths[index], overwrite: false)
            stored.withLockedValue { $0.append(index) }
        } path: { paths[$0].value }
        let present = stored.withLockedValue { $0 }
        let get = await phase("get", present.shuffled(), concurrency: configuration.concurrency, dataBytes: size, fail: fail) { index in
            let bytes = try await client.read(paths[index])
            guard bytes == content(index: index, sizeBytes: size, seed: seed) else {
                throw TYDFSError(.checksumMismatch, "read back \(bytes.readableBytes) bytes that differ from the \(size) bytes put")
            }
        } path: { paths[$0].value }
        let stat = await phase("stat", present, concurrency: configuration.concurrency, dataBytes: 0, fail: fail) { index in
            // Looks as `tydfs stat` does: no read tokens, and no datakeeper counted busier for
            // reads that never come (the get phase stats to read).
            let info = try await client.stat(paths[index], inspecting: true)
            guard info.sizeBytes == size else {
                throw TYDFSError(.protocolViolation, "stat says \(info.sizeBytes) bytes, \(size) were put")
            }
        } path: { paths[$0].value }
        var rm: PhaseReport?
        if !configuration.keep {
            rm = await phase("rm", present, concurrency: configuration.concurrency, dataBytes: 0, fail: fail) { index in
                try await client.remove(paths[index])
            } path: { paths[$0].value }
        }
        return (BenchReport(put: put, get: get, stat: stat, rm: rm), failures.withLockedValue { $0 })
    }

    /// Runs `operation` once per item, timing each; `dataBytes` is what one operation moves.
    private static func phase(
        _ name: String, _ items: [Int], concurrency: Int, dataBytes: Int64,
        fail: @escaping @Sendable (String, FileFailure) -> Void,
        _ operation: @escaping @Sendable (Int) async throws -> Void,
        path: @escaping @Sendable (Int) -> String
    ) async -> PhaseReport {
        let latencies = NIOLockedValueBox(Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three))
        let clock = ContinuousClock()
        let start = clock.now
        await Batch.forEach(items, concurrency: concurrency) { item in
            let began = clock.now
            do {
                try await operation(item)
                let micros = microseconds(clock.now - began)
                latencies.withLockedValue { _ = $0.record(micros) }
            } catch {
                fail(name, FileFailure(path: path(item), error: error))
            }
        }
        let seconds = max(1e-9, (clock.now - start).inSeconds)
        let histogram = latencies.withLockedValue { $0 }
        let files = Int(histogram.totalCount)
        let millis = { (micros: UInt64) in Double(micros) / 1000 }
        return PhaseReport(
            files: files, seconds: seconds, filesPerSecond: Double(files) / seconds,
            mibPerSecond: Double(files) * Double(dataBytes) / 1_048_576 / seconds,
            latencyMs: .init(
                p50: millis(histogram.valueAtPercentile(50)), p90: millis(histogram.valueAtPercentile(90)),
                p99: millis(histogram.valueAtPercentile(99)), max: millis(histogram.maxRecorded)))
    }

    private static func microseconds(_ duration: Duration) -> UInt64 {
        UInt64(max(0, duration.inSeconds * 1e6))
    }

    /// File `index`'s bytes: a splitmix64 stream from the run's seed and the index, so every file
    /// differs and a get can be checked without keeping what was put.
    static func content(index: Int, sizeBytes: Int64, seed: UInt64) -> ByteBuffer {
        var state = seed ^ (UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        var buffer = ByteBuffer()
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Int(sizeBytes)) { bytes in
            var offset = 0
            while offset < Int(sizeBytes) {
                state &+= 0x9E37_79B9_7F4A_7C15
                var word = state
                word = (word ^ (word >> 30)) &* 0xBF58_476D_1CE4_E5B9
                word = (word ^ (word >> 27)) &* 0x94D0_49BB_1331_11EB
                word ^= word >> 31
                withUnsafeBytes(of: word.littleEndian) { wordBytes in
                    let count = min(8, Int(sizeBytes) - offset)
                    bytes.baseAddress!.advanced(by: offset).copyMemory(from: wordBytes.baseAddress!, byteCount: count)
                }
                offset += 8
            }
            return Int(sizeBytes)
        }
        return buffer
    }
}
