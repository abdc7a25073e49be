import EasyQuant
import Foundation
import XCTest

/// Calibration, SmoothQuant, ZeroQuant through the converter and the tools, and eqtable.
final class CalibratedMethodTests: XCTestCase {
    static let fixture = TestFiles.fixture("tiny-gpt2")
    static let calib = TestFiles.fixture("calibration/corpus-calib.txt")
    static let text = TestFiles.fixture("wikitext-2-raw/wiki.test.hfjoin.txt")

    var dir: String!
    override func setUpWithError() throws { dir = try TestFiles.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func calibrationRun(samples: Int = 8, length: Int = 128) throws -> CalibrationRun {
        try CalibrationRun(SafetensorsModel(path: Self.fixture), options: CalibrationOptions(file: Self.calib, samples: samples, length: length, seed: 5), threads: 2)
    }

    func logits(_ source: any WeightSource, _ ids: [Int32], mode: ComputeMode = .f32) throws -> [Float] {
        let model = try source.makeModel(quantizeDenseForInt8: mode == .int8)
        let context = ComputeContext(mode: mode, threads: 2)
        let hidden = model.hiddenStates(ids, context: context)
        var out = [Float](repeating: 0, count: ids.count * model.config.vocabSize)
        hidden.withUnsafeBufferPointer { h in out.withUnsafeMutableBufferPointer { model.logits(h.baseAddress!, rows: ids.count, into: $0.baseAddress!, context: context) } }
        return out
    }

    func testCalibrationWindowsAreDeterministicAndChecked() throws {
        let tokens = (0..<1000).map { Int32($0) }
        let a = try CalibrationSet(tokens: tokens, samples: 5, length: 100, seed: 1)
        let b = try CalibrationSet(tokens: tokens, samples: 5, length: 100, seed: 1)
        let c = try CalibrationSet(tokens: tokens, samples: 5, length: 100, seed: 2)
        XCTAssertEqual(a.windows, b.windows)
        XCTAssertNotEqual(a.windows, c.windows)
        XCTAssertEqual(Set(a.windows.map { $0[0] }).count, 5, "non-overlapping slots")
        XCTAssertTrue(a.windows.allSatisfy { $0.count == 100 && $0[0] % 100 == 0 })
        XCTAssertThrowsError(try CalibrationSet(tokens: tokens, samples: 11, length: 100, seed: 1)) {
            XCTAssertTrue("\($0)".contains("1000 tokens is too short for 11 windows of 100 tokens"), "\($0)")
        }
        let tokenizer = try BPETokenizer.load(directory: Self.fixture)
        XCTAssertThrowsError(try CalibrationSet(path: dir + "/none.txt", tokenizer: tokenizer, samples: 1, length: 8, seed: 0)) {
            XCTAssertTrue("\($0)".contains("calibration text not found"), "\($0)")
        }
        // The same run twice gives the same statistics.
        let r1 = try calibrationRun(samples: 4), r2 = try calibrationRun(samples: 4)
        XCTAssertEqual(r1.windows.windows, r2.windows.windows)
        XCTAssertEqual(r1.activations.absMax[2][.mlpInput], r2.activations.absMax[2][.mlpInput])
    }

    /// X·W = (X·diag(s)⁻¹)·(diag(s)·W): smoothing alone must not change the f32 model.
    func testSmoothingLeavesF32LogitsUnchanged() throws {
        let run = try calibrationRun()
        let base = try SafetensorsWeightSource(model: SafetensorsModel(path: Self.fixture))
        let smoothing = try SmoothQuant(source: base, statistics: run.activations, config: run.config, alpha: 0.5)
        XCTAssertTrue(smoothing.scaling.scales.allSatisfy { $0[.attentionInput]!.contains { abs($0 - 1) > 0.05 } }, "the scales do something")
        let ids = Array(run.windows.windows[0].prefix(64))
        let before = try logits(base, ids), after = try logits(PreparedWeightSource(base: base, preparation: smoothing), ids)
        let err = zip(before, after).map { abs($0 - $1) }.max()! / before.map(abs).max()!
        XCTAssertLessThan(err, 1e-4)
    }

    /// SmoothQuant W8A8 on the fixture: within 1% of f32 (measured -0.03% on 20k tokens),
    /// and never worse than W8A8 without smoothing by more than noise.
    func testSmoothQuantW8A8PerplexityBound() throws {
        let source = try SafetensorsModel(path: Self.fixture)
        let run = try calibrationRun(samples: 16, length: 256)
        let options = try CalibratedMethods.smoothQuant(run, alpha: 0.5, base: ConversionOptions(threads: 2))
        let sink = MemorySink()
        _ = try ModelConverter(options: options).convert(source, into: EQMWriter(sink: sink), named: "sq")
        let file = try EQMFile(file: MappedFile(bytes: sink.bytes, name: "sq"))
        XCTAssertEqual(file.quantizationInfo?["compute"]?.stringValue, "int8")
        XCTAssertEqual(file.quantizationInfo?["method"]?.stringValue, "smoothquant")
        XCTAssertNotNil(file.record("eqm.smoothquant.h.3.mlp.c_fc.scales"))
        let weights = try EQMWeightSource(file: file)
        XCTAssertTrue(weights.prefersInt8Compute)

        let tokens = Array(try EvaluationSetup.tokens(ofTextFile: Self.text, tokenizer: BPETokenizer.load(directory: Self.fixture), threads: 2).prefix(8192))
        func ppl(_ s: any WeightSource, _ mode: ComputeMode) throws -> Double {
            let m = try s.makeModel(quantizeDenseForInt8: mode == .int8)
            return try PerplexityEvaluator(model: m, context: ComputeContext(mode: mode, threads: 2), protocolSettings: PerplexityProtocol(contextLength: 256)).evaluate(tokens).perplexity
        }
        let f32 = try ppl(SafetensorsWeightSource(model: source), .f32)
        let smooth = try ppl(weights, .int8)
        let plain = try ppl(QuantizingWeightSource(base: SafetensorsWeightSource(model: source), method: AbsMax()), .int8)
        XCTAssertLessThan(abs(smooth / f32 - 1), 0.01, "smoothquant \(smooth) vs f32 \(f32)")
        XCTAssertLessThan(smooth, plain * 1.002, "smoothing does not hurt: \(smooth) vs \(plain)")
    }

    func testKVCalibrationRecordsOrderedRanges() throws {
        let run = try calibrationRun()
        let kv0 = try run.keys.quantization(bits: 4, outlierPercent: 0, heads: 4)
        let kv5 = try run.keys.quantization(bits: 4, outlierPercent: 5, heads: 4)
        for c in 0..<128 {
            XCTAssertLessThanOrEqual(kv0.keyLow[1][c], kv5.keyLow[1][c])
            XCTAssertGreaterThanOrEqual(kv0.keyHigh[1][c], kv5.keyHigh[1][c])
            XCTAssertLessThan(kv5.keyLow[1][c], kv5.keyHigh[1][c])
        }
        XCTAssertThrowsError(try run.keys.quantization(bits: 4, outlierPercent: 3, heads: 4))
    }

    /// LLM.int8's outlier parts change what layers compute: the file says so in `requires`,
    /// and a reader refuses features it does not know.
    func testOutlierFilesRequireTheFeatureAndUnknownFeaturesAreRefused() throws {
        let run = try calibrationRun()
        let options = try CalibratedMethods.llmInt8(run, threshold: 3, base: ConversionOptions(threads: 2))
        let sink = MemorySink()
        _ = try ModelConverter(options: options).convert(SafetensorsModel(path: Self.fixture), into: EQMWriter(sink: sink), named: "i8")
        let file = try EQMFile(file: MappedFile(bytes: sink.bytes, name: "i8"))
        XCTAssertTrue(file.tensors.contains { $0.name.hasPrefix(OutlierFeatures.prefix) }, "threshold 3 finds outlier features")
        let header = String(decoding: sink.bytes[file.headerRange], as: UTF8.self)
        XCTAssertTrue(header.contains(#""requires":["outliers"]"#), String(header.prefix(200)))

        // The same file claiming a feature nobody implements (a name of the same length, so the preamble still fits).
        var bytes = sink.bytes
        let patched = Array(header.replacingOccurrences(of: #""requires":["outliers"]"#, with: #""requires":["quantums"]"#).utf8)
        bytes.replaceSubrange(file.headerRange, with: patched)
        XCTAssertThrowsError(try EQMFile(file: MappedFile(bytes: bytes, name: "future.eqm"))) {
            XCTAssertEqual(($0 as? EQMError)?.problem, .unsupportedFeature("quantums"))
            XCTAssertTrue("\($0)".contains("needs feature \"quantums\""), "\($0)")
        }
        // Plain methods require nothing.
        let plain = MemorySink()
        _ = try ModelConverter(options: ConversionOptions()).convert(SafetensorsModel(path: Self.fixture), into: EQMWriter(sink: plain), named: "p")
        XCTAssertFalse(String(decoding: plain.bytes.suffix(4096), as: UTF8.self).contains("requires"))
    }

    // MARK: Through the tools

    func testSmoothQuantAndZeroQuantFromTheCommandLine() throws {
        let sq = dir + "/sq.eqm"
        var r = try CLIFixtures.run("eqconvert", [Self.fixture, sq, "--method", "smoothquant", "--calib", Self.calib,
                                                  "--calib-samples", "8", "--calib-len", "128", "--alpha", "0.7", "--json"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        // eqppl runs it in int8 by default, and warns when scoring the calibration text itself.
        r = try CLIFixtures.run("eqppl", [sq, Self.calib, "--max-tokens", "600", "--json"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = try JSONValue.parse(r.stdout)
        XCTAssertEqual(out["compute"]?.stringValue, "int8")
        XCTAssertEqual(out["scored_tokens"]?.intValue, 597, "600 tokens in windows of 256: 255 + 255 + 87")
        XCTAssertTrue(r.stderr.contains("is the text this model was calibrated on"), r.stderr)
        r = try CLIFixtures.run("eqinspect", [sq, "--plot-smoothing", dir + "/s.svg", "--layer", "2"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let svg = try String(contentsOfFile: dir + "/s.svg", encoding: .utf8)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 4, "before/after for c_attn and c_fc")
        XCTAssertTrue(svg.contains("alpha 0.70"))

        // zeroquant without distillation needs no calibration; with it, the report lists every block.
        r = try CLIFixtures.run("eqconvert", [Self.fixture, dir + "/zq0.eqm", "--method", "zeroquant", "--bits", "4", "--lkd-steps", "0"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try CLIFixtures.run("eqconvert", [Self.fixture, dir + "/zq.eqm", "--method", "zeroquant", "--bits", "4", "--calib", Self.calib,
                                              "--calib-samples", "8", "--calib-len", "128", "--lkd-steps", "10", "--json"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try JSONValue.parse(r.stdout)
        let blocks = report["distillation"]?.arrayValue ?? []
        XCTAssertEqual(blocks.count, 4)
        for b in blocks { XCTAssertLessThan(b["mse_after"]!.doubleValue!, b["mse_before"]!.doubleValue!) }
        XCTAssertEqual(try EQMFile(path: dir + "/zq.eqm").record("transformer.h.0.mlp.c_fc.weight")?.quantization?.layout.groupSize, 128)

        r = try CLIFixtures.run("eqconvert", [Self.fixture, dir + "/x.eqm", "--method", "smoothquant"], in: dir)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("needs calibration text: add --calib FILE"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.eqm"))
    }

    func testEqtableComparesRowsAgainstF32() throws {
        let r = try CLIFixtures.run("eqtable", [Self.fixture, Self.text, "--calib", Self.calib, "--study", "kv", "--max-tokens", "1024",
                                                "--calib-samples", "4", "--calib-len", "128", "--json", "--svg", dir + "/kv.svg"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        let rows = try JSONValue.parse(r.stdout)["rows"]!.arrayValue!
        XCTAssertEqual(rows.map { $0["label"]!.stringValue! }, ["f32 baseline", "KV cache 8-bit", "KV cache 8-bit + 1% outliers",
                                                                "KV cache 4-bit", "KV cache 4-bit + 1% outliers", "KV cache 2-bit", "KV cache 2-bit + 1% outliers"])
        XCTAssertEqual(rows[0]["kl_mean"]?.doubleValue, 0)
        XCTAssertEqual(rows[0]["top1_agreement"]?.doubleValue, 1)
        let kl = rows.map { $0["kl_mean"]!.doubleValue! }
        XCTAssertLessThan(kl[1], kl[3], "8-bit keys and values disturb less than 4-bit")
        XCTAssertLessThan(kl[3], kl[5], "4-bit less than 2-bit")
        XCTAssertLessThan(rows[5]["kv_bytes_per_token"]!.doubleValue!, rows[1]["kv_bytes_per_token"]!.doubleValue!)
        let svg = try String(contentsOfFile: dir + "/kv.svg", encoding: .utf8)
        XCTAssertEqual(svg.components(separatedBy: "<rect").count - 2, rows.count, "one bar per row (and the background)")

        let needs = try CLIFixtures.run("eqtable", [Self.fixture, Self.text, "--study", "smoothquant", "--max-tokens", "600"], in: dir)
        XCTAssertNotEqual(needs.status, 0)
        XCTAssertTrue(needs.stderr.contains("needs calibration text"), needs.stderr)
    }
}
