// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "faultline",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "faultline", targets: ["faultline"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .executableTarget(
            name: "faultline",
            dependencies: ["FaultlineCLI"],
            swiftSettings: strict,
            // Release builds on Linux link with lld: relative relocations packed (RELR, glibc >= 2.36), so the loader
            // reads 30 KB of them at start instead of 4 MB; and no exported symbols (nothing loads this executable as
            // a library), which drops a 7 MB dynamic symbol table. Measured by scripts/bench.py (startup row):
            // `faultline --version` peak RSS 24 -> 17 MiB, stripped binary 105 -> 93 MB.
            linkerSettings: [
                .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic"],
                             .when(platforms: [.linux], configuration: .release)),
            ]
        ),
        .target(
            name: "FaultlineCLI",
            dependencies: [
                "FaultlineCore",
                "FaultlineEngine",
                "FaultlineFaults",
                "FaultlineJournal",
                "FaultlineSystem",
                "FaultlineAgent",
                "FaultlineProbes",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "FaultlineAgent",
            dependencies: [
                "FaultlineCore", "FaultlineEngine", "FaultlineFaults", "FaultlineJournal", "FaultlineProbes", "FaultlineSystem",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "FaultlineCore",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(
            name: "FaultlineEngine",
            dependencies: ["FaultlineCore", "FaultlineSystem", "FaultlineFaults", "FaultlineJournal", "FaultlineProbes",
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "OTel", package: "swift-otel"),
                           .product(name: "Tracing", package: "swift-distributed-tracing"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: strict
        ),
        .target(
            name: "FaultlineJournal",
            dependencies: ["FaultlineCore", "FaultlineSystem", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        .target(
            name: "FaultlineProbes",
            dependencies: ["FaultlineCore", "FaultlineSystem", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strict
        ),
        .target(
            name: "FaultlineFaults",
            dependencies: ["FaultlineCore", "FaultlineSystem"],
            swiftSettings: strict
        ),
        .target(
            name: "FaultlineSystem",
            dependencies: [
                "FaultlineCore",
                "CLibcap",
                "CFaultlineShims",
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: strict
        ),
        .target(name: "CFaultlineShims"),
        .systemLibrary(
            name: "CLibcap",
            providers: [.apt(["libcap-dev"])]
        ),
        .testTarget(
            name: "FaultlineCoreTests",
            dependencies: ["FaultlineCore"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .target(
            name: "FaultlineTestSupport",
            dependencies: ["FaultlineSystem", "FaultlineCore", "FaultlineFaults", "FaultlineProbes"],
            path: "Tests/FaultlineTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "FaultlineSystemTests",
            dependencies: ["CFaultlineShims", "FaultlineSystem", "FaultlineTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FaultlineProbesTests",
            dependencies: ["FaultlineProbes", "FaultlineCore", "FaultlineSystem", "FaultlineTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FaultlineEngineTests",
            dependencies: ["FaultlineEngine", "FaultlineCore", "FaultlineFaults", "FaultlineJournal", "FaultlineProbes", "FaultlineSystem",
                           "FaultlineTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FaultlineAgentTests",
            dependencies: ["FaultlineAgent", "FaultlineEngine", "FaultlineJournal", "FaultlineCore", "FaultlineSystem", "FaultlineTestSupport",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FaultlineFaultsTests",
            dependencies: ["FaultlineFaults", "FaultlineSystem", "FaultlineCore", "FaultlineTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FaultlineCLITests",
            dependencies: [
                "FaultlineCLI", "FaultlineCore", "FaultlineJournal", "FaultlineTestSupport", "FaultlineAgent",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
    ]
)
