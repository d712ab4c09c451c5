import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOConcurrencyHelpers
import TYDFSSecurity

/// A minimal blocking HTTP client for sending requests the real client never would.
public enum HTTP {
    public struct Answer: Sendable {
        public var status: Int
        public var body: Data
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
            let answer = Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, body: data ?? Data())
            outcome.withLockedValue { $0 = error.map { .failure($0) } ?? .success(answer) }
            done.signal()
        }.resume()
        done.wait()
        return try outcome.withLockedValue { $0! }.get()
    }
}
