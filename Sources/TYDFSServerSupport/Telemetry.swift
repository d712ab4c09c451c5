import Hummingbird
import Metrics
import NIOCore
import Prometheus

/// The process's metrics: swift-metrics backed by one Prometheus registry, which `/metrics` on
/// every component renders in Prometheus' text format. One registry per process because
/// swift-metrics has one backend per process; in `tydfs cluster` (everything in one process)
/// every component's metrics carry labels that tell them apart (`datakeeper="dk1"`).
public enum Telemetry {
    public static let registry = PrometheusCollectorRegistry()

    private static let bootstrapped: Void = {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.nameAndLabelSanitizer = { name, labels in
            (prometheusName(name), labels.map { (prometheusName($0.0), $0.1) })
        }
        MetricsSystem.bootstrap(factory)
    }()

    /// Makes swift-metrics report to `registry`. Idempotent; servers call it before they create
    /// their metrics (a metric made earlier goes nowhere).
    public static func bootstrap() { bootstrapped }

    /// Hummingbird's request metrics under Prometheus names; every other label loses the dots
    /// Prometheus does not allow.
    static let renamed = [
        "hb.requests": "tydfs_http_requests_total",
        "hb.request.errors": "tydfs_http_request_errors_total",
        "http.server.request.duration": "tydfs_http_request_duration_seconds",
        "http.server.active_requests": "tydfs_http_active_requests",
    ]

    static func prometheusName(_ label: String) -> String {
        if let name = renamed[label] { return name }
        return String(label.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
    }

    /// `GET /metrics`: everything the registry holds, in the text exposition format.
    public static func response() -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
    }
}
