import EasyQuant
import Foundation
import XCTest

/// The tools against hostile models and careless commands (docs/RELIABILITY.md): each case
/// must end with exit status 1 and one line naming the file, tensor, key or option and what
/// to do, never a signal, a hang, a `nan` with status 0, a modified input or a leftover output.
final class HostileCommandTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try TestFiles.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    static let fixture = TestFiles.fixture("tiny-gpt2")
    static let text = TestFiles.fixture("wikitext-2-raw/wiki.test.raw")
    static let calib = TestFiles.fixture("calibration/corpus-calib.txt")

    /// A copy of the tiny GPT-2 fixture in its own folder, with config.json values replaced.
    func model(_ name: String = "model", config changes: [String: JSONValue] = [:]) throws -> String {
        let folder = dir + "/" + name
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: Self.fixture) where !file.hasSuffix(".md") && !file.hasSuffix(".log") {
            try FileManager.default.copyItem(atPath: Self.fixture + "/" + file, toPath: folder + "/" + file)
        }
        if !changes.isEmpty {
            let path = folder + "/config.json"
            var members = try JSONValue.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: path)))).objectMembers!
            for (k, v) in changes {
                if let i = members.firstIndex(where: { $0.key == k }) { members[i].value = v } else { members.append((k, v)) }
            }
            try JSONValue.object(members).prettyPrinted().write(toFile: path, atomically: true, encoding: .utf8)
        }
        return folder
    }

    /// Asserts a clean failure: status 1 (64, EX_USAGE, for a bad option, which also prints
    /// the usage line), one error line on stderr containing every `mention`, nothing on stdout.
    func assertRefused(_ tool: String, _ args: [String], mentions: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try CLIFixtures.run(tool, args, in: dir, timeout: 120)
        XCTAssertTrue(r.status == 1 || r.status == 64, "\(tool) \(args): status \(r.status): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stdout.isEmpty, "\(tool) \(args) printed: \(r.stdout)", file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").filter { !$0.hasPrefix("Usage") && !$0.hasPrefix("  See") && !$0.isEmpty }.count, 1,
                       "one line: \(r.stderr)", file: file, line: line)
        for m in mentions { XCTAssertTrue(r.stderr.contains(m), "\(tool) \(args) should mention \(m): \(r.stderr)", file: file, line: line) }
    }

    func sha(_ path: String) throws -> String { try SHA256Hasher.hex(ofFile: path) }

    // MARK: Config and shapes

    func testConfigValuesAreCheckedBeforeAnythingIsSizedFromThem() throws {
        for (changes, mention) in [(["n_positions": JSONValue(0)], "n_positions is 0"), (["n_positions": JSONValue(1)], "n_positions is 1"),
                                   (["n_head": JSONValue(3)], "not a multiple of n_head"), (["n_layer": JSONValue(1 << 40)], "n_layer is"),
                                   (["layer_norm_epsilon": JSONValue(-1.0)], "layer_norm_epsilon")] {
            let folder = try model(config: changes)
            try assertRefused("eqppl", [folder, Self.text, "--max-tokens", "100"], mentions: [mention])
            try assertRefused("eqgen", [folder, "--prompt", "The", "--generate", "3"], mentions: [mention])
            try assertRefused("eqconvert", [folder, dir + "/awq.eqm", "--method", "awq", "--calib", Self.calib, "--calib-samples", "2"], mentions: [mention])
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/awq.eqm"))
            try FileManager.default.removeItem(atPath: folder)
        }
    }

    /// GPT-2's tokenizer on the fixture's 2048-token model: ids beyond the embedding.
    func testTokenIDsBeyondTheEmbeddingAreRefused() throws {
        let folder = try model()
        let tokenizer = TestFiles.fixture("gpt2-tokenizer")
        try assertRefused("eqgen", [folder, "--prompt", "Photosynthesis in chloroplasts", "--tokenizer", tokenizer], mentions: ["outside the vocabulary of 2048"])
        try assertRefused("eqppl", [folder, Self.text, "--max-tokens", "200", "--tokenizer", tokenizer], mentions: ["outside the vocabulary of 2048"])
    }

    /// One float tensor replaced in a copy of the fixture's weights.
    func rewriteWeights(_ folder: String, _ change: (String, inout [Float], inout DType, inout String) -> Void, extra: [(String, [Int], DType)] = []) throws {
        let path = folder + "/model.safetensors"
        let source = try SafetensorsFile(path: path)
        var entries: [SafetensorsWriter.Entry] = [], payloads: [[UInt8]] = []
        for info in source.tensors {
            var values = source.floats(of: info), dtype = info.dtype, name = info.name
            change(info.name, &values, &dtype, &name)
            entries.append(.init(name: name, dtype: dtype, shape: info.shape))
            payloads.append(Self.bytes(values, dtype))
        }
        for (name, shape, dtype) in extra {
            entries.append(.init(name: name, dtype: dtype, shape: shape))
            payloads.append(Self.bytes([Float](repeating: 0.5, count: shape.reduce(1, *)), dtype))
        }
        let tmp = dir + "/rewritten.safetensors"
        let w = try SafetensorsWriter(path: tmp, entries: entries)
        for p in payloads { try p.withUnsafeBytes { try w.write($0) } }
        try w.finish()
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.moveItem(atPath: tmp, toPath: path)
    }

    static func bytes(_ values: [Float], _ dtype: DType) -> [UInt8] {
        switch dtype {
        case .i32: return values.flatMap { withUnsafeBytes(of: Int32($0).littleEndian, Array.init) }
        default: return values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        }
    }

    func testNonFiniteNormsDuplicateNamesAndIntegerWeightsAreRefused() throws {
        // NaN in a 1-D tensor: refused by the converter and by the model.
        var folder = try model("nan")
        try rewriteWeights(folder) { name, values, _, _ in if name.hasSuffix("ln_f.bias") { values[3] = .nan } }
        try assertRefused("eqconvert", [folder, dir + "/nan.eqm"], mentions: ["ln_f.bias", "element 3 is nan"])
        try assertRefused("eqppl", [folder, Self.text, "--max-tokens", "100"], mentions: ["ln_f.bias", "element 3"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/nan.eqm"))

        // ln_f.bias beside transformer.ln_f.bias: one would silently win.
        folder = try model("duplicate")
        try rewriteWeights(folder, { _, _, _, _ in }, extra: [("ln_f.bias", [128], .f32)])
        try assertRefused("eqppl", [folder, Self.text, "--max-tokens", "100"], mentions: ["ln_f.bias", "same tensor"])

        // An integer token embedding is not a model weight.
        folder = try model("integer")
        try rewriteWeights(folder) { name, values, dtype, _ in
            if name.hasSuffix("wte.weight") { dtype = .i32; values = values.map { ($0 * 100).rounded() } }
        }
        try assertRefused("eqconvert", [folder, dir + "/int.eqm"], mentions: ["wte.weight", "I32", "float type"])
        try assertRefused("eqppl", [folder, Self.text, "--max-tokens", "100"], mentions: ["wte.weight", "I32"])
    }

    /// An empty tensor with absurd dimensions: quick, and no block count overflows.
    /// Values beyond the f16 range (a bias of 10⁶ on layer 0's values) would turn into
    /// infinities in eqgen's default f16 KV cache: eqgen stops with one line that names the
    /// way out, and an f32 cache runs the same model.
    func testValuesBeyondTheHalfCacheAreRefusedWithTheWayOut() throws {
        let folder = try model()
        try rewriteWeights(folder) { name, values, _, _ in
            if name == "transformer.h.0.attn.c_attn.bias" {
                for i in (2 * values.count / 3)..<values.count { values[i] = 1e6 }
            }
        }
        try assertRefused("eqgen", [folder, "--prompt", "The", "--generate", "3", "--json"], mentions: ["beyond the f16 KV cache", "--kv-storage f32"])
        let r = try CLIFixtures.run("eqgen", [folder, "--prompt", "The", "--generate", "3", "--json", "--kv-storage", "f32"], in: dir, timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func testEmptyTensorsWithHugeDimensionsDoNotHangTheConverter() throws {
        let folder = try model("empty")
        try rewriteWeights(folder, { _, _, _, _ in }, extra: [("junk.big", [1 << 40, 0], .f32), ("junk.max", [Int(Int64.max), 0], .f32)])
        let r = try CLIFixtures.run("eqconvert", [folder, dir + "/empty.eqm"], in: dir, timeout: 120)
        XCTAssertTrue(r.status == 0 || r.stderr.split(separator: "\n").count == 1, r.stderr)
    }

    /// A file whose extra tensors lie: an outlier feature outside its matrix, key ranges of the
    /// wrong width. Made through the converter with a preparation that adds them.
    struct LyingExtras: ModelPreparation {
        var extraTensors: [ExtraTensor]
        func changes(_ name: String) -> Bool { false }
        func transform(_ name: String, _ values: [Float]) -> [Float] { values }
        var parameters: [(String, JSONValue)] { [] }
    }

    func eqm(_ name: String, extras: [ExtraTensor]) throws -> String {
        var options = ConversionOptions(threads: 2)
        options.preparation = LyingExtras(extraTensors: extras)
        let out = dir + "/" + name
        _ = try ModelConverter(options: options).convert(SafetensorsModel(path: Self.fixture), to: out)
        return out
    }

    func testOutlierAndKeyRangeTensorsAreChecked() throws {
        let outliers = try eqm("outliers.eqm", extras: [
            ExtraTensor(name: "eqm.outliers.h.0.attn.c_attn.index", shape: [1], values: [9999]),
            ExtraTensor(name: "eqm.outliers.h.0.attn.c_attn.weight", shape: [1, 384], values: [Float](repeating: 1, count: 384)),
        ])
        try assertRefused("eqconvert", [outliers, dir + "/back.safetensors"], mentions: ["outlier feature 9999", "h.0.attn.c_attn"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/back.safetensors"))
        try assertRefused("eqppl", [outliers, Self.text, "--max-tokens", "100"], mentions: ["outlier feature 9999"])

        let ranges = try eqm("ranges.eqm", extras: (0..<4).flatMap { l -> [ExtraTensor] in
            let names = KVQuantization.keyRangeNames(layer: l)
            return [ExtraTensor(name: names.low, shape: [6, 7], values: [Float](repeating: -1, count: 42)),
                    ExtraTensor(name: names.high, shape: [6, 7], values: [Float](repeating: 1, count: 42))]
        })
        try assertRefused("eqppl", [ranges, Self.text, "--max-tokens", "100", "--kv-bits", "4"], mentions: ["key_low", "[6, 7]", "[6, 128]"])

        // The right shape but an inverted range in one channel.
        let inverted = try eqm("inverted.eqm", extras: (0..<4).flatMap { l -> [ExtraTensor] in
            let names = KVQuantization.keyRangeNames(layer: l)
            var low = [Float](repeating: -1, count: 6 * 128)
            low[5] = 2
            return [ExtraTensor(name: names.low, shape: [6, 128], values: low),
                    ExtraTensor(name: names.high, shape: [6, 128], values: [Float](repeating: 1, count: 6 * 128))]
        })
        try assertRefused("eqppl", [inverted, Self.text, "--max-tokens", "100", "--kv-bits", "4"], mentions: ["key_low", "channel 5 has the range [2.0, 1.0]"])
    }

    // MARK: Options

    func testNumericOptionsAreCheckedWithTheirLimits() throws {
        let m = Self.fixture, t = Self.text
        try assertRefused("eqtable", [m, t, "--ctx", "0"], mentions: ["--ctx must be at least 2"])
        try assertRefused("eqtable", [m, t, "--stride", "0"], mentions: ["--stride must be at least 1"])
        try assertRefused("eqtable", [m, t, "--ctx", "-5"], mentions: ["--ctx must be at least 2", "not -5"])
        try assertRefused("eqppl", [m, t, "--ctx", "4096"], mentions: ["--ctx 4096 exceeds the 256 positions"])
        try assertRefused("eqgen", [m, "--prompt", "The", "--threads", "0"], mentions: ["--threads must be between 1 and 1024"])
        try assertRefused("eqconvert", [m, dir + "/g.eqm", "--granularity", "group:9223372036854775807"], mentions: ["--granularity must be"])
        try assertRefused("eqconvert", [m, dir + "/g.eqm", "--granularity", "group:4096"], mentions: ["group:4096 is larger than its"])
        try assertRefused("eqconvert", [m, dir + "/g.eqm", "--method", "smoothquant", "--calib", Self.calib, "--calib-len", "1"], mentions: ["--calib-len must be at least 2"])
        try assertRefused("eqconvert", [m, dir + "/g.eqm", "--method", "smoothquant", "--calib", Self.calib, "--calib-len", "999"], mentions: ["--calib-len 999 exceeds the 256 positions"])
        try assertRefused("eqppl", [m, t, "--kv-bits", "4", "--kv-outliers", "3"], mentions: ["--kv-outliers must be one of"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/g.eqm"))
    }

    // MARK: Inputs are never outputs

    func testNoOutputOptionMayReplaceAnInput() throws {
        let folder = try model()
        let weights = folder + "/model.safetensors"
        let textCopy = dir + "/text.txt"
        try FileManager.default.copyItem(atPath: Self.text, toPath: textCopy)
        let eqm = dir + "/a.eqm"
        XCTAssertEqual(try CLIFixtures.run("eqconvert", [folder, eqm], in: dir).status, 0)
        let link = dir + "/link.safetensors"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: weights)
        let before = try [weights, textCopy, eqm, folder + "/config.json", folder + "/vocab.json"].map(sha)

        try assertRefused("eqconvert", [folder, weights], mentions: ["same file as the input"])
        try assertRefused("eqconvert", [folder, link], mentions: ["same file as the input"])
        try assertRefused("eqconvert", [folder, folder + "/config.json"], mentions: ["same file as the input"])
        try assertRefused("eqppl", [eqm, textCopy, "--max-tokens", "100", "--dump-logits", eqm], mentions: ["same file as the input"])
        try assertRefused("eqppl", [eqm, textCopy, "--max-tokens", "100", "--dump-logits", textCopy], mentions: ["same file as the input"])
        try assertRefused("eqinspect", [eqm, "--plot", weights, "--compare", folder], mentions: ["same file as the input"])
        try assertRefused("eqinspect", [folder, "--plot", folder + "/vocab.json"], mentions: ["same file as the input"])
        try assertRefused("eqtable", [folder, textCopy, "--svg", textCopy, "--max-tokens", "100"], mentions: ["same file as the input"])
        XCTAssertEqual(try [weights, textCopy, eqm, folder + "/config.json", folder + "/vocab.json"].map(sha), before, "every input intact")
    }

    /// A failed export into a folder leaves no file behind; a successful one fills a new folder.
    func testFolderExportsAreAllOrNothing() throws {
        let good = dir + "/good.eqm"
        XCTAssertEqual(try CLIFixtures.run("eqconvert", [Self.fixture, good], in: dir).status, 0)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        let record = try EQMFile(path: good).tensors.last { $0.quantization != nil }!
        bytes[record.data.offset + record.data.length / 2] ^= 0xFF
        let bad = dir + "/bad.eqm"
        try Data(bytes).write(to: URL(fileURLWithPath: bad))

        let out = dir + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
        try assertRefused("eqconvert", [bad, out], mentions: [bad, "corrupt"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out), [], "nothing written into the folder")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp") }, [], "no temporary folder left")

        let fresh = dir + "/fresh/"
        let r = try CLIFixtures.run("eqconvert", [good, fresh], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: fresh)), ["model.safetensors", "config.json", "vocab.json", "merges.txt"])
        try assertRefused("eqconvert", [good, fresh], mentions: ["not empty"])
    }

    // MARK: Blocking inputs

    func testFIFOsAreRefusedWithoutBlocking() throws {
        let fifo = dir + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        try assertRefused("eqppl", [fifo, Self.text], mentions: ["FIFO"])
        try assertRefused("eqppl", [Self.fixture, fifo], mentions: ["FIFO"])
        try assertRefused("eqinspect", [fifo], mentions: ["FIFO"])
        try assertRefused("eqconvert", [fifo, dir + "/x.eqm"], mentions: ["FIFO"])
        try assertRefused("eqconvert", [Self.fixture, dir + "/x.eqm", "--method", "smoothquant", "--calib", fifo], mentions: ["FIFO"])
        try assertRefused("eqgen", [fifo, "--prompt", "The"], mentions: ["FIFO"])
        try assertRefused("eqtable", [Self.fixture, fifo], mentions: ["FIFO"])
        try assertRefused("eqppl", [Self.text, Self.text], mentions: [])
    }

    // MARK: Bounded work

    /// 16 MB of spaces scored with --max-tokens 300: tokenizing stops early.
    func testHugeTextWithMaxTokensStopsEarly() throws {
        let path = dir + "/spaces.txt"
        try Data(repeating: UInt8(ascii: " "), count: 16 << 20).write(to: URL(fileURLWithPath: path))
        let r = try CLIFixtures.run("eqppl", [Self.fixture, path, "--max-tokens", "300", "--json"], in: dir, timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try JSONValue.parse(r.stdout)["evaluated_tokens"]?.intValue, 300)
    }
}
