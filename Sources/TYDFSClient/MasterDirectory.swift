import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TYDFSCore
import TYDFSProtocol

/// The masters a client or datakeeper was given (`--master URL1,URL2,URL3`) and the one it
/// believes leads (issue 17). Requests go to that one; a standby's redirect names the leader,
/// and a master that cannot be reached sends the next request to the next one in the list.
public final class MasterDirectory: Sendable {
    /// Every master given, without trailing slashes, in the order given.
    public let urls: [String]
    private let leader: NIOLockedValueBox<String>

    /// `list` like `http://10.0.0.1:9333` or `http://a:9333,http://b:9333`.
    public init(_ list: String) throws {
        let urls = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        guard !urls.isEmpty else {
            throw TYDFSError(.invalidArgument, "the master URL must look like http://127.0.0.1:9333 (or several, separated by commas), not '\(list)'")
        }
        for url in urls {
            guard url.hasPrefix("http://") || url.hasPrefix("https://"), url.count > 8 else {
                throw TYDFSError(.invalidArgument, "the master URL must look like http://127.0.0.1:9333 (or several, separated by commas), not '\(url)'")
            }
        }
        self.urls = urls
        self.leader = NIOLockedValueBox(urls[0])
    }

    /// Whether there is more than one master to try.
    public var isSeveral: Bool { urls.count > 1 }

    /// The master requests go to now.
    public var current: String { leader.withLockedValue { $0 } }

    /// A standby named `url` as the leader.
    public func follow(_ url: String) {
        let url = url.hasSuffix("/") ? String(url.dropLast()) : url
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else { return }
        leader.withLockedValue { $0 = url }
    }

    /// `failed` could not be reached (or does not lead and named no leader): the next request
    /// goes to the master after it in the list (unless another request moved on already).
    public func skip(_ failed: String) {
        leader.withLockedValue { current in
            guard current == failed else { return }
            let position = urls.firstIndex(of: failed) ?? -1
            current = urls[(position + 1) % urls.count]
        }
    }

    /// Sends the request `make` builds for a master's URL to the leader, and returns its answer
    /// and body. A standby's redirect is followed (and remembered). With `patienceSeconds`, a
    /// master that cannot be reached, or that answers that no one leads, is followed by the next
    /// one until the time is up; with 0 the next call starts at the next master. A master that
    /// took the request and then failed to answer (timed out, closed) may have acted on it: the
    /// request goes to the next one only if it is `repeatable`.
    public func send(
        _ http: HTTPClient, timeout: TimeAmount, patienceSeconds: Double, repeatable: Bool = true,
        _ make: (String) throws -> HTTPClientRequest
    ) async throws -> (response: HTTPClientResponse, payload: ByteBuffer) {
        let giveUp = ContinuousClock.now + .seconds(patienceSeconds)
        var redirects = 0
        while true {
            let master = current
            let response: HTTPClientResponse
            let payload: ByteBuffer
            do {
                response = try await http.execute(try make(master), timeout: timeout)
                payload = try await response.body.collect(upTo: Limits.maxControlMessageBytes)
            } catch is NIOTooManyBytesError {
                throw TYDFSError(.protocolViolation, "the master at \(master) answered more than \(Limits.maxControlMessageBytes) bytes, the most a client reads")
            } catch {
                skip(master)
                guard repeatable || Self.neverReached(error) else {
                    throw TYDFSError(.unreachable, "the master at \(master) took the request but did not answer (\(PeerError.describe(error))); it may or may not have taken effect")
                }
                guard ContinuousClock.now < giveUp else {
                    throw TYDFSError(.unreachable, "cannot reach the master at \(master): \(PeerError.describe(error))")
                }
                try await Task.sleep(for: .milliseconds(300))
                continue
            }
            if response.status == .temporaryRedirect, let leader = response.headers.first(name: Header.leader), leader != master, redirects < 5 {
                redirects += 1
                follow(leader)
                continue
            }
            if response.status == .serviceUnavailable || response.status == .temporaryRedirect,
               (try? JSONDecoder().decode(ErrorResponse.self, from: Data(payload.readableBytesView)))?.tydfsError.code == .notLeader {
                // No master leads yet (a failover under way), or this one just stepped down.
                skip(master)
                if ContinuousClock.now < giveUp {
                    try await Task.sleep(for: .milliseconds(300))
                    continue
                }
            }
            return (response, payload)
        }
    }

    /// Whether `error` says the request never reached a server (no connection could be made), so
    /// sending it elsewhere cannot make it happen twice.
    static func neverReached(_ error: Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? IOError, [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) { return true }
        return false
    }
}
