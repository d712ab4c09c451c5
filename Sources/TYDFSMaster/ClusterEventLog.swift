import TYDFSProtocol

/// The newest cluster events, for the dashboard's feed: a bounded ring that readers page through
/// by id, so a dashboard that polls sees every event once, and one that fell behind sees the
/// newest `capacity` of them.
struct ClusterEventLog {
    let capacity: Int
    private(set) var events: [ClusterEvent] = []
    private(set) var latest = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func append(_ kind: ClusterEventKind, _ message: String, timeMillis: Int64) {
        latest += 1
        events.append(ClusterEvent(id: latest, timeMillis: timeMillis, kind: kind, message: message))
        if events.count > capacity { events.removeFirst(events.count - capacity) }
    }

    /// The events kept whose id is greater than `id`, oldest first.
    func after(_ id: Int) -> EventsResponse {
        let start = events.firstIndex { $0.id > id } ?? events.endIndex
        return EventsResponse(latest: latest, events: Array(events[start...]))
    }
}
