import EasyQuant
import Foundation
import XCTest

/// `.eqm → GGUF` export (GGUFExporter) and back (`--method keep-codes`), on the tiny GPT-2
/// and tiny Llama fixtures, in memory: llama.cpp's names and metadata, codes carried exactly
/// (transposed or rotary-permuted in code space), the GGUF model computing what the .eqm
/// computes, the embedded tokenizer giving the same ids, and the refusals.
final class GGUFExportTests: XCTestCase {
    static let gpt2 = TestFiles.fixture("tiny-gpt2")
    static let llama = TestFiles.fixture("tiny-llama")

    /// `model` quantized into an in-memory .eqm.
    static func eqm(_ model: String, method: String = "absmax", bits: Int = 8, granularity: Granularity = .channel,
                    keep: [String] = []) throws -> EQMFile {
        let sink = MemorySink()
        let options = ConversionOptions(method: method, bits: bits, granularity: granularity, keep: keep, threads: 2)
        _ = try ModelConverter(options: options).convert(openConversionSource(path: model), into: EQMWriter(sink: sink), named: "model.eqm")
        return try EQMFile(file: MappedFile(bytes: sink.bytes, name: "model.eqm"))
    }

    /// `eqm` exported into an in-memory GGUF file, opened by the reader.
    static func export(_ eqm: EQMFile, request: GGUFTypeRequest = .auto) throws -> (GGUFFile, GGUFExportReport) {
        let sink = MemorySink()
        let report = try GGUFExporter(options: GGUFExportOptions(request: request, threads: 2)).export(eqm, into: sink, named: "model.gguf")
        XCTAssertEqual(report.ggufBytes, sink.bytes.count)
        return (try GGUFFile(file: MappedFile(bytes: sink.bytes, name: "model.gguf")), report)
    }

    /// Logits of every position of `tokens`, [T, vocab].
    static func logits(_ source: any WeightSource, _ tokens: [Int32]) throws -> [Float] {
        let model = try source.makeModel()
        let context = ComputeContext(mode: .f32, threads: 2)
        let hidden = model.hiddenStates(tokens, context: context)
        var out = [Float](repeating: 0, count: tokens.count * model.config.vocabSize)
        hidden.withUnsafeBufferPointer { h in
            out.withUnsafeMutableBufferPointer { model.logits(h.baseAddress!, rows: tokens.count, into: $0.baseAddress!, context: context) }
        }
        return out
    }

    static let sampleText = "The history of the city began in 1871, when its first mayor wrote: \"It's here.\"\n\nSection 2"

    // MARK: Names, metadata, codes

    func testTinyGPT2ExportHasLlamaCppNamesMetadataAndTheExactCodes() throws {
        let eqm = try Self.eqm(Self.gpt2)
        let (f, report) = try Self.export(eqm)
        var want: Set<String> = ["token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias"]
        for l in 0..<4 {
            for t in ["attn_norm", "attn_qkv", "attn_output", "ffn_norm", "ffn_up", "ffn_down"] {
                want.insert("blk.\(l).\(t).weight"); want.insert("blk.\(l).\(t).bias")
            }
        }
        XCTAssertEqual(Set(f.tensors.map(\.name)), want, "llama.cpp's gpt2 tensors, biases on every linear and norm; output tied")
        func value(_ key: String) -> GGUFValue? { f.value(key) }
        XCTAssertEqual(value("general.architecture"), .string("gpt2"))
        XCTAssertEqual(value("gpt2.context_length"), .uint32(256))
        XCTAssertEqual(value("gpt2.embedding_length"), .uint32(128))
        XCTAssertEqual(value("gpt2.feed_forward_length"), .uint32(512))
        XCTAssertEqual(value("gpt2.block_count"), .uint32(4))
        XCTAssertEqual(value("gpt2.attention.head_count"), .uint32(4))
        XCTAssertEqual(value("gpt2.attention.layer_norm_epsilon"), .float32(1e-5))
        XCTAssertEqual(value("general.file_type"), .uint32(7), "MOSTLY_Q8_0")
        XCTAssertEqual(value("tokenizer.ggml.model"), .string("gpt2"))
        XCTAssertEqual(value("tokenizer.ggml.pre"), .string("gpt-2"), "llama.cpp's name for GPT-2's rules")
        XCTAssertEqual(value("tokenizer.ggml.bos_token_id"), .uint32(2047))
        XCTAssertEqual(value("tokenizer.ggml.eos_token_id"), .uint32(2047))
        XCTAssertEqual(value("tokenizer.ggml.add_bos_token"), .bool(false))
        XCTAssertEqual(value("tokenizer.ggml.tokens")?.stringArray?.count, 2048)
        XCTAssertEqual(value("tokenizer.ggml.token_type")?.intArray?.filter { $0 == 3 }.count, 1, "<|endoftext|> is the one control token")
        let mergeLines = try String(contentsOfFile: Self.gpt2 + "/merges.txt", encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        XCTAssertEqual(value("tokenizer.ggml.merges")?.stringArray, mergeLines.map(String.init))

        // Every matrix Q8_0 by the exact route, stored [out, in]; vectors F32.
        XCTAssertEqual(report.routeCounts, [.exact: 18, .fromFloats: 34])
        XCTAssertEqual(f.tensor("blk.0.attn_qkv.weight")?.shape, [384, 128], "c_attn [128, 384] transposed to [out, in]")
        XCTAssertEqual(f.tensor("blk.0.ffn_down.weight")?.shape, [128, 512])
        for t in f.tensors { XCTAssertEqual(t.type, t.shape.count == 2 ? .Q8_0 : .F32, t.name) }

        // The codes are the .eqm's, moved: GGUF → codes → canonical layout gives every code
        // back, and each block's d is the f16 of the channel's step.
        let table = try XCTUnwrap(GPT2Family().ggufNames)
        for t in f.tensors where t.type == .Q8_0 {
            let canonical = try XCTUnwrap(table.canonical(gguf: t.name))
            let record = try XCTUnwrap(eqm.record(canonical) ?? eqm.record("transformer." + canonical))
            let original = try eqm.quantizedTensor(record)
            var back = try f.quantizedTensor(t)
            if GPT2Family().outputAxis(of: canonical) == 1 { back = back.transposed() }
            XCTAssertEqual(back.shape, original.shape, t.name)
            XCTAssertEqual(back.codes, original.codes, "\(t.name): codes carried exactly")
            for r in 0..<back.shape[0] {
                for c in stride(from: 0, to: back.shape[1], by: 7) {
                    let s = original.scales[(r / original.layout.rows) * original.layout.scaleShape[1] + c / original.layout.columns]
                    let d = back.scales[(r / back.layout.rows) * back.layout.scaleShape[1] + c / back.layout.columns]
                    XCTAssertEqual(d, Float(Float16(s)), "\(t.name) [\(r), \(c)]")
                }
            }
        }

        // The reported error of each tensor is the file's, and bounded by the f16 rounding
        // of the steps: |code| · |f16(s) − s| ≤ |x| · 2⁻¹¹ for normal steps.
        let comparison = try GGUFComparison(gguf: f, eqm: eqm, threads: 2)
        XCTAssertTrue(comparison.missingInGGUF.isEmpty && comparison.extraInGGUF.isEmpty)
        let reported = Dictionary(uniqueKeysWithValues: report.tensors.map { ($0.sourceName, $0) })
        for row in comparison.rows {
            let t = try XCTUnwrap(reported[row.name])
            XCTAssertEqual(row.maxAbsError, t.maxAbsError, "\(row.name): reported error is the file's")
            if t.route == .fromFloats { XCTAssertEqual(row.maxAbsError, 0, row.name) }
            let largest = Double(try eqm.floats(eqm.requireRecord(row.name)).map { abs($0) }.max() ?? 0)
            XCTAssertLessThanOrEqual(row.maxAbsError, largest * 0x1p-11 * 1.0001, row.name)
        }
        XCTAssertGreaterThan(report.maxAbsError, 0, "the f16 steps add an error that is small but not zero")
    }

    func testFourBitCodesMapToQ4TypesAndTheRequestDecidesTheRest() throws {
        // simquant 4-bit group:32 → Q4_1 exactly; group:16 has no exact form.
        let q41 = try Self.export(Self.eqm(Self.gpt2, method: "simquant", bits: 4, granularity: .group(32))).1
        XCTAssertEqual(Set(q41.tensors.filter(\.wasQuantized).map(\.type)), [.Q4_1])
        XCTAssertTrue(q41.tensors.filter(\.wasQuantized).allSatisfy { $0.route == .exact })
        XCTAssertEqual(q41.fileType, .mostlyQ4_1)

        let g16 = try Self.eqm(Self.gpt2, method: "absmax", bits: 4, granularity: .group(16))
        let auto = try Self.export(g16).1
        XCTAssertTrue(auto.tensors.filter(\.wasQuantized).allSatisfy { $0.route == .requantized && $0.type == .Q4_0 })
        XCTAssertTrue(auto.tensors.first { $0.wasQuantized }!.summary.contains("split runs of 32"), auto.tensors[0].summary)
        let f16 = try Self.export(g16, request: .f16).1
        XCTAssertTrue(f16.tensors.filter(\.wasQuantized).allSatisfy { $0.route == .dequantized && $0.type == .F16 })
        let f32 = try Self.export(g16, request: .f32)
        XCTAssertTrue(f32.1.tensors.allSatisfy { $0.maxAbsError == 0 }, "F32 adds no error")
        XCTAssertLessThan(f16.maxAbsError, auto.maxAbsError, "F16 is closer to the .eqm than requantizing to Q4_0")
        // Requantizing from the .eqm's values is worse than the exact mapping would be.
        XCTAssertGreaterThan(auto.maxAbsError, q41.maxAbsError)
    }

    // MARK: The model the GGUF file computes

    /// `eqm` with every step rounded to f16, as the exact GGUF mappings store it (tokenizer left out).
    static func withF16Steps(_ eqm: EQMFile) throws -> EQMFile {
        let sink = MemorySink()
        let writer = try EQMWriter(sink: sink)
        for record in eqm.tensors {
            if record.quantization != nil {
                var q = try eqm.quantizedTensor(record)
                q.scales = q.scales.map { Float(Float16($0)) }
                _ = try writer.append(PendingTensor(name: record.name, quantized: q, sourceDType: .f32, level: 1))
            } else {
                _ = try writer.append(PendingTensor(name: record.name, floats: eqm.floats(record), shape: record.shape, sourceDType: .f32, level: 1))
            }
        }
        let metadata = JSONValue.makeObject((eqm.metadata.objectMembers ?? []).filter { $0.key == "model" || $0.key == "quantization" })
        _ = try writer.finish(metadata: metadata)
        return try EQMFile(file: MappedFile(bytes: sink.bytes, name: "f16-steps.eqm"))
    }

    func testGGUFModelsComputeWhatTheEQMComputes() throws {
        let tokens: [Int32] = (0..<48).map { Int32(($0 * 37 + 5) % 2000) }
        for (model, method, bits, granularity) in [
            (Self.gpt2, "absmax", 8, Granularity.channel), (Self.gpt2, "absmax", 4, .group(32)),
            (Self.llama, "absmax", 4, .group(32)), (Self.llama, "symquant", 8, .channel),
        ] {
            let eqm = try Self.eqm(model, method: method, bits: bits, granularity: granularity)
            let (f, report) = try Self.export(eqm)
            XCTAssertTrue(report.tensors.filter(\.wasQuantized).allSatisfy { $0.route == .exact })
            let theirs = try Self.logits(GGUFWeightSource(file: f, threads: 2), tokens)
            // The GGUF model is the .eqm's model with its steps in f16, exactly: only the
            // order of float operations differs (dense products against dequantizing ones).
            let rounded = try Self.logits(EQMWeightSource(file: Self.withF16Steps(eqm)), tokens)
            let same = zip(rounded, theirs).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(same, 2e-5, "\(model) \(method) \(bits)-bit: GGUF model = .eqm model with f16 steps")
            // Against the .eqm itself, the logits move by what the f16 steps (relative error
            // ≤ 2⁻¹¹ per weight) do to them: small, not zero.
            let ours = try Self.logits(EQMWeightSource(file: eqm), tokens)
            let moved = zip(ours, theirs).map { abs($0 - $1) }.max()!, scale = ours.map { abs($0) }.max()!
            XCTAssertGreaterThan(moved, 100 * same, "\(model) \(method)")
            XCTAssertLessThan(moved, scale * 0x1p-11 * 4, "\(model) \(method) \(bits)-bit: logits within the f16 steps' relative error")
        }
        // Kept in float and written as F32, the GGUF model is the .eqm's model exactly: the
        // layouts (GPT-2's transpose, Llama's rotary rows) are undone without a trace.
        for model in [Self.gpt2, Self.llama] {
            let eqm = try Self.eqm(model, keep: ["*"])
            let (f, report) = try Self.export(eqm)
            XCTAssertEqual(report.fileType, .allF32)
            XCTAssertEqual(try Self.logits(GGUFWeightSource(file: f, threads: 2), tokens), try Self.logits(EQMWeightSource(file: eqm), tokens), model)
        }
    }

    func testTinyLlamaExportPermutesRotaryRowsInCodeSpace() throws {
        let eqm = try Self.eqm(Self.llama, method: "absmax", bits: 4, granularity: .group(32))
        let (f, report) = try Self.export(eqm)
        XCTAssertEqual(f.value("general.architecture"), .string("llama"))
        XCTAssertEqual(f.value("llama.attention.head_count"), .uint32(4))
        XCTAssertEqual(f.value("llama.attention.head_count_kv"), .uint32(2))
        XCTAssertEqual(f.value("llama.rope.dimension_count"), .uint32(16))
        XCTAssertEqual(f.value("llama.feed_forward_length"), .uint32(160))
        XCTAssertEqual(f.value("llama.rope.freq_base"), .float32(10_000))
        XCTAssertEqual(f.value("llama.attention.layer_norm_rms_epsilon"), .float32(1e-5))
        XCTAssertTrue(report.tensors.filter(\.wasQuantized).allSatisfy { $0.route == .exact && $0.type == .Q4_0 })
        // attn_q's GGUF row h·16 + 2i + j is canonical row h·16 + 8j + i, codes and steps alike.
        let original = try eqm.quantizedTensor(eqm.requireRecord("model.layers.1.self_attn.q_proj.weight"))
        let stored = try f.quantizedTensor(XCTUnwrap(f.tensor("blk.1.attn_q.weight")))
        let cols = original.shape[1]
        for h in 0..<4 {
            for i in 0..<8 {
                for j in 0..<2 {
                    let g = h * 16 + 2 * i + j, c = h * 16 + 8 * j + i
                    for k in 0..<cols { XCTAssertEqual(stored.code(at: g * cols + k), original.code(at: c * cols + k)) }
                    XCTAssertEqual(stored.scales[g * cols / 32], Float(Float16(original.scales[c * cols / 32])))
                }
            }
        }
    }

    // MARK: Tokenizer

    func testTokenizerReadBackFromTheMetadataGivesTheSameIds() throws {
        for model in [Self.gpt2, Self.llama, TestFiles.fixture("tiny-qwen2")] {
            let eqm = try Self.eqm(model)
            let (f, _) = try Self.export(eqm)
            let ours = try EvaluationSetup.tokenizer(for: EQMWeightSource(file: eqm), override: nil)
            let back = try BPETokenizer(description: TokenizerDescription(gguf: f))
            XCTAssertEqual(back.preTokenizer, ours.preTokenizer, model)
            XCTAssertEqual(back.addsBOS, ours.addsBOS, model)
            XCTAssertEqual(back.bosID, ours.bosID, model)
            let text = try String(contentsOfFile: TestFiles.fixture("wikitext-2-raw/wiki.test.raw"), encoding: .utf8).prefix(20_000)
            for sample in [Self.sampleText, String(text)] {
                XCTAssertEqual(try back.encode(sample), try ours.encode(sample), model)
            }
        }
    }

    // MARK: Round trip

    func testRoundTripThroughGGUFKeepsTheCodes() throws {
        for (model, method, bits, granularity) in [
            (Self.gpt2, "absmax", 8, Granularity.channel), (Self.gpt2, "simquant", 4, .group(32)), (Self.gpt2, "symquant", 4, .group(64)),
            (Self.llama, "absmax", 4, .group(32)), (Self.llama, "zeropoint", 4, .group(32)), (Self.llama, "symquant", 8, .channel),
        ] {
            let eqm = try Self.eqm(model, method: method, bits: bits, granularity: granularity)
            let sink = MemorySink()
            _ = try GGUFExporter(options: GGUFExportOptions(threads: 2)).export(eqm, into: sink, named: "model.gguf")
            let path = try TestFiles.temporaryDirectory() + "/model.gguf"
            try writeAtomically(sink.bytes, to: path)
            var options = ConversionOptions(threads: 2)
            options.keepSourceCodes = true
            options.recordedMethod = "gguf-codes"
            let backSink = MemorySink()
            let report = try ModelConverter(options: options).convert(openConversionSource(path: path), into: EQMWriter(sink: backSink), named: "back.eqm")
            try FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
            let back = try EQMFile(file: MappedFile(bytes: backSink.bytes, name: "back.eqm"))
            XCTAssertEqual(report.quantized, eqm.tensors.filter { $0.quantization != nil }.count, "\(model) \(method)")
            let family: any ModelFamily = model == Self.gpt2 ? GPT2Family() : LlamaFamily()
            for record in eqm.tensors where record.quantization != nil {
                let name = try XCTUnwrap(family.canonicalName(record.name))
                let original = try eqm.quantizedTensor(record), kept = try back.quantizedTensor(back.requireRecord(name))
                XCTAssertEqual(kept.shape, original.shape, name)
                let n = original.elementCount
                // zeropoint's signed codes come back as the unsigned code + 8 (docs/GGUF.md).
                let offset: Int32 = method == "zeropoint" ? 8 : 0
                XCTAssertTrue((0..<n).allSatisfy { kept.code(at: $0) == original.code(at: $0) + offset }, "\(name) \(method): every code kept")
                let a = original.dequantized(), b = kept.dequantized()
                let worst = zip(a, b).map { abs(Double($0) - Double($1)) }.max()!
                XCTAssertLessThanOrEqual(worst, Double(a.map { abs($0) }.max()!) * 0x1p-10, name)
            }
        }
    }

    // MARK: Code-space moves

    func testTransposeAndRowOrderMoveEveryValueExactly() throws {
        var rng = SeededGenerator(seed: 11)
        for (bits, granularity, axis, shape) in [(4, Granularity.group(3), 1, [7, 5]), (8, .channel, 0, [6, 9]), (3, .tensor, 0, [5, 5]),
                                                 (4, .group(32), 0, [8, 64]), (6, .group(2), 1, [6, 3])] {
            let values = (0..<(shape[0] * shape[1])).map { _ in Float.random(in: -1...1, using: &rng) }
            let method = try QuantizationMethods.make("simquant", bits: bits)
            let q = try values.withUnsafeBufferPointer {
                try method.quantize($0, layout: BlockLayout(shape: shape, axis: axis, granularity: granularity), name: "w", threads: 1)
            }
            let x = q.dequantized()
            let t = q.transposed()
            XCTAssertEqual(t.shape, [shape[1], shape[0]])
            let xt = t.dequantized()
            for i in 0..<shape[0] { for j in 0..<shape[1] { XCTAssertEqual(xt[j * shape[0] + i], x[i * shape[1] + j]) } }
            XCTAssertEqual(t.transposed().codes, q.codes)
            let order = (0..<shape[0]).reversed().map { $0 }
            if let moved = q.reorderingRows(Array(order)) {
                let xm = moved.dequantized()
                for (r, from) in order.enumerated() {
                    XCTAssertEqual(Array(xm[(r * shape[1])..<((r + 1) * shape[1])]), Array(x[(from * shape[1])..<((from + 1) * shape[1])]))
                }
            } else {
                XCTAssertFalse(q.rowsCarryTheirScales, "only blocks spanning several rows refuse to move")
            }
        }
        let order = GGUFLayoutChange.interleavedRotary(heads: 2).rowOrder(rows: 8, toGGUF: true)
        XCTAssertEqual(order, [0, 2, 1, 3, 4, 6, 5, 7])
        XCTAssertEqual(GGUFLayoutChange.interleavedRotary(heads: 2).rowOrder(rows: 8, toGGUF: false), [0, 2, 1, 3, 4, 6, 5, 7])
        XCTAssertEqual(GGUFLayoutChange.interleavedRotary(heads: 1).rowOrder(rows: 6, toGGUF: true), [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(GGUFLayoutChange.interleavedRotary(heads: 1).rowOrder(rows: 6, toGGUF: false), [0, 2, 4, 1, 3, 5])
    }

    // MARK: What does not travel, and refusals

    func testLLMInt8OutlierRowsGoBackIntoTheirMatricesBeforeRequantizing() throws {
        guard let run = try CalibratedFixture.run() else { throw XCTSkip("tiny-gpt2 fixture or calibration text absent") }
        let options = try CalibratedMethods.llmInt8(run, threshold: 3.5, base: ConversionOptions(threads: 2))
        let file = try CalibratedFixture.convert(options).file
        defer { try? FileManager.default.removeItem(atPath: (file.path as NSString).deletingLastPathComponent) }
        let (f, report) = try Self.export(file.self)
        XCTAssertTrue(report.notes.contains { $0.hasPrefix("LLM.int8:") }, "\(report.notes)")
        XCTAssertTrue(report.notes.contains { $0.hasPrefix("W8A8:") }, "\(report.notes)")
        XCTAssertFalse(f.tensors.contains { $0.name.hasPrefix("eqm.") })
        let restored = report.tensors.filter { $0.summary.contains("outlier") }
        XCTAssertFalse(restored.isEmpty)
        XCTAssertTrue(restored.allSatisfy { $0.route == .requantized && $0.type == .Q8_0 })
        // Against the restored matrix, the file is as close as Q8_0 of those values is.
        let comparison = try GGUFComparison(gguf: f, eqm: file, threads: 2)
        for t in restored {
            let row = try XCTUnwrap(comparison.rows.first { $0.name == t.sourceName })
            XCTAssertEqual(row.maxAbsError, t.maxAbsError, accuracy: 1e-7, t.name)
            XCTAssertLessThan(row.rmsError, row.referenceRMS * 0.01, t.name)
        }
    }

    func testHostileExportsAreRefusedWithClearErrors() throws {
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A file of tensors no family describes.
        let bare = dir + "/bare.safetensors"
        let w = try SafetensorsWriter(path: bare, entries: [.init(name: "layer.weight", dtype: .f32, shape: [4, 32])])
        try w.write(floats: (0..<128).map { Float($0) / 128 })
        try w.finish()
        XCTAssertThrowsError(try Self.export(Self.eqm(bare))) { e in
            XCTAssertTrue("\(e)".contains("model.eqm") && "\(e)".contains("gpt2 and llama"), "\(e)")
        }
        // A GPT-2 model without a tokenizer.
        let folder = try CLIFixtures.makeModel(in: dir)
        XCTAssertThrowsError(try Self.export(Self.eqm(folder))) { e in
            XCTAssertEqual((e as? GGUFExportError)?.problem, .noTokenizer, "\(e)")
            XCTAssertTrue("\(e)".contains("tokenizer"), "\(e)")
        }
        // A GPT-2 GGUF file without its gpt2.* keys cannot say what model it holds.
        let sink0 = MemorySink()
        let bareGGUF = try GGUFWriter(sink: sink0, metadata: [("general.architecture", .string("gpt2"))],
                                      tensors: [GGUFTensorDeclaration(name: "token_embd.weight", shape: [4, 32], type: .F32)])
        try bareGGUF.append("token_embd.weight", [UInt8](repeating: 0, count: 4 * 32 * 4))
        try bareGGUF.finish()
        XCTAssertThrowsError(try GGUFWeightSource(file: GGUFFile(file: MappedFile(bytes: sink0.bytes, name: "bare.gguf")))) { e in
            XCTAssertTrue("\(e)".contains("bare.gguf") && "\(e)".contains("gpt2.context_length is missing"), "\(e)")
        }
        // LLM.int8 outlier features that lie about the matrix they belong to.
        let lying = LyingOutliers()
        var options = ConversionOptions(method: "absmax", threads: 2)
        options.preparation = lying
        let sink = MemorySink()
        _ = try ModelConverter(options: options).convert(openConversionSource(path: Self.gpt2), into: EQMWriter(sink: sink), named: "lying.eqm")
        let file = try EQMFile(file: MappedFile(bytes: sink.bytes, name: "lying.eqm"))
        XCTAssertThrowsError(try Self.export(file)) { e in
            XCTAssertTrue("\(e)".contains("h.0.attn.c_proj") && "\(e)".contains("outside its 128 inputs"), "\(e)")
        }
    }

    func testEqconvertWritesGGUFAndRefusesFolders() throws {
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try CLIFixtures.run("eqconvert", [Self.gpt2, dir + "/tiny.gguf", "--method", "simquant", "--bits", "4", "--granularity", "group:32"], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("exact 18 (18 Q4_1)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("error vs .eqm"), r.stdout)
        XCTAssertEqual(try GGUFFile(path: dir + "/tiny.gguf").value("general.file_type"), .uint32(3))
        let back = try CLIFixtures.run("eqconvert", [dir + "/tiny.gguf", dir + "/back.eqm", "--method", "keep-codes"], in: dir)
        XCTAssertEqual(back.status, 0, back.stderr)
        let compare = try CLIFixtures.run("eqinspect", [dir + "/tiny.gguf", "--compare", dir + "/back.eqm"], in: dir)
        XCTAssertEqual(compare.status, 0, compare.stderr)
        XCTAssertTrue(compare.stdout.contains("52 tensors compared"), compare.stdout)
        let slash = try CLIFixtures.run("eqconvert", [dir + "/back.eqm", dir + "/out.gguf/"], in: dir)
        XCTAssertNotEqual(slash.status, 0)
        XCTAssertTrue(slash.stderr.contains("is a folder; a GGUF export is one file"), slash.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out.gguf"))
        try FileManager.default.createDirectory(atPath: dir + "/existing.gguf", withIntermediateDirectories: false)
        let folder = try CLIFixtures.run("eqconvert", [dir + "/back.eqm", dir + "/existing.gguf"], in: dir)
        XCTAssertNotEqual(folder.status, 0)
        XCTAssertTrue(folder.stderr.contains("a GGUF export is one file"), folder.stderr)
        let notGGUF = try CLIFixtures.run("eqconvert", [Self.gpt2, dir + "/x.eqm", "--method", "keep-codes"], in: dir)
        XCTAssertNotEqual(notGGUF.status, 0)
        XCTAssertTrue(notGGUF.stderr.contains("keeps the codes of a GGUF file"), notGGUF.stderr)
    }
}

/// A preparation that adds an LLM.int8 outlier part to h.0.attn.c_proj naming input
/// feature 500 of its 128.
struct LyingOutliers: ModelPreparation {
    func changes(_ name: String) -> Bool { false }
    func transform(_ name: String, _ values: [Float]) -> [Float] { values }
    var extraTensors: [ExtraTensor] {
        let names = OutlierFeatures.tensorNames(for: "h.0.attn.c_proj.weight")
        return [ExtraTensor(name: names.index, shape: [1], values: [500]),
                ExtraTensor(name: names.weight, shape: [1, 128], values: Array(repeating: 0.5, count: 128))]
    }
    var parameters: [(String, JSONValue)] { [] }
}
