// swift-tools-version: 6.0
import PackageDescription

// EasyQuant: quantize GPT-2-style models into .eqm files and measure what it cost.
//
// One library (`EasyQuant`) holds the logic, in folders by concern; the three tools are
// thin wrappers over it. Native code comes from Debian packages through system-library
// targets: zstd (libzstd-dev), oneDNN (libdnnl-dev) and OpenSSL's libcrypto (libssl-dev,
// used only for SHA-256).

// Optional vector instruction set for EasyQuant's own Swift code (the SIMD matrix
// backend and vector operations). Swift compiles for baseline x86-64 (SSE2) by default,
// which runs everywhere; `EASYQUANT_SIMD=avx2 swift build ...` (Haswell and later) or
// `EASYQUANT_SIMD=avx512` (x86-64-v4 level: Skylake-SP, Zen 4 and later) lets the
// compiler use wider registers and FMA, and the binary then needs that CPU. oneDNN
// picks its kernels at run time and is unaffected.
let simdLevelFlags: [String] = {
    switch Context.environment["EASYQUANT_SIMD"] ?? "" {
    case "avx2": return ["-target-cpu", "haswell", "-DEASYQUANT_AVX2"]
    case "avx512": return ["-target-cpu", "skylake-avx512", "-DEASYQUANT_AVX512"]
    default: return []
    }
}()

let package = Package(
    name: "EasyQuant",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "EasyQuant", targets: ["EasyQuant"]),
        .executable(name: "eqconvert", targets: ["eqconvert"]),
        .executable(name: "eqinspect", targets: ["eqinspect"]),
        .executable(name: "eqppl", targets: ["eqppl"]),
        .executable(name: "eqgen", targets: ["eqgen"]),
        .executable(name: "eqtable", targets: ["eqtable"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // EasyQuant's own element-wise kernels in C, compiled for AVX-512, AVX2 and the
        // baseline, the copy picked at run time (Sources/CKernels/dispatch.c).
        .target(name: "CKernels"),
        // A pool of worker threads that poll briefly for work before they sleep (Parallel.swift).
        .target(name: "CThreads"),
        .target(
            name: "EasyQuant",
            dependencies: ["CZstd", "CDNNL", "CLibCrypto", "CKernels", "CThreads"],
            // Release builds keep every precondition and overflow check: a hostile model file
            // must meet a check, not undefined behaviour. Hot kernels use wrapping arithmetic
            // (&+, &*) and unsafe buffers locally, with their bounds checked once at entry.
            swiftSettings: [.unsafeFlags(simdLevelFlags)]
        ),
        // Option groups and checks the command-line tools share.
        .target(
            name: "EasyQuantCLI",
            dependencies: ["EasyQuant", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "eqconvert",
            dependencies: ["EasyQuant", "EasyQuantCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "eqinspect",
            dependencies: ["EasyQuant", "EasyQuantCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "eqppl",
            dependencies: ["EasyQuant", "EasyQuantCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Times the tokenizer for scripts/bench-tokenizer.
        .executableTarget(name: "eqbench-tokenizer", dependencies: ["EasyQuant"]),
        .executableTarget(
            name: "eqgen",
            dependencies: ["EasyQuant", "EasyQuantCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "eqbench-gemm", dependencies: ["EasyQuant"]),
        // Times the batch-1 products of a decode step for scripts/bench-gemv.
        .executableTarget(name: "eqbench-gemv", dependencies: ["EasyQuant"]),
        .executableTarget(
            name: "eqtable",
            dependencies: ["EasyQuant", "EasyQuantCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // The README's "Use it from Swift" program; the tests build and run it.
        .executableTarget(name: "quickstart", dependencies: ["EasyQuant"], path: "Examples/QuickStart"),
        .testTarget(
            name: "EasyQuantTests",
            dependencies: ["EasyQuant"],
            resources: []
        ),
    ],
    swiftLanguageModes: [.v5],
    cLanguageStandard: .c11
)
