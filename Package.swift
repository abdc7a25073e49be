// swift-tools-version: 6.0
import PackageDescription

// EasyQuant: quantize GPT-2-style models into .eqm files and measure what it cost.
//
// One library (`EasyQuant`) holds the logic, in folders by concern; the three tools are
// thin wrappers over it. Native code comes from Debian packages through system-library
// targets: zstd (libzstd-dev), oneDNN (libdnnl-dev) and OpenSSL's libcrypto (libssl-dev,
// used only for SHA-256).
let package = Package(
    name: "EasyQuant",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "EasyQuant", targets: ["EasyQuant"]),
        .executable(name: "eqconvert", targets: ["eqconvert"]),
        .executable(name: "eqinspect", targets: ["eqinspect"]),
        .executable(name: "eqppl", targets: ["eqppl"]),
        .executable(name: "eqgen", targets: ["eqgen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .target(
            name: "EasyQuant",
            dependencies: ["CZstd", "CDNNL", "CLibCrypto"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "eqconvert",
            dependencies: ["EasyQuant", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "eqinspect",
            dependencies: ["EasyQuant", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "eqppl",
            dependencies: ["EasyQuant", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Times the tokenizer for scripts/bench-tokenizer.
        .executableTarget(name: "eqbench-tokenizer", dependencies: ["EasyQuant"]),
        .executableTarget(
            name: "eqgen",
            dependencies: ["EasyQuant", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(
            name: "EasyQuantTests",
            dependencies: ["EasyQuant"],
            resources: []
        ),
    ],
    swiftLanguageModes: [.v5]
)
