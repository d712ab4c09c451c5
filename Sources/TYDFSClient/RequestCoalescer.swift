import TYDFSCore

/// Joins the requests a client's callers make at the same time into one, as a group commit
/// joins commits: while `inFlightLimit` requests are out, new items wait, and the next request
/// carries all of them (up to `itemsLimit`). A lone item goes out at once, so nothing waits that
/// would not have waited anyway.
///
/// Small-file gets, `get -r`, the S3 gateway and the mount all stat before they read: with 16
/// at once, one HTTP exchange (`POST /v1/files/lookup`) serves several of them.
actor RequestCoalescer<Item: Sendable, Answer: Sendable> {
    /// Sends one request for `items` and returns an answer for each, in order.
    typealias Send = @Sendable (_ items: [Item]) async throws -> [Result<Answer, any Error>]

    private struct Waiting {
        let item: Item
        let answer: CheckedContinuation<Answer, any Error>
    }

    private let inFlightLimit: Int
    private let itemsLimit: Int
    private var waiting: [Waiting] = []
    private var inFlight = 0

    init(inFlightLimit: Int, itemsLimit: Int) {
        precondition(inFlightLimit > 0 && itemsLimit > 0)
        self.inFlightLimit = inFlightLimit
        self.itemsLimit = itemsLimit
    }

    /// Items waiting for a request to carry them.
    var waitingCount: Int { waiting.count }

    /// The answer for `item`, sent with `send` in the next request.
    func ask(_ item: Item, send: @escaping Send) async throws -> Answer {
        try await withCheckedThrowingContinuation { answer in
            waiting.append(Waiting(item: item, answer: answer))
            sendWhileFree(send)
        }
    }

    private func sendWhileFree(_ send: @escaping Send) {
        while inFlight < inFlightLimit, !waiting.isEmpty {
            let batch = Array(waiting.prefix(itemsLimit))
            waiting.removeFirst(batch.count)
            inFlight += 1
            Task { await self.carry(batch, send) }
        }
    }

    private func carry(_ batch: [Waiting], _ send: @escaping Send) async {
        do {
            let answers = try await send(batch.map(\.item))
            guard answers.count == batch.count else {
                throw TYDFSError(.protocolViolation, "\(answers.count) answers came for \(batch.count) requests")
            }
            for (waiting, answer) in zip(batch, answers) { waiting.answer.resume(with: answer) }
        } catch {
            for waiting in batch { waiting.answer.resume(throwing: error) }
        }
        inFlight -= 1
        sendWhileFree(send)
    }
}
