import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif
import NIOConcurrencyHelpers
import TYDFSSecurity

/// A minimal blocking HTTP client for sending requests the real client never would.
public enum HTTP {
    public struct Answer: Sendable {
        public var status: Int
        public var body: Data
        /// The response's headers, names as the server sent them.
        public var headers: [String: String] = [:]

        /// The value of header `name`, whatever its case.
        public func header(_ name: String) -> String? {
            headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
    }

    /// `signer`: sign the request as the CLI (an access key) or a datakeeper (the cluster secret) does.
    public static func request(
        _ method: String, _ url: String, body: String? = nil, bodyData: Data? = nil, headers: [String: String] = [:],
        signer: RequestSigner? = nil
    ) throws -> Answer {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = method
        request.httpBody = bodyData ?? body.map { Data($0.utf8) }
        if let signer {
            // The target as sent: everything after scheme://host:port.
            let afterScheme = url[url.range(of: "://")!.upperBound...]
            let target = afterScheme.firstIndex(of: "/").map { String(afterScheme[$0...]) } ?? "/"
            for (name, value) in signer.headers(method: method, target: target, body: request.httpBody ?? Data(), date: UnixClock.now) {
                request.setValue(value, forHTTPHeaderField: name)
            }
        }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let done = DispatchSemaphore(value: 0)
        let outcome = NIOLockedValueBox<Result<Answer, Error>?>(nil)
        URLSession.shared.dataTask(with: request) { data, response, error in
            let http = response as? HTTPURLResponse
            let headers = (http?.allHeaderFields ?? [:]).reduce(into: [String: String]()) { $0["\($1.key)"] = "\($1.value)" }
            let answer = Answer(status: http?.statusCode ?? 0, body: data ?? Data(), headers: headers)
            outcome.withLockedValue { $0 = error.map { .failure($0) } ?? .success(answer) }
            done.signal()
        }.resume()
        done.wait()
        return try outcome.withLockedValue { $0! }.get()
    }
}

/// Raw bytes over TCP, for requests no HTTP library would send: headers too large, bodies shorter
/// or longer than their `Content-Length`, bytes that are not UTF-8.
public enum RawHTTP {
    /// Connects to `address` (`ipv4:port`), sends `bytes`, and reads until the server closes the
    /// connection or `readSeconds` pass; returns what came back and whether the server closed.
    public static func exchange(_ address: String, send bytes: [UInt8], readSeconds: Double) throws -> (received: [UInt8], closed: Bool) {
        let colon = address.lastIndex(of: ":")!
        let host = String(address[..<colon]), port = UInt16(address[address.index(after: colon)...])!
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestClusterError("socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var peer = sockaddr_in()
        peer.sin_family = sa_family_t(AF_INET)
        peer.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &peer.sin_addr) == 1 else { throw TestClusterError("not an IPv4 address: \(host)") }
        let connected = withUnsafePointer(to: &peer) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestClusterError("cannot connect to \(address): errno \(errno)") }
        var timeout = timeval(tv_sec: 0, tv_usec: 20_000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        // Send while reading, so a server that answers early (and stops reading) cannot block us.
        var sent = 0
        let deadline = Date().addingTimeInterval(readSeconds)
        while Date() < deadline {
            if sent < bytes.count {
                let wrote = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, min($0.count, 65536), Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) }
                if wrote > 0 { sent += wrote } else if errno != EAGAIN && errno != EWOULDBLOCK { sent = bytes.count }
            }
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count > 0 { received += buffer[..<count]; continue }
            if count == 0 { return (received, true) }
            if errno != EAGAIN && errno != EWOULDBLOCK { return (received, true) }  // reset: closed too
        }
        return (received, false)
    }

    /// The status codes of every response in `bytes` (`HTTP/1.1 NNN` at the start of a line).
    public static func statuses(_ bytes: [UInt8]) -> [Int] {
        String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n").compactMap { line in
            guard line.hasPrefix("HTTP/1.1 ") || line.hasPrefix("HTTP/1.0 ") else { return nil }
            return Int(line.dropFirst(9).prefix(3))
        }
    }
}
