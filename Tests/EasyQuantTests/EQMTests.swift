import EasyQuant
import Foundation
import XCTest

final class EQMTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws { dir = try TestFiles.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A small GPT-2-shaped model folder (random weights, F32) with a config and mask buffers.
    func makeModel(dtype: DType = .f32) throws -> String {
        let folder = dir + "/model-\(dtype.rawValue)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var rng = SeededGenerator(seed: 7)
        let e = 16, v = 40, p = 8
        var tensors: [(String, [Int])] = [("transformer.wte.weight", [v, e]), ("transformer.wpe.weight", [p, e])]
        for l in 0..<2 {
            let h = "transformer.h.\(l)."
            tensors += [(h + "ln_1.weight", [e]), (h + "ln_1.bias", [e]),
                        (h + "attn.bias", [1, 1, p, p]),
                        (h + "attn.c_attn.weight", [e, 3 * e]), (h + "attn.c_attn.bias", [3 * e]),
                        (h + "attn.c_proj.weight", [e, e]), (h + "attn.c_proj.bias", [e]),
                        (h + "ln_2.weight", [e]), (h + "ln_2.bias", [e]),
                        (h + "mlp.c_fc.weight", [e, 4 * e]), (h + "mlp.c_fc.bias", [4 * e]),
                        (h + "mlp.c_proj.weight", [4 * e, e]), (h + "mlp.c_proj.bias", [e])]
        }
        tensors += [("transformer.ln_f.weight", [e]), ("transformer.ln_f.bias", [e])]
        let w = try SafetensorsWriter(path: folder + "/model.safetensors",
                                      entries: tensors.map { .init(name: $0.0, dtype: dtype, shape: $0.1) })
        for (_, shape) in tensors {
            let n = shape.reduce(1, *)
            try w.write(floats: (0..<n).map { _ in Float(rng.nextGaussian() * 0.1) })
        }
        try w.finish()
        try #"{"model_type": "gpt2", "n_embd": 16, "n_layer": 2, "n_head": 2, "n_positions": 8, "vocab_size": 40}"#
            .write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
        try #"{"a": 0}"#.write(toFile: folder + "/vocab.json", atomically: true, encoding: .utf8)
        try "#version: 0.2\n".write(toFile: folder + "/merges.txt", atomically: true, encoding: .utf8)
        return folder
    }

    func testRoundTripForEveryMethodAndGranularity() throws {
        let folder = try makeModel()
        let source = try SafetensorsModel(path: folder)
        for method in QuantizationMethods.names {
            for bits in [8, 4] {
                for g in [Granularity.channel, .tensor, .group(8)] {
                    let out = dir + "/\(method)-\(bits)-\(g.description.replacingOccurrences(of: ":", with: "_")).eqm"
                    let options = ConversionOptions(method: method, bits: bits, granularity: g, threads: 2)
                    let report = try ModelConverter(options: options).convert(source, to: out)
                    XCTAssertEqual(report.quantized, 10)  // wte, wpe and 4 matrices per block
                    XCTAssertEqual(report.kept, 18)
                    XCTAssertEqual(report.dropped.count, 2)

                    let eqm = try EQMFile(path: out)
                    XCTAssertNil(eqm.record("transformer.h.0.attn.bias"), "mask buffers are dropped")
                    XCTAssertEqual(eqm.modelConfig?["n_embd"]?.intValue, 16)
                    XCTAssertEqual(try eqm.tokenizerFile("merges.txt"), Array("#version: 0.2\n".utf8))
                    XCTAssertEqual(eqm.quantizationInfo?["method"]?.stringValue, method)
                    for record in eqm.tensors {
                        let original = source.floats(of: source.tensor(record.name)!)
                        let restored = try eqm.floats(record)
                        XCTAssertEqual(restored.count, original.count)
                        guard let q = record.quantization else {
                            XCTAssertEqual(restored, original, "\(record.name) kept exactly")
                            continue
                        }
                        XCTAssertEqual(q.bits, bits)
                        XCTAssertEqual(q.layout.axis, g == .tensor ? nil : (record.name.hasSuffix("wte.weight") || record.name.hasSuffix("wpe.weight") ? 0 : 1))
                        // The same values the quantizer produces in memory.
                        let direct = try original.withUnsafeBufferPointer {
                            try QuantizationMethods.make(method, bits: bits).quantize($0, layout: q.layout)
                        }
                        XCTAssertEqual(restored, direct.dequantized(), "\(method) \(g) \(record.name)")
                        let maxStep = direct.scales.max()!
                        for (a, b) in zip(original, restored) { XCTAssertLessThanOrEqual(abs(a - b), maxStep / 2 * 1.0001 + 1e-7) }
                    }
                }
            }
        }
    }

    func testBF16AndF16SourcesAreRecorded() throws {
        for dtype in [DType.f16, .bf16] {
            let source = try SafetensorsModel(path: try makeModel(dtype: dtype))
            let out = dir + "/\(dtype.rawValue).eqm"
            _ = try ModelConverter(options: ConversionOptions()).convert(source, to: out)
            let eqm = try EQMFile(path: out)
            XCTAssertTrue(eqm.tensors.allSatisfy { $0.sourceDType == dtype })
            let bias = eqm.record("transformer.h.0.mlp.c_fc.bias")!
            XCTAssertEqual(try eqm.floats(bias), source.floats(of: source.tensor(bias.name)!))
        }
    }

    func testKeepPatternsAndDequantizedExport() throws {
        let source = try SafetensorsModel(path: try makeModel())
        let out = dir + "/keep.eqm"
        let report = try ModelConverter(options: ConversionOptions(keep: ["*wte*", "c_proj"])).convert(source, to: out)
        XCTAssertEqual(report.quantized, 10 - 1 - 4)
        let eqm = try EQMFile(path: out)
        XCTAssertNil(eqm.record("transformer.wte.weight")!.quantization)
        XCTAssertNil(eqm.record("transformer.h.1.mlp.c_proj.weight")!.quantization)
        XCTAssertNotNil(eqm.record("transformer.h.1.mlp.c_fc.weight")!.quantization)

        // .eqm → safetensors, as F32 and as BF16, equals the dequantized values.
        for dtype in [DType.f32, .bf16] {
            let st = dir + "/back-\(dtype.rawValue).safetensors"
            _ = try SafetensorsExporter(dtype: dtype).export(eqm, to: st)
            let back = try SafetensorsFile(path: st)
            XCTAssertEqual(back.tensors.count, eqm.tensors.count)
            for record in eqm.tensors {
                let want = try eqm.floats(record).map { dtype == .bf16 ? FloatConversion.bf16ToFloat(FloatConversion.floatToBF16($0)) : $0 }
                XCTAssertEqual(back.floats(of: back.info(record.name)!), want, record.name)
            }
        }
        // Into a folder: model.safetensors + config.json + tokenizer files.
        let folder = dir + "/exported"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        _ = try SafetensorsExporter().export(eqm, to: folder)
        let again = try SafetensorsModel(path: folder)
        XCTAssertEqual(again.config?["n_layer"]?.intValue, 2)
        XCTAssertEqual(again.tokenizerFiles.map(\.name), ["vocab.json", "merges.txt"])
    }

    func testLayoutIsDeterministic() throws {
        let source = try SafetensorsModel(path: try makeModel())
        let a = dir + "/a.eqm", b = dir + "/b.eqm"
        _ = try ModelConverter(options: ConversionOptions(threads: 1)).convert(source, to: a)
        _ = try ModelConverter(options: ConversionOptions(threads: 2)).convert(source, to: b)
        let fa = try EQMFile(path: a), fb = try EQMFile(path: b)
        XCTAssertEqual(fa.tensors, fb.tensors, "same blobs at the same offsets whatever the thread count")
        XCTAssertTrue(fa.tensors.allSatisfy { $0.data.offset % 64 == 0 })
    }

    /// A conversion that fails while its workers hold pipeline slots must clean up without
    /// a crash (libdispatch traps on a semaphore freed below its initial value) and leave no file.
    func testFailingConversionsCleanUpEveryTime() throws {
        let folder = dir + "/nan"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let names = (0..<24).map { "t\($0).weight" }
        let w = try SafetensorsWriter(path: folder + "/model.safetensors", entries: names.map { .init(name: $0, dtype: .f32, shape: [32, 32]) })
        for (i, _) in names.enumerated() {
            var values = [Float](repeating: 0.5, count: 1024)
            if i == 1 { values[3] = .nan }
            try w.write(floats: values)
        }
        try w.finish()
        let source = try SafetensorsModel(path: folder)
        for _ in 0..<60 {
            XCTAssertThrowsError(try ModelConverter(options: ConversionOptions(threads: 2)).convert(source, to: folder + "/out.eqm"))
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["model.safetensors"])
    }

    // MARK: Damage

    func testTruncatedFilesAreRefusedWithAClearError() throws {
        let out = dir + "/t.eqm"
        _ = try ModelConverter(options: ConversionOptions()).convert(try SafetensorsModel(path: try makeModel()), to: out)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        for cut in [0, 7, 31, 32, 100, bytes.count / 2, bytes.count - 1] {
            let path = dir + "/cut.eqm"
            try bytes.prefix(cut).write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try EQMFile(path: path)) { error in
                XCTAssertTrue("\(error)".hasPrefix(path + ": "), "\(error)")
            }
        }
    }

    func testUnknownMajorVersionIsRefused() throws {
        let out = dir + "/v.eqm"
        _ = try ModelConverter(options: ConversionOptions()).convert(try SafetensorsModel(path: try makeModel()), to: out)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        bytes[8] = 2
        try Data(bytes).write(to: URL(fileURLWithPath: out))
        XCTAssertThrowsError(try EQMFile(path: out)) {
            XCTAssertEqual(($0 as? EQMError)?.problem, .unsupportedVersion(2, 0))
            XCTAssertTrue("\($0)".contains("newer EasyQuant"))
        }
        // A higher minor version with extra header keys still reads.
        bytes[8] = 1
        bytes[10] = 7
        try Data(bytes).write(to: URL(fileURLWithPath: out))
        XCTAssertEqual(try EQMFile(path: out).minorVersion, 7)
    }

    func testAFlippedByteInATensorNamesThatTensor() throws {
        let out = dir + "/f.eqm"
        _ = try ModelConverter(options: ConversionOptions()).convert(try SafetensorsModel(path: try makeModel()), to: out)
        let eqm = try EQMFile(path: out)
        let victim = eqm.record("transformer.h.1.mlp.c_fc.weight")!
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        bytes[victim.data.offset + victim.data.length / 2] ^= 0x10
        let damaged = dir + "/damaged.eqm"
        try Data(bytes).write(to: URL(fileURLWithPath: damaged))
        let file = try EQMFile(path: damaged)  // the header is intact
        XCTAssertNoThrow(try file.floats("transformer.h.0.mlp.c_fc.weight"), "other tensors still load")
        XCTAssertThrowsError(try file.floats(victim.name)) { error in
            XCTAssertTrue("\(error)".contains("tensor transformer.h.1.mlp.c_fc.weight data at byte \(victim.data.offset) is corrupt"), "\(error)")
        }
    }

    /// Every single-byte change anywhere in the file either still reads or gives an EQMError; never a crash.
    func testRandomDamageNeverCrashes() throws {
        let out = dir + "/r.eqm"
        _ = try ModelConverter(options: ConversionOptions()).convert(try SafetensorsModel(path: try makeModel()), to: out)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
        var rng = SeededGenerator(seed: 3)
        let path = dir + "/mutant.eqm"
        var refused = 0
        for _ in 0..<400 {
            var bytes = original
            let at = Int(rng.next() % UInt64(bytes.count))
            bytes[at] ^= UInt8(1 + rng.next() % 255)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let f = try EQMFile(path: path)
                for r in f.tensors { _ = try f.floats(r) }
                for n in f.tokenizerFileNames { _ = try f.tokenizerFile(n) }
            } catch is EQMError {
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 300, "zstd checksums and header checks catch nearly every change")
    }

    // MARK: Golden file

    /// fixtures/golden/ holds a file written by format 1.0 and the values it must decode to.
    func testGoldenFileStillLoadsWithTheSameValues() throws {
        try checkGolden("golden-v1.0")
    }

    /// The 8-bit, per-channel, symmetric golden file (one code per byte, no zero points).
    func testGoldenAbsmaxFileStillLoadsWithTheSameValues() throws {
        try checkGolden("golden-v1.0-absmax")
    }

    /// Compares `fixtures/golden/NAME.eqm` with the values, codes, method and bits that the
    /// independent Python reader (scripts/eqm_reader.py) wrote into `NAME.expected.json`.
    func checkGolden(_ name: String) throws {
        let eqm = try EQMFile(path: TestFiles.fixture("golden/\(name).eqm"))
        XCTAssertEqual(eqm.majorVersion, 1)
        let expected = try JSONValue.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: TestFiles.fixture("golden/\(name).expected.json")))))
        guard let tensors = expected["tensors"]?.objectMembers else { return XCTFail("bad expectations") }
        XCTAssertEqual(tensors.map(\.key), eqm.tensors.map(\.name))
        for (name, want) in tensors {
            let record = eqm.record(name)!
            XCTAssertEqual(record.shape, want["shape"]?.arrayValue?.compactMap(\.intValue))
            let values = try eqm.floats(record)
            let wantValues = want["values"]!.arrayValue!.map { Float($0.doubleValue!) }
            XCTAssertEqual(values, wantValues, name)
            if let q = record.quantization {
                XCTAssertEqual(q.method, want["method"]?.stringValue)
                XCTAssertEqual(q.bits, want["bits"]?.intValue)
                let qt = try eqm.quantizedTensor(record)
                XCTAssertEqual((0..<qt.elementCount).map { Int(qt.code(at: $0)) }, want["codes"]?.arrayValue?.compactMap(\.intValue))
            }
        }
    }
}
