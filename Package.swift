// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "tydfs",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "tydfs", targets: ["tydfs"]),
        .library(name: "TYDFSClient", targets: ["TYDFSClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-async-algorithms.git", from: "1.1.4"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        // The PostgreSQL metadata store that several masters share (issue 17).
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        // HMAC-SHA256 and SHA-256 for signed requests and chunk tokens (issue 13).
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        // TLS on every listener and for every client (issue 13); AsyncHTTPClient already uses it.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // HTTP part types for the handler that answers `Expect: 100-continue` (issue 15); Hummingbird uses it already.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    ],
    targets: [
        /// Hardware CRC32C (SSE4.2) with a portable fallback; the only C in the package.
        .target(name: "CCRC32C"),
        /// Pure logic: no I/O, no clock, no networking.
        .target(name: "TYDFSCore", dependencies: ["CCRC32C"]),
        /// Blocking POSIX file operations, run on NIO's thread pool: what the data path needs
        /// (positioned reads and writes, fsync, atomic rename) and nothing more.
        .target(name: "TYDFSFileIO", dependencies: [
            "TYDFSCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        /// The wire contract shared by servers and the client.
        .target(name: "TYDFSProtocol", dependencies: ["TYDFSCore"]),
        /// Who may do what: the cluster secret, chunk tokens, signed requests, access keys.
        /// Pure, but for reading and writing secret files.
        .target(name: "TYDFSSecurity", dependencies: [
            "TYDFSCore", "TYDFSProtocol",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "TYDFSMetadata", dependencies: [
            "TYDFSCore",
            .product(name: "SQLKit", package: "sql-kit"),
            .product(name: "SQLiteKit", package: "sqlite-kit"),
            .product(name: "PostgresKit", package: "postgres-kit"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// Shared server plumbing (HTTP app set-up, JSON helpers, metrics) for master and datakeeper.
        .target(name: "TYDFSServerSupport", dependencies: [
            "TYDFSCore", "TYDFSProtocol", "TYDFSSecurity",
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
        ]),
        .target(name: "TYDFSMaster", dependencies: [
            "TYDFSCore", "TYDFSSecurity", "TYDFSProtocol", "TYDFSMetadata", "TYDFSServerSupport", "TYDFSFileIO", "TYDFSClient",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "TYDFSDataKeeper", dependencies: [
            "TYDFSCore", "TYDFSSecurity", "TYDFSProtocol", "TYDFSServerSupport", "TYDFSFileIO", "TYDFSClient",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "AsyncAlgorithms", package: "swift-async-algorithms"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "TYDFSClient", dependencies: [
            "TYDFSCore", "TYDFSProtocol", "TYDFSFileIO", "TYDFSSecurity",
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// S3's rules, pure: SigV4, listings, ranges, XML and errors (issue 15).
        .target(name: "TYDFSS3", dependencies: [
            "TYDFSCore",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        /// `tydfs s3`: the S3 gateway, an HTTP shell over TYDFSS3 and the client library.
        .target(name: "TYDFSS3Gateway", dependencies: [
            "TYDFSCore", "TYDFSS3", "TYDFSClient", "TYDFSProtocol", "TYDFSSecurity", "TYDFSServerSupport",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// libfuse 3 (Debian's libfuse3-dev), for `tydfs mount` (issue 18).
        .systemLibrary(name: "CFuse", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        /// `tydfs mount`: the cluster as a local file system, through FUSE's low-level API.
        .target(name: "TYDFSMount", dependencies: [
            "CFuse", "TYDFSCore", "TYDFSClient", "TYDFSProtocol", "TYDFSFileIO",
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        /// `tydfs bench`: the small-file benchmark, driven through the client library.
        .target(name: "TYDFSBench", dependencies: [
            "TYDFSCore", "TYDFSClient",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .executableTarget(name: "tydfs", dependencies: [
            "TYDFSCore", "TYDFSProtocol", "TYDFSClient", "TYDFSBench", "TYDFSMaster", "TYDFSDataKeeper", "TYDFSFileIO", "TYDFSServerSupport", "TYDFSSecurity", "TYDFSS3Gateway", "TYDFSMount", "TYDFSMetadata",
            .product(name: "Configuration", package: "swift-configuration"),
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "TYDFSTestSupport", dependencies: ["TYDFSCore", "TYDFSProtocol", "TYDFSSecurity", "TYDFSMetadata", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")], path: "Tests/TYDFSTestSupport"),
        .testTarget(name: "TYDFSCoreTests", dependencies: ["TYDFSCore", "TYDFSProtocol"]),
        .testTarget(name: "TYDFSSecurityTests", dependencies: ["TYDFSSecurity", "TYDFSCore", "TYDFSProtocol"]),
        .testTarget(name: "TYDFSMountTests", dependencies: ["TYDFSMount", "TYDFSCore"]),
        .testTarget(name: "TYDFSClientTests", dependencies: [
            "TYDFSClient", "TYDFSCore", "TYDFSProtocol", "TYDFSTestSupport", .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "TYDFSS3Tests", dependencies: ["TYDFSS3", "TYDFSCore"]),
        .testTarget(name: "TYDFSS3GatewayTests", dependencies: [
            "TYDFSS3Gateway", "TYDFSClient", "TYDFSCore", "TYDFSTestSupport",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "TYDFSMetadataTests", dependencies: [
            "TYDFSMetadata", "TYDFSCore", "TYDFSTestSupport", .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .testTarget(name: "TYDFSMasterTests", dependencies: [
            "TYDFSMaster", "TYDFSMetadata", "TYDFSCore", "TYDFSProtocol", "TYDFSClient", "TYDFSServerSupport", "TYDFSTestSupport",
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        .testTarget(name: "TYDFSDataKeeperTests", dependencies: [
            "TYDFSDataKeeper", "TYDFSCore", "TYDFSFileIO", "TYDFSSecurity", "TYDFSTestSupport",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "TYDFSIntegrationTests", dependencies: [
            "TYDFSTestSupport", "TYDFSCore", "TYDFSProtocol", "TYDFSSecurity", .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
    ],
    // Swift 6: complete data-race checking, as errors.
    swiftLanguageModes: [.v6]
)
