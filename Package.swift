// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "tern",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tern", targets: ["tern"]),
        .library(name: "TernProtocol", targets: ["TernProtocol"]),
        .library(name: "TernLog", targets: ["TernLog"]),
        .library(name: "TernClient", targets: ["TernClient"]),
        // Preloaded into brokers by `tern verify --nemesis clock`; never linked into tern itself.
        .library(name: "TernClockShim", type: .dynamic, targets: ["TernClockShim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        // Thin C core, in two parts so that clients never link io_uring: the codecs the wire format
        // needs (CRC32C, LZ4 frame, gzip, snappy, zstd) and the ring the log writes through.
        .target(
            name: "CTernCodec",
            path: "CSources/CTernCodec",
            linkerSettings: [.linkedLibrary("lz4"), .linkedLibrary("z"), .linkedLibrary("zstd"), .linkedLibrary("snappy")]
        ),
        .target(
            name: "CTernIO",
            path: "CSources/CTernIO",
            linkerSettings: [.linkedLibrary("uring")]
        ),
        // Moves one process's wall clock (LD_PRELOAD), for clock-jump faults.
        .target(
            name: "TernClockShim",
            path: "CSources/TernClockShim",
            linkerSettings: [.linkedLibrary("dl")]
        ),
        .target(
            name: "TernProtocol",
            dependencies: [
                "CTernCodec",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "TernLog",
            dependencies: [
                "CTernIO", "TernProtocol",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TernClient",
            dependencies: [
                "TernProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "TernGroups",
            dependencies: [
                "TernProtocol", "TernLog",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Followers fetching from leaders, the ISR, the high watermark, acks=all waits.
        .target(
            name: "TernReplication",
            dependencies: [
                "TernProtocol", "TernLog", "TernCluster", "TernClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TernBroker",
            dependencies: [
                "CTernIO",
                "TernProtocol", "TernLog", "TernGroups", "TernCluster", "TernReplication", "TernClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TernServer",
            dependencies: [
                "TernProtocol", "TernBroker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // `tern verify`: workloads, fault injection into a local cluster, the history checker.
        .target(
            name: "TernVerify",
            dependencies: [
                "TernClient", "TernProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "tern",
            dependencies: [
                "TernServer", "TernBroker", "TernLog", "TernClient", "TernProtocol", "TernVerify",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // libFuzzer targets (`make fuzz`, built with -sanitize=fuzzer and TERN_FUZZING, where
        // libFuzzer supplies main); built plainly it replays inputs (`tern-fuzz TARGET FILE...`).
        .executableTarget(
            name: "tern-fuzz",
            dependencies: [
                "TernServer", "TernBroker", "TernLog", "TernProtocol", "TernClient", "TernReplication",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Generates Sources/TernProtocol/Generated from Kafka's JSON message schemas.
        .target(name: "TernProtocolGenerator", exclude: ["Kafka40Schemas"]),
        .executableTarget(name: "tern-protocol-gen", dependencies: ["TernProtocolGenerator"]),
        // Multi-broker coordination through etcd (v3 API over its JSON gateway).
        .target(
            name: "TernCluster",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "TernVerifyTests", dependencies: ["TernVerify"]),
        .testTarget(
            name: "TernClusterTests",
            dependencies: ["TernCluster", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "TernProtocolTests",
            dependencies: ["TernProtocol", "TernProtocolGenerator", "CTernCodec", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "TernLogTests",
            dependencies: [
                "TernLog", "TernProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TernGroupsTests",
            dependencies: [
                "TernGroups", "TernLog", "TernProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TernReplicationTests",
            dependencies: [
                "TernReplication", "TernLog", "TernCluster", "TernProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TernServerTests",
            dependencies: [
                "TernServer", "TernBroker", "TernProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
