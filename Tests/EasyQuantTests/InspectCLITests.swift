import EasyQuant
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// The built `eqinspect` and `eqconvert` binaries, run as a user would: exit codes, what
/// they print, and what they leave (or do not leave) on disk.
final class InspectCLITests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws { dir = try TestFiles.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testInspectJSONEndToEnd() throws {
        let folder = try CLIFixtures.makeModel(in: dir)
        let eqm = dir + "/m.eqm"
        let convert = try CLIFixtures.run("eqconvert", [folder, eqm], in: dir)
        XCTAssertEqual(convert.status, 0, convert.stderr)

        let r = try CLIFixtures.run("eqinspect", [eqm, "--json", "--stats", "--compare", folder], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONValue.parse(r.stdout)
        XCTAssertEqual(json["kind"]?.stringValue, "eqm")
        XCTAssertEqual(json["format_version"]?.stringValue, "1.0")
        XCTAssertEqual(json["method"]?.stringValue, "absmax")
        XCTAssertEqual(json["tool"]?.stringValue, "eqconvert")
        XCTAssertEqual(json["sources"]?.arrayValue?.first?["sha256"]?.stringValue, try SHA256Hasher.hex(ofFile: folder + "/model.safetensors"))
        let tensors = try XCTUnwrap(json["tensors"]?.arrayValue)
        let file = try EQMFile(path: eqm)
        XCTAssertEqual(tensors.compactMap { $0["name"]?.stringValue }, file.tensors.map(\.name))
        XCTAssertEqual(json["totals"]?["parameters"]?.intValue, file.tensors.reduce(0) { $0 + $1.elementCount })
        XCTAssertEqual(json["totals"]?["file_bytes"]?.intValue, file.file.count)
        XCTAssertEqual(json["comparison"]?["not_in_file"], ["h.0.attn.bias"])

        let source = try SafetensorsModel(path: folder)
        for t in tensors {
            let name = t["name"]!.stringValue!
            let record = file.record(name)!
            XCTAssertEqual(t["shape"]?.arrayValue?.compactMap(\.intValue), record.shape)
            XCTAssertEqual(t["bits_per_weight"]?.doubleValue, Double(record.storedBytes * 8) / Double(record.elementCount), name)
            // The printed metrics are exactly the library's on the decoded tensor.
            let want = ErrorMetrics(original: source.floats(of: source.tensor(name)!), reconstructed: try file.floats(record))
            XCTAssertEqual(t["mse"]?.doubleValue, want.mse, name)
            if record.quantization != nil {
                XCTAssertEqual(t["storage"]?.stringValue, name.hasPrefix("h.") ? "int8 sym ch1" : "int8 sym ch0")
                XCTAssertEqual(t["sqnr_db"]?.doubleValue, want.sqnrDB, name)
                XCTAssertGreaterThan(want.sqnrDB, 35, "8-bit per-channel absmax on gaussian weights")
                let h = try XCTUnwrap(t["entropy_bits_per_weight"]?.doubleValue)
                XCTAssertTrue(h > 4 && h <= 8, "\(name): \(h)")
                XCTAssertEqual(h, CodeEntropy(try file.quantizedTensor(record)).bitsPerCode)
                XCTAssertNotNil(t["clamp_share"]?.doubleValue)
            } else {
                XCTAssertEqual(t["storage"]?.stringValue, "f32")
                XCTAssertEqual(t["sqnr_db"], .null, "an exact tensor's infinite SQNR is written as null")
                XCTAssertNil(t["entropy_bits_per_weight"])
            }
        }
        let bound = try XCTUnwrap(json["entropy_bound"]?["actual_over_bound"]?.doubleValue)
        XCTAssertTrue(bound > 0.9 && bound < 1.3, "zstd lands near the order-0 bound on random weights: \(bound)")
    }

    func testTextTableAndHistogram() throws {
        let folder = try CLIFixtures.makeModel(in: dir)
        let eqm = dir + "/m.eqm"
        XCTAssertEqual(try CLIFixtures.run("eqconvert", [folder, eqm, "--method", "zeropoint"], in: dir).status, 0)
        let r = try CLIFixtures.run("eqinspect", [eqm, "--tensor", "wte.weight", "--bins", "8"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.components(separatedBy: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("method") && $0.hasSuffix("zeropoint, 8-bit, granularity channel") }, r.stdout)
        let header = try XCTUnwrap(lines.first { $0.hasPrefix("name ") })
        XCTAssertTrue(header.contains("storage") && header.contains("entropy b/w"), header)
        let row = try XCTUnwrap(lines.first { $0.hasPrefix("h.0.attn.c_attn.weight ") })
        XCTAssertTrue(row.contains("int8 asym ch1"), row)
        XCTAssertTrue(lines.contains { $0.hasPrefix("entropy bound: ") && $0.hasSuffix("% of the bound") })
        let histogramStart = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("histogram of wte.weight (640 values, 8 bins)") })
        XCTAssertEqual(lines[(histogramStart + 1)...].filter { $0.contains("│") }.count, 8)
    }

    func testPlotIsWrittenAtomicallyAndIsValidSVG() throws {
        let folder = try CLIFixtures.makeModel(in: dir)
        let eqm = dir + "/m.eqm"
        XCTAssertEqual(try CLIFixtures.run("eqconvert", [folder, eqm, "--method", "simquant", "--bits", "4"], in: dir).status, 0)
        let plots = dir + "/plots"
        try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
        let svg = plots + "/weights.svg"
        let r = try CLIFixtures.run("eqinspect", [eqm, "--compare", folder, "--plot", svg, "--json"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: plots), ["weights.svg"], "no temporary file left")
        let root = try XMLElementTree(String(contentsOfFile: svg, encoding: .utf8))
        XCTAssertEqual(root.name, "svg")
        let json = try JSONValue.parse(r.stdout)
        let plotted = try XCTUnwrap(json["plot"]?["tensors"]?.arrayValue)
        XCTAssertEqual(plotted.count, 4, "default: a few representative tensors")
        XCTAssertEqual(root.all("path").filter { $0.attributes["class"] == "histogram" }.count, 2 * plotted.count, "original and quantized per tensor")
        XCTAssertEqual(root.all("g").filter { $0.attributes["class"] == "panel" }.count, plotted.count)

        // Chosen tensors only.
        let r2 = try CLIFixtures.run("eqinspect", [eqm, "--compare", folder, "--plot", svg, "--tensor", "h.0.mlp.c_fc.weight"], in: dir)
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let one = try XMLElementTree(String(contentsOfFile: svg, encoding: .utf8))
        XCTAssertEqual(one.all("path").filter { $0.attributes["class"] == "histogram" }.count, 2)
        XCTAssertTrue(one.all("text").contains { $0.text.hasPrefix("h.0.mlp.c_fc.weight") })
    }

    func testDamagedFilesGiveOneLineNamingTheFile() throws {
        let folder = try CLIFixtures.makeModel(in: dir)
        let eqm = dir + "/m.eqm"
        XCTAssertEqual(try CLIFixtures.run("eqconvert", [folder, eqm], in: dir).status, 0)
        let victim = try EQMFile(path: eqm).record("h.0.mlp.c_fc.weight")!
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: eqm)))

        let flipped = dir + "/flipped.eqm"
        var f = bytes
        f[victim.data.offset + victim.data.length / 2] ^= 0x20
        try Data(f).write(to: URL(fileURLWithPath: flipped))
        let truncated = dir + "/truncated.eqm"
        try Data(bytes.prefix(bytes.count / 2)).write(to: URL(fileURLWithPath: truncated))
        let garbage = dir + "/garbage.eqm"
        try Data((0..<300).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: garbage))
        bytes[EQMFormatHeaderOffset.of(bytes) + 1] = UInt8(ascii: "!")  // break the JSON header
        let badHeader = dir + "/badheader.eqm"
        try Data(bytes).write(to: URL(fileURLWithPath: badHeader))

        for (path, mustMention) in [(flipped, "h.0.mlp.c_fc.weight"), (truncated, "truncated"), (garbage, "not an .eqm file"),
                                    (badHeader, "header is not valid JSON"), (dir + "/missing.eqm", "not found")] {
            for args in [[path], [path, "--stats", "--json"], [path, "--compare", folder]] {
                let r = try CLIFixtures.run("eqinspect", args, in: dir)
                XCTAssertEqual(r.status, 1, "\(args): exits with an error, not a crash: \(r.stderr)")
                XCTAssertTrue(r.stdout.isEmpty, "nothing half-printed: \(r.stdout)")
                let lines = r.stderr.split(separator: "\n")
                XCTAssertEqual(lines.count, 1, r.stderr)
                XCTAssertTrue(r.stderr.contains(path + ": "), r.stderr)
                XCTAssertTrue(r.stderr.contains(mustMention), "\(mustMention): \(r.stderr)")
            }
        }
        let typo = try CLIFixtures.run("eqinspect", [eqm, "--tensor", "h.0.mlp.c_fx.weight"], in: dir)
        XCTAssertEqual(typo.status, 1)
        XCTAssertTrue(typo.stderr.contains("no tensor named h.0.mlp.c_fx.weight"), typo.stderr)
    }

    /// A file that is valid but holds extreme values: a scale of 1e30, a float tensor at the
    /// ends of the float range, an empty tensor. Every mode must still finish and report them.
    /// (A float tensor with NaN or infinities is refused by the reader: EasyQuant never writes
    /// one, `HostileFileTests`.)
    func testExtremeButValidFileIsReportedNotCrashedOn() throws {
        let path = dir + "/extreme.eqm"
        let writer = try EQMWriter(path: path)
        let layout = BlockLayout(shape: [2, 3], axis: 1, granularity: .channel)
        let q = QuantizedTensor(shape: [2, 3], method: "absmax", bits: 8, isSigned: true, isSymmetric: true, layout: layout,
                                codes: [127, 0x81, 0, 1, 2, 3], scales: [1e30, 1, 2], zeroPoints: nil)
        try writer.append(PendingTensor(name: "huge", quantized: q, sourceDType: .f32, level: 3))
        try writer.append(PendingTensor(name: "odd", floats: [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, 1], shape: [4], sourceDType: .f32, level: 3))
        try writer.append(PendingTensor(name: "empty", floats: [], shape: [0, 5], sourceDType: .f32, level: 3))
        try writer.finish(metadata: .makeObject([]))

        let svg = dir + "/extreme.svg"
        let r = try CLIFixtures.run("eqinspect", [path, "--stats", "--json", "--tensor", "huge", "--tensor", "odd", "--tensor", "empty"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let tensors = try XCTUnwrap(JSONValue.parse(r.stdout)["tensors"]?.arrayValue)
        XCTAssertEqual(tensors[0]["max"]?.doubleValue, Double(Float(127) * 1e30))
        XCTAssertEqual(tensors[0]["clamp_share"]?.doubleValue, 2.0 / 6, "127 and -127 are absmax's limits")
        XCTAssertEqual(tensors[1]["non_finite"]?.intValue, 0)
        XCTAssertEqual(tensors[1]["max"]?.doubleValue, Double(Float.greatestFiniteMagnitude))
        XCTAssertEqual(tensors[1]["min"]?.doubleValue, -Double(Float.greatestFiniteMagnitude))
        XCTAssertFalse(r.stdout.contains("nan") || r.stdout.contains("inf"), "sums over extreme values stay finite: \(r.stdout)")
        XCTAssertEqual(tensors[2]["elements"]?.intValue, 0)
        for args in [[path, "--stats"], [path, "--plot", svg, "--tensor", "huge", "--tensor", "odd", "--tensor", "empty"]] {
            let t = try CLIFixtures.run("eqinspect", args, in: dir)
            XCTAssertEqual(t.status, 0, "\(args): \(t.stderr)")
        }
        XCTAssertEqual(try XMLElementTree(String(contentsOfFile: svg, encoding: .utf8)).all("path").count, 3)
    }

    // MARK: eqconvert

    func testConvertSucceedsWithoutTouchingTheInput() throws {
        let folder = try CLIFixtures.makeModel(in: dir)
        let input = folder + "/model.safetensors"
        let before = try SHA256Hasher.hex(ofFile: input)
        let listing = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        let out = folder + "/m.eqm"
        let r = try CLIFixtures.run("eqconvert", [folder, out, "--method", "symquant", "--json"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try JSONValue.parse(r.stdout)["tensors_dropped"], ["h.0.attn.bias"])
        XCTAssertEqual(try SHA256Hasher.hex(ofFile: input), before, "the input is read, never written")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), (listing + ["m.eqm"]).sorted(), "no temporary files left")
        XCTAssertEqual(try EQMFile(path: out).quantizationInfo?["method"]?.stringValue, "symquant")

        // Writing over the input is refused, and the input survives.
        let same = try CLIFixtures.run("eqconvert", [input, input], in: dir)
        XCTAssertNotEqual(same.status, 0)
        XCTAssertTrue(same.stderr.contains("is the same file as the input"), same.stderr)
        XCTAssertEqual(try SHA256Hasher.hex(ofFile: input), before)
    }

    func testNaNWeightFailsNamingTheTensorAndLeavesNoFile() throws {
        let folder = try CLIFixtures.makeModel(in: dir, poison: "h.0.mlp.c_fc.weight")
        let input = folder + "/model.safetensors"
        let before = try SHA256Hasher.hex(ofFile: input)
        let listing = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        let out = folder + "/nan.eqm"
        let r = try CLIFixtures.run("eqconvert", [folder, out], in: dir)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("tensor h.0.mlp.c_fc.weight: element 37 is nan"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(), listing, "no output and no temporary file")
        XCTAssertEqual(try SHA256Hasher.hex(ofFile: input), before)

        // Keeping the tensor in float does not let a NaN into the file either.
        let kept = try CLIFixtures.run("eqconvert", [folder, out, "--keep", "h.0.mlp.c_fc.weight"], in: dir)
        XCTAssertEqual(kept.status, 1, kept.stderr)
        XCTAssertTrue(kept.stderr.contains("tensor h.0.mlp.c_fc.weight: element 37 is nan"), kept.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testBadArgumentsAndMissingInputLeaveNoFile() throws {
        let folder = try CLIFixtures.makeModel(in: dir)
        let out = dir + "/x.eqm"
        for args in [[folder, out, "--bits", "9"], [folder, out, "--method", "fancy"], [folder, out, "--granularity", "group:0"]] {
            let r = try CLIFixtures.run("eqconvert", args, in: dir)
            XCTAssertEqual(r.status, 64, "usage errors exit with EX_USAGE: \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("Error: "), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        let missing = try CLIFixtures.run("eqconvert", [dir + "/nothing-here", out], in: dir)
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, missing.stderr)
        XCTAssertTrue(missing.stderr.contains(dir + "/nothing-here: not found"), missing.stderr)
        let intoMissingFolder = try CLIFixtures.run("eqconvert", [folder, dir + "/no/such/dir/x.eqm"], in: dir)
        XCTAssertEqual(intoMissingFolder.status, 1)
        XCTAssertTrue(intoMissingFolder.stderr.contains("does not exist"), intoMissingFolder.stderr)
    }
}

/// Where the header starts, read from the preamble (docs/FORMAT.md §1).
enum EQMFormatHeaderOffset {
    static func of(_ bytes: [UInt8]) -> Int {
        bytes[16..<24].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    }
}

/// Test models and a runner for the built tools.
enum CLIFixtures {
    /// A GPT-2-shaped model folder (n_embd 16, one layer, vocab 40, 8 positions) with a mask
    /// buffer and config.json; `poison` gets a NaN at element 37.
    static func makeModel(in dir: String, poison: String? = nil) throws -> String {
        let folder = dir + "/model"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let e = 16
        let tensors: [(String, [Int])] = [
            ("wte.weight", [40, e]), ("wpe.weight", [8, e]), ("h.0.attn.bias", [1, 1, 8, 8]),
            ("h.0.attn.c_attn.weight", [e, 3 * e]), ("h.0.attn.c_attn.bias", [3 * e]),
            ("h.0.mlp.c_fc.weight", [e, 4 * e]), ("h.0.mlp.c_proj.weight", [4 * e, e]),
            ("ln_f.weight", [e]), ("ln_f.bias", [e]),
        ]
        var rng = SeededGenerator(seed: 5)
        let w = try SafetensorsWriter(path: folder + "/model.safetensors", entries: tensors.map { .init(name: $0.0, dtype: .f32, shape: $0.1) })
        for (name, shape) in tensors {
            var values = (0..<shape.reduce(1, *)).map { _ in Float(rng.nextGaussian() * 0.05) }
            if name == poison { values[37] = .nan }
            try w.write(floats: values)
        }
        try w.finish()
        try #"{"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 8, "vocab_size": 40}"#
            .write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
        return folder
    }

    struct ToolNotFound: Error, CustomStringConvertible { var description: String }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The built binary `name`, found beside the test bundle (SwiftPM puts every product of
    /// the package in one products folder).
    static func tool(_ name: String) throws -> String {
        var folders: [URL] = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(), Bundle.main.bundleURL]
        folders += Bundle.allBundles.map(\.bundleURL)
        var candidates: [String] = []
        for f in folders {
            var d = f
            for _ in 0..<4 {  // the products folder, or up from inside a .xctest bundle
                candidates.append(d.appendingPathComponent(name).path)
                d.deleteLastPathComponent()
            }
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            // swift test builds every product first, so a missing tool is a failure, not a skip.
            throw ToolNotFound(description: "\(name) is not built next to the tests (looked in \(Set(candidates.map { ($0 as NSString).deletingLastPathComponent }).sorted()))")
        }
        return found
    }

    /// Runs a built tool with its output captured in files (no pipe can fill up and block).
    /// A tool still running after `timeout` seconds is killed and the test fails: a hang is
    /// a failure, not a wait.
    static func run(_ name: String, _ arguments: [String], in dir: String, timeout: Double = 300) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try tool(name))
        p.arguments = arguments
        let id = UUID().uuidString
        let outPath = dir + "/.stdout-\(id)", errPath = dir + "/.stderr-\(id)"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: deadline)
        p.waitUntilExit()
        deadline.cancel()
        try out.close(); try err.close()
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        XCTAssertEqual(p.terminationReason, .exit, "\(name) \(arguments) was killed by a signal")
        return Result(status: p.terminationStatus, stdout: try String(contentsOfFile: outPath, encoding: .utf8),
                      stderr: try String(contentsOfFile: errPath, encoding: .utf8))
    }
}
