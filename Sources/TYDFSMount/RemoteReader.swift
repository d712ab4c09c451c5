import NIOConcurrencyHelpers
import NIOCore
import TYDFSClient
import TYDFSCore
import TYDFSFileIO
import TYDFSProtocol

/// Reads of one file open for reading through the mount, served from windows of the file
/// fetched ahead of the reader.
///
/// The kernel asks for 128 KiB–1 MiB at a time; each would cost a round trip to a datakeeper.
/// Instead the file is fetched in `windowBytes` windows, each a verified range read (the client
/// reads only the checksum blocks it needs, and falls over to another replica when one fails or
/// stalls). While the reader moves forward, the next `windowsAhead` windows are already on
/// their way, each from the replica the client picks for that range, so a sequential read draws
/// on several datakeepers at once. Memory per open file: at most `windowsAhead + 1` windows, and
/// windows fetched ahead are shared out of one `ReadAheadBudget` for the whole mount.
actor RemoteReader {
    static let windowBytes = Int64(Limits.readWindowBytes)
    static let windowsAhead: Int64 = 2

    let info: FileInfo
    private let client: TYDFSClient
    private let budget: ReadAheadBudget
    private var windows: [Int64: Task<ByteBuffer, Error>] = [:] {
        didSet { budget.held(by: ObjectIdentifier(self), windows.count) }
    }
    /// Where the last read ended: a read starting there (or in the window it ended in) is
    /// sequential, and only sequential reads fetch ahead.
    private var lastEnd: Int64 = 0

    init(info: FileInfo, client: TYDFSClient, budget: ReadAheadBudget) {
        self.info = info
        self.client = client
        self.budget = budget
    }

    /// Up to `count` bytes at `offset`; fewer at the end of the file, none past it.
    func read(count: Int, at offset: Int64) async throws -> ByteBuffer {
        let end = min(offset + Int64(count), info.sizeBytes)
        guard offset < end else { return ByteBuffer() }
        let first = offset / Self.windowBytes
        let last = (end - 1) / Self.windowBytes
        let sequential = offset == lastEnd || offset / Self.windowBytes == (lastEnd - 1) / Self.windowBytes
        lastEnd = end
        let finalWindow = (info.sizeBytes - 1) / Self.windowBytes
        for window in first...min(last, finalWindow) where windows[window] == nil {
            windows[window] = fetch(window)
        }
        if sequential {
            for window in (last + 1)...(last + Self.windowsAhead) where window <= finalWindow && windows[window] == nil {
                guard budget.allowsAnother() else { break }
                windows[window] = fetch(window)
            }
        }
        // Dropped, not cancelled: another read of this file may be waiting for it.
        for window in windows.keys where window < first || window > last + Self.windowsAhead {
            windows[window] = nil
        }
        // A read within one window (almost every read) is a slice of it: no copy.
        var result = ByteBuffer()
        if first != last { result.reserveCapacity(Int(end - offset)) }
        for window in first...last {
            let task = windows[window] ?? fetch(window)
            let bytes: ByteBuffer
            do {
                bytes = try await task.value
            } catch {
                // A failed window is fetched afresh by the next read that needs it.
                if windows[window] == task { windows[window] = nil }
                throw error
            }
            let windowStart = window * Self.windowBytes
            let from = max(offset, windowStart) - windowStart
            let to = min(end, windowStart + Int64(bytes.readableBytes)) - windowStart
            guard to > from else { continue }
            let piece = bytes.getSlice(at: bytes.readerIndex + Int(from), length: Int(to - from))!
            if first == last { return piece }
            result.writeImmutableBuffer(piece)
        }
        return result
    }

    /// Drops every window (the file was closed).
    func close() {
        for task in windows.values { task.cancel() }
        windows = [:]
        budget.held(by: ObjectIdentifier(self), nil)
    }

    private func fetch(_ window: Int64) -> Task<ByteBuffer, Error> {
        let start = window * Self.windowBytes
        let range = start..<min(start + Self.windowBytes, info.sizeBytes)
        let info = self.info
        let client = self.client
        return Task {
            // A window inside one chunk arrives as one piece, kept as it is; one that spans
            // chunks is joined.
            var pieces: [ByteBuffer] = []
            try await client.read(info, range: range, allocator: RecycledIOBuffers.allocator) { pieces.append($0) }
            guard pieces.count > 1 else { return pieces.first ?? ByteBuffer() }
            var bytes = ByteBuffer()
            bytes.reserveCapacity(range.count)
            for piece in pieces { bytes.writeImmutableBuffer(piece) }
            return bytes
        }
    }
}

/// How many read windows the whole mount holds, so that many files read at once do not each
/// fetch ahead: a window a read needs is always fetched, one ahead of the reader only while the
/// mount holds fewer than `maximumWindows` (8, 64 MiB). With the staging of writes on disk,
/// this is what keeps a mount's memory bounded whatever is copied through it.
final class ReadAheadBudget: Sendable {
    static let maximumWindows = 8
    private let counts = NIOLockedValueBox<[ObjectIdentifier: Int]>([:])

    init() {}

    /// `reader` now holds `count` windows (nil: none, it closed).
    func held(by reader: ObjectIdentifier, _ count: Int?) {
        counts.withLockedValue { $0[reader] = count }
    }

    func allowsAnother() -> Bool {
        counts.withLockedValue { $0.values.reduce(0, +) } < Self.maximumWindows
    }
}
