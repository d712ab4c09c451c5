import NIOConcurrencyHelpers
import TYDFSClient
import TYDFSCore
import TYDFSFileIO

/// A staging file put while a program is still writing it, front to back.
///
/// Most files are written once, in order (`cp`, `rsync`, a compiler's output). For those the
/// mount starts the put at create and hands it each chunk of the staging file as soon as the
/// program has written it whole, so chunks travel to the datakeepers while the program writes
/// and `close` waits only for the last one. Any other write (out of order, a truncate, an
/// unlink) abandons the stream: its put fails, nothing is committed, and the file is put whole
/// at close as before.
final class GrowingFileStream: GrowingFile, Sendable {
    private struct State {
        /// Bytes written from the start of the file without a gap.
        var written: Int64 = 0
        var ended = false
        var abandoned = false
        var waiting: CheckedContinuation<Void, Never>?

        mutating func wake() -> CheckedContinuation<Void, Never>? {
            defer { waiting = nil }
            return waiting
        }
    }

    /// The staging file, opened again for the put to read from.
    let file: LocalFile
    private let state = NIOLockedValueBox(State())

    init(file staged: StagedFile) throws {
        file = try LocalFile.openForUpdatingBlocking(staged.localPath)
    }

    /// The program wrote `count` bytes at `offset`; a range that is not the next one in order
    /// abandons the stream.
    func wrote(at offset: Int64, count: Int) {
        state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            guard !state.abandoned, !state.ended else { return nil }
            if offset == state.written {
                state.written += Int64(count)
            } else {
                state.abandoned = true
            }
            return state.wake()
        }?.resume()
    }

    /// The program closed (or fsynced) the file: the put may commit what was written.
    func end() {
        state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.ended = true
            return state.wake()
        }?.resume()
    }

    /// The put must not commit (see the type's description).
    func abandon() {
        state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.abandoned = true
            return state.wake()
        }?.resume()
    }

    var isAbandoned: Bool { state.withLockedValue { $0.abandoned } }

    func bytesAvailable(from offset: Int64, upTo limit: Int64) async throws -> Int64 {
        while true {
            let answer = state.withLockedValue { state -> Int64?? in
                if state.abandoned { return .some(nil) }
                let available = state.written - offset
                return available >= limit || state.ended ? .some(max(0, min(available, limit))) : .none
            }
            switch answer {
            case .some(nil):
                throw TYDFSError(.invalidArgument, "the file was not written in order; it is put whole when closed")
            case .some(let count?):
                return count
            case .none:
                // Woken by the next write, the end or abandonment; then checked again.
                await withCheckedContinuation { continuation in
                    let ready = state.withLockedValue { state -> Bool in
                        if state.abandoned || state.ended || state.written - offset >= limit { return true }
                        state.waiting = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
        }
    }
}
