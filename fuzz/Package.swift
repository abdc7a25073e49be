// swift-tools-version: 5.4
import PackageDescription

// EasyQuant's fuzz targets: one libFuzzer executable per file parser, built with
// AddressSanitizer. A package of its own (depending on the main one by path) so that the main
// build never sees sanitizer flags. Build and run them with `scripts/fuzz TARGET SECONDS`
// (docs/RELIABILITY.md); `scripts/fuzz --list` lists them.
//
// Each target is a folder `Sources/fuzz-NAME/` whose main.swift defines one
// `LLVMFuzzerTestOneInput`, with its seed corpus in `corpus/NAME/` and optionally a dictionary
// `dict/NAME.dict`. To add a target, add its name here and those folders.
//
// Why tools version 5.4 and `.target`: from 5.5 on, SwiftPM renames every executable's entry
// point and links `main` to it, which collides with libFuzzer's own `main`; a 5.4 executable target
// whose code is compiled with -parse-as-library (below) has no main of its own, so libFuzzer's is used.
let targetNames = ["safetensors", "eqm", "json", "tokenizer", "gguf", "model"]

let package = Package(
    name: "EasyQuantFuzz",
    dependencies: [.package(name: "EasyQuant", path: "..")],
    targets: [
        .target(name: "FuzzSupport", dependencies: [.product(name: "EasyQuant", package: "EasyQuant")]),
    ] + targetNames.map { name in
        .executableTarget(
            name: "fuzz-\(name)",
            dependencies: ["FuzzSupport", .product(name: "EasyQuant", package: "EasyQuant")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    },
    swiftLanguageVersions: [.v5]
)
