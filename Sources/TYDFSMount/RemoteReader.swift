import NIOConcurrencyHelpers
import NIOCore
import TYDFSClient
import TYDFSCore
import TYDFSProtocol

/// Reads of one file open for reading through the mount, served from windows of the file
/// fetched ahead of the reader.
///
/// The kernel asks for 128 KiB–1 MiB at a time; each would cost a round trip to a datakeeper.
/// Instead the file is fetched in `windowBytes` windows, each a verified range read (the client
/// reads only the checksum blocks it needs, and falls over to another replica when one fails or
/// stalls). While the reader moves forward, the next `windowsAhead` windows are already on
/// their way, each from the replica the client picks for that range, so a sequential read draws
/// on several datakeepers at once. Memory per open file: the windows a read spans (one or two)
/// and at most `windowsAhead` past them, and windows fetched ahead are shared out of one
/// `ReadAheadBudget` for the whole mount. A window is kept as the buffers it arrived in from
/// the network (`PlacedBytes`), and a read is answered with slices of them, never copied into
/// one buffer (the copy took a tenth of the mount's CPU while `cp` read a file out of it).
///
/// A read whose windows have all arrived (almost every read of a sequential reader) is answered
/// at once, on the caller's thread (`readArrived`), without a task or a thread switch.
///
/// A file may stay open for longer than what the master said of it at the open holds: its read
/// tokens expire (`Limits.chunkTokenSeconds`), and its replicas move (a datakeeper drained,
/// a lost replica repaired elsewhere). A window that fails is therefore fetched once more with
/// the file's chunks asked of the master again, as HDFS's readers fetch block locations again;
/// only a window that fails then too fails the read.
final class RemoteReader: Sendable {
    static let windowBytes = Int64(Limits.readWindowBytes)
    static let windowsAhead: Int64 = 2

    let info: FileInfo
    private let client: TYDFSClient
    private let budget: ReadAheadBudget
    /// Where the file is now (it may have been renamed since the open); nil once removed.
    private let currentPath: @Sendable () -> RemotePath?

    private struct Window {
        /// Tells a window apart from a later fetch of the same one.
        var fetch: UInt64
        /// The `State.refreshes` of the chunks it was fetched with.
        var refresh: UInt64
        var task: Task<PlacedBytes, Error>
        /// Its bytes, once they have arrived.
        var bytes: PlacedBytes?
    }

    private struct State {
        var windows: [Int64: Window] = [:]
        var fetches: UInt64 = 0
        /// Where the last read ended: a read starting there (or in the window it ended in) is
        /// sequential, and only sequential reads fetch ahead.
        var lastEnd: Int64 = 0
        /// The file's chunks, their replicas and read tokens, as the master last said.
        var chunks: FileInfo
        /// How many times `chunks` was asked for again since the open.
        var refreshes: UInt64 = 0
        var isClosed = false
    }

    private let state: NIOLockedValueBox<State>

    init(info: FileInfo, client: TYDFSClient, budget: ReadAheadBudget, currentPath: @escaping @Sendable () -> RemotePath?) {
        self.info = info
        self.client = client
        self.budget = budget
        self.currentPath = currentPath
        state = NIOLockedValueBox(State(chunks: info))
    }

    /// Up to `count` bytes at `offset`, as pieces in order, when every window they lie in has
    /// arrived; nil when one has not (then `read`). Fewer at the end of the file, none past it.
    func readArrived(count: Int, at offset: Int64) -> [ByteBuffer]? {
        let end = min(offset + Int64(count), info.sizeBytes)
        guard offset < end else { return [] }
        return state.withLockedValue { state -> [ByteBuffer]? in
            let pieces = Self.windows(from: offset, to: end).map { state.windows[$0]?.bytes }
            guard !pieces.contains(where: { $0 == nil }) else { return nil }
            plan(from: offset, to: end, in: &state)
            return Self.cut(pieces.map { $0! }, from: offset, to: end)
        }
    }

    /// Up to `count` bytes at `offset`, as pieces in order; fewer at the end of the file, none
    /// past it.
    func read(count: Int, at offset: Int64) async throws -> [ByteBuffer] {
        let end = min(offset + Int64(count), info.sizeBytes)
        guard offset < end else { return [] }
        let needed = state.withLockedValue { state in
            plan(from: offset, to: end, in: &state)
            return Self.windows(from: offset, to: end).map { (number: $0, window: state.windows[$0]!) }
        }
        var pieces: [PlacedBytes] = []
        for (number, window) in needed {
            let failure: Error
            do {
                pieces.append(try await window.task.value)
                continue
            } catch {
                failure = error
            }
            forget(number, fetch: window.fetch)
            guard await refreshChunks(since: window.refresh) else { throw failure }
            let again = state.withLockedValue { state -> Window? in
                guard !state.isClosed else { return nil }
                // Another read may have started it again meanwhile, with the chunks as they are now.
                if let started = state.windows[number], started.refresh == state.refreshes { return started }
                state.windows[number] = fetch(number, in: &state)
                budget.held(by: ObjectIdentifier(self), state.windows.count)
                return state.windows[number]!
            }
            guard let again else { throw failure }
            do {
                pieces.append(try await again.task.value)
            } catch {
                // Fetched afresh by the next read that needs it.
                forget(number, fetch: again.fetch)
                throw error
            }
        }
        return Self.cut(pieces, from: offset, to: end)
    }

    /// Drops window `number` if it is still the fetch `fetch` (it failed).
    private func forget(_ number: Int64, fetch: UInt64) {
        state.withLockedValue { state in
            guard state.windows[number]?.fetch == fetch else { return }
            state.windows[number] = nil
            budget.held(by: ObjectIdentifier(self), state.windows.count)
        }
    }

    /// Asks the master for the file's chunks again, unless that was done since a window fetched
    /// with refresh `since` began; false when the file is gone (removed since the open), or its
    /// path names another file now (replaced since the open: its chunks may be gone, so the
    /// failure stands).
    private func refreshChunks(since: UInt64) async -> Bool {
        if state.withLockedValue({ $0.refreshes > since }) { return true }
        guard let path = currentPath(), let fresh = try? await client.stat(path), fresh.checksum == info.checksum, fresh.sizeBytes == info.sizeBytes,
              fresh.chunks.map(\.id) == info.chunks.map(\.id)
        else { return false }
        state.withLockedValue { state in
            state.chunks = fresh
            state.refreshes += 1
        }
        return true
    }

    /// Drops every window (the file was closed).
    func close() {
        state.withLockedValue { state in
            for window in state.windows.values { window.task.cancel() }
            state.windows = [:]
            state.isClosed = true
        }
        budget.held(by: ObjectIdentifier(self), nil)
    }

    /// The windows a read from `offset` to `end` (not past the file's end) lies in.
    private static func windows(from offset: Int64, to end: Int64) -> ClosedRange<Int64> {
        (offset / windowBytes)...((end - 1) / windowBytes)
    }

    /// Starts the windows a read from `offset` to `end` needs, and those ahead of a sequential
    /// reader while the budget allows; drops the rest.
    private func plan(from offset: Int64, to end: Int64, in state: inout State) {
        let needed = Self.windows(from: offset, to: end)
        let sequential = offset == state.lastEnd || offset / Self.windowBytes == (state.lastEnd - 1) / Self.windowBytes
        state.lastEnd = end
        let finalWindow = (info.sizeBytes - 1) / Self.windowBytes
        for window in needed where state.windows[window] == nil {
            state.windows[window] = fetch(window, in: &state)
        }
        budget.held(by: ObjectIdentifier(self), state.windows.count)
        if sequential {
            for window in (needed.upperBound + 1)...(needed.upperBound + Self.windowsAhead) where window <= finalWindow && state.windows[window] == nil {
                guard budget.allowsAnother() else { break }
                state.windows[window] = fetch(window, in: &state)
                budget.held(by: ObjectIdentifier(self), state.windows.count)
            }
        }
        // Dropped, not cancelled: another read of this file may be waiting for it.
        for window in state.windows.keys where window < needed.lowerBound || window > needed.upperBound + Self.windowsAhead {
            state.windows[window] = nil
        }
        budget.held(by: ObjectIdentifier(self), state.windows.count)
    }

    /// The bytes from `offset` to `end` out of the windows they lie in, as slices of their
    /// pieces in order: nothing is copied.
    private static func cut(_ windows: [PlacedBytes], from offset: Int64, to end: Int64) -> [ByteBuffer] {
        let first = offset / windowBytes
        var result: [ByteBuffer] = []
        for (position, bytes) in windows.enumerated() {
            let windowStart = (first + Int64(position)) * windowBytes
            let from = max(offset, windowStart) - windowStart
            let to = min(end, windowStart + bytes.end) - windowStart
            guard to > from else { continue }
            result.append(contentsOf: bytes.slices(from: from, count: to - from))
        }
        return result
    }

    private func fetch(_ window: Int64, in state: inout State) -> Window {
        state.fetches += 1
        let fetch = state.fetches
        let start = window * Self.windowBytes
        let range = start..<min(start + Self.windowBytes, info.sizeBytes)
        let info = state.chunks
        let client = self.client
        return Window(fetch: fetch, refresh: state.refreshes, task: Task { [weak self] in
            // Kept as the pieces they arrived in, across chunks too.
            var pieces: [ByteBuffer] = []
            try await client.read(info, range: range) { pieces.append(contentsOf: $0) }
            let bytes = PlacedBytes(contiguous: pieces)
            self?.state.withLockedValue { state in
                if state.windows[window]?.fetch == fetch { state.windows[window]!.bytes = bytes }
            }
            return bytes
        })
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
