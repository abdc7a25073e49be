import EasyQuant
import Foundation
import XCTest

/// The GGUF writer, its encoders and the GGUF → codes helper: files written here are read
/// back with `GGUFFile`; the encoders' bytes are compared with `gguf.quants.quantize`
/// (fixtures/gguf-writer/quantize_reference.safetensors, scripts/make_gguf_writer_fixtures.py).
final class GGUFWriterTests: XCTestCase {
    typealias W = GGUFWriterTest

    // MARK: Metadata

    func testMetadataOfEveryValueTypeReadsBackExactly() throws {
        let writer = try GGUFWriter(sink: MemorySink(), metadata: W.everyValue, tensors: [])
        let sink = MemorySink()
        let w2 = try GGUFWriter(sink: sink, name: "meta.gguf", metadata: W.everyValue, tensors: [])
        XCTAssertEqual(try w2.finish(), sink.bytes.count)
        let f = try W.open(sink.bytes)
        XCTAssertEqual(f.version, 3)
        XCTAssertEqual(f.alignment, 32)
        XCTAssertEqual(f.metadata.map(\.key), W.everyValue.map(\.key) + ["general.alignment"], "caller's order, alignment last")
        for (got, want) in zip(f.metadata, W.everyValue) { XCTAssertEqual(got.value, want.value, got.key) }
        XCTAssertEqual(f.value("general.alignment"), .uint32(32))
        XCTAssertEqual(Set(f.metadata.map(\.value.type)), Set(GGUFValueType.allCases), "every value type is exercised")
        XCTAssertEqual(Set(f.metadata.compactMap(\.value.elementType)), Set(GGUFValueType.allCases).subtracting([.array]),
                       "arrays of every element type but arrays")
        XCTAssertTrue(f.tensors.isEmpty, "a metadata-only file")
        XCTAssertEqual(f.dataStart, writer.dataStart)
        XCTAssertEqual(sink.bytes.count, f.dataStart, "no tensors: the file ends with the padded header")
        XCTAssertEqual(f.dataStart % 32, 0)
    }

    func testVocabularySizedStringArray() throws {
        let tokens = (0..<20_000).map { GGUFValue.string("tok\($0)\u{120}é") }
        let sink = MemorySink()
        let w = try GGUFWriter(sink: sink, metadata: [("tokenizer.ggml.tokens", .array(.string, tokens)),
                                                      ("tokenizer.ggml.model", .string("gpt2"))], tensors: [])
        try w.finish()
        let f = try W.open(sink.bytes)
        XCTAssertEqual(f.value("tokenizer.ggml.tokens")?.stringArray, tokens.map { $0.stringValue! })
        XCTAssertEqual(f.value("tokenizer.ggml.model")?.stringValue, "gpt2")
    }

    func testGivenAlignmentKeyIsKeptWhereGiven() throws {
        let sink = MemorySink()
        let meta: [(key: String, value: GGUFValue)] = [("general.alignment", .uint32(64)), ("a", .int8(1))]
        try GGUFWriter(sink: sink, metadata: meta, tensors: [GGUFTensorDeclaration(name: "t", shape: [3], type: .F32)],
                       alignment: 64).append("t", [UInt8](repeating: 7, count: 12))
        let f = try W.open(sink.bytes)
        XCTAssertEqual(f.metadata.map(\.key), ["general.alignment", "a"])
        XCTAssertEqual(f.alignment, 64)
    }

    // MARK: Tensor layout

    func testTensorsOfAnyTypeAndRankReadBackByteForByte() throws {
        let decls = [
            GGUFTensorDeclaration(name: "a.f32_1d", shape: [7], type: .F32),
            GGUFTensorDeclaration(name: "b.f16_2d", shape: [3, 5], type: .F16),
            GGUFTensorDeclaration(name: "c.q8_0_3d", shape: [2, 3, 64], type: .Q8_0),
            GGUFTensorDeclaration(name: "d.q4_1", shape: [4, 32], type: .Q4_1),
            GGUFTensorDeclaration(name: "e.bf16_4d", shape: [2, 1, 3, 2], type: .BF16),
            GGUFTensorDeclaration(name: "f.q6_k", shape: [2, 256], type: .Q6_K),
            GGUFTensorDeclaration(name: "g.i8", shape: [5], type: .I8),
        ]
        for alignment in [8, 32, 64, 4096] {
            var rng = SeededGenerator(seed: UInt64(alignment))
            let sink = MemorySink()
            let w = try GGUFWriter(sink: sink, metadata: [("general.name", .string("layout"))], tensors: decls, alignment: alignment)
            var data: [[UInt8]] = []
            for t in w.tensors {
                let bytes = (0..<t.byteCount).map { _ in UInt8.random(in: 0...255, using: &rng) }
                data.append(bytes)
                try w.append(t.name, bytes)
            }
            XCTAssertEqual(try w.finish(), w.fileSize)
            XCTAssertEqual(sink.bytes.count, w.fileSize)
            let f = try W.open(sink.bytes)
            XCTAssertEqual(f.alignment, alignment)
            XCTAssertEqual(f.dataStart, w.dataStart)
            XCTAssertEqual(f.tensors, w.tensors, "the writer's layout is what the reader finds")
            XCTAssertEqual(f.tensors.map(\.shape), decls.map(\.shape), "PyTorch order back")
            XCTAssertEqual(f.tensors.map(\.dimensions), decls.map { Array($0.shape.reversed()) }, "stored as GGUF dims")
            XCTAssertEqual(f.tensors.map(\.type), decls.map(\.type))
            var expectedOffset = f.dataStart
            for (t, bytes) in zip(f.tensors, data) {
                XCTAssertEqual(Array(f.bytes(of: t)), bytes, t.name)
                // llama.cpp requires each tensor to start where the previous one ended, padded.
                XCTAssertEqual(t.offset, expectedOffset, t.name)
                expectedOffset = (t.offset + t.byteCount + alignment - 1) / alignment * alignment
            }
            XCTAssertEqual(expectedOffset, sink.bytes.count, "the last tensor is padded too")
        }
    }

    func testDimensionsAreStoredReversedInTheHeader() throws {
        let sink = MemorySink()
        let w = try GGUFWriter(sink: sink, metadata: [], tensors: [GGUFTensorDeclaration(name: "m", shape: [2, 3, 64], type: .F16)])
        try w.append("m", [UInt8](repeating: 0, count: 2 * 3 * 64 * 2))
        try w.finish()
        // Header: magic, version, counts (24 bytes); general.alignment (8 + 17 + 4 + 4); then
        // the info: name (8 + 1), dimension count, dims, type, offset.
        let info = 24 + 8 + 17 + 4 + 4
        XCTAssertEqual(Array(sink.bytes[info..<(info + 9)]), GGUFBuilder.string("m"))
        XCTAssertEqual(Array(sink.bytes[(info + 9)..<(info + 13)]), GGUFBuilder.u32(3))
        XCTAssertEqual(Array(sink.bytes[(info + 13)..<(info + 37)]), GGUFBuilder.u64(64) + GGUFBuilder.u64(3) + GGUFBuilder.u64(2))
        XCTAssertEqual(Array(sink.bytes[(info + 37)..<(info + 41)]), GGUFBuilder.u32(GGMLType.F16.rawValue))
        XCTAssertEqual(Array(sink.bytes[(info + 41)..<(info + 49)]), GGUFBuilder.u64(0))
    }

    func testOutputFileAppearsOnlyWhenFinished() throws {
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.gguf"
        let decls = [GGUFTensorDeclaration(name: "w", shape: [2, 32], type: .Q8_0)]
        let data = [UInt8](repeating: 1, count: 68)
        do {
            let w = try GGUFWriter(path: path, metadata: [("k", .bool(true))], tensors: decls)
            try w.append("w", data)
            XCTAssertFalse(FileManager.default.fileExists(atPath: path), "nothing at the path before finish")
            try w.finish()
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: path))
        let memory = MemorySink()
        let m = try GGUFWriter(sink: memory, metadata: [("k", .bool(true))], tensors: decls)
        try m.append("w", data)
        try m.finish()
        XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), memory.bytes, "file and memory agree")

        let unfinished = dir + "/unfinished.gguf"
        do {
            let w = try GGUFWriter(path: unfinished, metadata: [], tensors: decls)
            try w.append("w", data)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: unfinished), "dropped unfinished: no file")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.gguf"], "and no temporary left")
        XCTAssertThrowsError(try GGUFWriter(path: dir + "/no/such/folder/x.gguf", metadata: [], tensors: [])) {
            XCTAssertTrue($0 is FileError, "\($0)")
        }
    }

    // MARK: Encoders against gguf.quants.quantize

    func testFloatEncodersMatchTheGGUFPackageByteForByte() throws {
        let ref = try SafetensorsFile(path: TestFiles.fixture("gguf-writer/quantize_reference.safetensors"))
        let errors = try JSONValue.parse(try XCTUnwrap(ref.metadata.first { $0.key == "errors" }?.value))
        var compared = 0
        for name in ["normal", "edges", "row64"] {
            let input = try XCTUnwrap(ref.info(name + ".input"))
            let x = ref.floats(of: input)
            for type in [GGMLType.F16, .BF16, .Q8_0, .Q4_0, .Q4_1] {
                let key = "\(name).\(type.name)"
                let want = Array(ref.bytes(of: try XCTUnwrap(ref.info(key))))
                let got = try GGUFTensorEncoder.encode(floats: x, shape: input.shape, name: key, as: type)
                XCTAssertEqual(got.bytes.count, want.count, key)
                if let i = zip(got.bytes, want).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                    XCTFail("\(key): first differing byte \(i) (block \(i / type.bytesPerBlock)): \(got.bytes[i]) vs \(want[i])")
                }
                XCTAssertEqual(got.plan.route, .fromFloats)
                XCTAssertEqual(got.maxAbsError, errors[key]?["max_abs"]?.doubleValue, key)
                let rms = try XCTUnwrap(errors[key]?["rms"]?.doubleValue)
                XCTAssertEqual(got.rmsError, rms, accuracy: rms * 1e-12, key)
                compared += 1
            }
            let f32 = try GGUFTensorEncoder.encode(floats: x, shape: input.shape, name: name, as: .F32)
            XCTAssertEqual(f32.bytes, Array(ref.bytes(of: input)), "F32 is the input's bytes")
            XCTAssertEqual(f32.maxAbsError, 0)
        }
        XCTAssertEqual(compared, 15)
    }

    func testEncodedFloatsReadBackAsTheirDequantizedValues() throws {
        let x = W.weights(3, 96, seed: 5)
        let decls = [GGMLType.F32, .F16, .BF16, .Q8_0, .Q4_0, .Q4_1].map { GGUFTensorDeclaration(name: $0.name, shape: [3, 96], type: $0) }
        let encoded = try decls.map { try GGUFTensorEncoder.encode(floats: x, shape: [3, 96], name: $0.name, as: $0.type) }
        let sink = MemorySink()
        let w = try GGUFWriter(sink: sink, metadata: [], tensors: encoded.map(\.plan.declaration))
        for e in encoded { try w.append(e) }
        try w.finish()
        let f = try W.open(sink.bytes)
        for e in encoded {
            let back = try f.floats(of: try XCTUnwrap(f.tensor(e.plan.name)), threads: 1)
            let maxAbs = zip(back, x).map { abs(Double($0) - Double($1)) }.max()!
            XCTAssertEqual(maxAbs, e.maxAbsError, e.plan.name)
            if e.plan.type == .F32 { XCTAssertEqual(back, x) }
            if e.plan.type == .F16 { XCTAssertEqual(back, x.map { Float(Float16($0)) }) }
        }
    }

    func testOverflowsAreRefusedWithTheTensorName() throws {
        func problem(_ x: [Float], _ shape: [Int], _ type: GGMLType) -> GGUFConversionError.Problem? {
            do {
                _ = try GGUFTensorEncoder.encode(floats: x, shape: shape, name: "blk.0.weight", as: type)
                return nil
            } catch let e as GGUFConversionError {
                XCTAssertTrue(e.description.hasPrefix("tensor blk.0.weight: "), e.description)
                XCTAssertFalse(e.description.contains("\n"))
                return e.problem
            } catch {
                XCTFail("\(error)")
                return nil
            }
        }
        XCTAssertEqual(problem([65519, -65519], [2], .F16), nil, "65519 rounds down to 65504")
        XCTAssertEqual(problem([1, 65520], [2], .F16), .valueOverflow(index: 1, value: 65520, type: .F16))
        XCTAssertEqual(problem([1, -1e6, 3], [3], .F16), .valueOverflow(index: 1, value: -1e6, type: .F16))
        XCTAssertEqual(problem([3.3e38], [1], .BF16), nil)
        XCTAssertEqual(problem([1, .greatestFiniteMagnitude], [1, 2], .BF16), .valueOverflow(index: 1, value: .greatestFiniteMagnitude, type: .BF16))
        var q8 = [Float](repeating: 0.5, count: 64)
        q8[40] = 1e7  // d = 1e7 / 127 = 78740 > 65504, in block 1
        XCTAssertEqual(problem(q8, [2, 32], .Q8_0), .scaleOverflow(block: 1, value: Double(Float(1e7) / 127), type: .Q8_0))
        XCTAssertEqual(problem([Float](repeating: -600_000, count: 32), [32], .Q4_0), .scaleOverflow(block: 0, value: 75_000, type: .Q4_0))
        XCTAssertEqual(problem([Float](repeating: -70_000, count: 32), [32], .Q4_1), .scaleOverflow(block: 0, value: -70_000, type: .Q4_1),
                       "d = 0 fits, m = -70000 does not")
        XCTAssertEqual(problem([Float](repeating: 60_000, count: 32), [32], .Q4_1), nil)
        if case .nonFinite(let i, let v)? = problem([1, 2, .nan], [3], .F32) { XCTAssertEqual(i, 2); XCTAssertTrue(v.isNaN) } else { XCTFail("NaN accepted") }
        XCTAssertEqual(problem([1, -.infinity], [2], .Q8_0), .badShape(shape: [2], type: .Q8_0,
            reason: "the row length 2 (the last dimension) is not a multiple of Q8_0's block size 32"), "shape first")
        XCTAssertEqual(problem([Float](repeating: 1, count: 31) + [.infinity], [32], .Q8_0), .nonFinite(index: 31, value: .infinity))
        XCTAssertEqual(problem([1, 2], [3], .F32), .wrongCount(expected: 3, values: 2))
        XCTAssertEqual(problem([], [0, 32], .F32), .badShape(shape: [0, 32], type: .F32, reason: "every dimension must be at least 1"))
        XCTAssertEqual(problem([1], [1, 1, 1, 1, 1], .F32), .badShape(shape: [1, 1, 1, 1, 1], type: .F32, reason: "GGUF tensors have 1 to 4 dimensions, not 5"))
        XCTAssertEqual(problem([Float](repeating: 1, count: 32), [32], .Q5_0), .notWritable(.Q5_0))
    }

    // MARK: Exact mappings of EasyQuant codes

    /// (method, bits, granularity, shape, the type its codes map to exactly)
    static let exactCases: [(String, Int, Granularity, [Int], GGMLType)] = [
        ("absmax", 8, .channel, [6, 96], .Q8_0),
        ("absmax", 8, .tensor, [3, 64], .Q8_0),
        ("absmax", 8, .group(64), [4, 128], .Q8_0),
        ("absmax", 8, .group(200), [2, 160], .Q8_0),
        ("symquant", 8, .group(32), [4, 64], .Q8_0),
        ("absmax", 6, .channel, [3, 64], .Q8_0),
        ("absmax", 4, .group(32), [5, 96], .Q4_0),
        ("symquant", 4, .group(32), [4, 64], .Q4_0),
        ("absmax", 3, .group(64), [3, 128], .Q4_0),
        ("simquant", 4, .group(32), [5, 96], .Q4_1),
        ("simquant", 4, .group(128), [3, 256], .Q4_1),
        ("simquant", 2, .channel, [3, 64], .Q4_1),
        ("zeropoint", 4, .group(32), [4, 64], .Q4_1),
    ]

    func testExactMappingsKeepTheCodesAndRoundOnlyTheScales() throws {
        var sawMinus128 = false, sawMinus8 = false
        for (i, (method, bits, granularity, shape, type)) in Self.exactCases.enumerated() {
            let label = "\(method) \(bits)-bit \(granularity)"
            let q = try W.quantize(method, bits: bits, granularity, shape: shape, seed: UInt64(100 + i))
            let plan = try GGUFTensorPlan(quantized: q, name: "t", request: .f32)
            XCTAssertEqual(plan.route, .exact, label)
            XCTAssertEqual(plan.type, type, label)
            XCTAssertEqual(plan.summary, "exact: \(label) codes as \(type.name)")
            let encoded = try GGUFTensorEncoder.encode(q, name: "t", request: .q4_1)
            XCTAssertEqual(encoded.plan, plan, "the request does not matter when the mapping is exact")
            let f = try W.open(W.file([encoded]))
            let info = try XCTUnwrap(f.tensor("t"))
            let got = try f.floats(of: info, threads: 2)

            // What ggml computes from the f16 steps (and minimums), in the same float operations.
            let cols = shape[1], scaleCols = q.layout.scaleShape[1]
            func block(_ e: Int) -> Int { (e / cols / q.layout.rows) * scaleCols + (e % cols) / q.layout.columns }
            let expected: [Float]
            if type == .Q4_1 {
                let offset: Int32 = q.isSigned ? 8 : 0
                expected = (0..<q.elementCount).map { e in
                    let s = q.scales[block(e)], z = q.zeroPoints![block(e)]
                    let d = Float(Float16(s)), m = Float(Float16(-((Double(z) + Double(offset)) * Double(s))))
                    return d * Float(q.code(at: e) + offset) + m
                }
            } else {
                var rounded = q
                rounded.scales = q.scales.map { Float(Float16($0)) }
                expected = rounded.dequantized()
            }
            XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), "\(label): bit for bit")

            // The codes themselves are in the blocks; d is the f16 step.
            let bytes = Array(f.bytes(of: info))
            XCTAssertEqual(UInt16(bytes[0]) | UInt16(bytes[1]) << 8, Float16(q.scales[0]).bitPattern, label)
            if type == .Q8_0 { XCTAssertEqual(Array(bytes[2..<34]), Array(q.codes[0..<32]), label) }
            let codes = (0..<q.elementCount).map { q.code(at: $0) }
            sawMinus128 = sawMinus128 || (type == .Q8_0 && codes.contains(-128))
            sawMinus8 = sawMinus8 || (type == .Q4_0 && codes.contains(-8))

            // The reported error is the f16 rounding's, against the .eqm's own values.
            let eqm = q.dequantized()
            let diffs = zip(got, eqm).map { abs(Double($0) - Double($1)) }
            XCTAssertEqual(encoded.maxAbsError, diffs.max(), label)
            let rms = (diffs.reduce(0) { $0 + $1 * $1 } / Double(diffs.count)).squareRoot()
            XCTAssertEqual(encoded.rmsError, rms, accuracy: rms * 1e-12, label)
            XCTAssertGreaterThan(encoded.maxAbsError, 0, "\(label): f16 steps do change values")
            if type != .Q4_1 {
                // |code · (f16(s) − s)| ≤ |x| · 2^-11 while steps are normal f16 numbers.
                // (Plus the f32 rounding of the two products.)
                XCTAssertLessThanOrEqual(encoded.maxAbsError, Double(eqm.map(abs).max()!) * 0x1p-11 * 1.001, label)
            } else {
                XCTAssertLessThan(encoded.maxAbsError, Double(eqm.map(abs).max()!) * 0x1p-8, label)
            }
        }
        XCTAssertTrue(sawMinus128, "symquant's -128 is carried by Q8_0")
        XCTAssertTrue(sawMinus8, "symquant's -8 is carried by Q4_0")
    }

    func testPlansForCodesWithoutAnExactMapping() throws {
        struct Case {
            let method: String, bits: Int, granularity: Granularity, shape: [Int], request: GGUFTypeRequest
            let type: GGMLType, route: GGUFTensorPlan.Route, summary: String
            var axis = 0
        }
        let cases = [
            Case(method: "simquant", bits: 8, granularity: .channel, shape: [3, 64], request: .auto, type: .Q8_0, route: .requantized,
                 summary: "requantized from simquant 8-bit channel to Q8_0 (asymmetric 8-bit codes have no GGUF block with a minimum)"),
            Case(method: "zeropoint", bits: 8, granularity: .channel, shape: [3, 64], request: .auto, type: .Q8_0, route: .requantized,
                 summary: "requantized from zeropoint 8-bit channel to Q8_0 (asymmetric 8-bit codes have no GGUF block with a minimum)"),
            Case(method: "simquant", bits: 6, granularity: .group(32), shape: [2, 64], request: .auto, type: .Q8_0, route: .requantized,
                 summary: "requantized from simquant 6-bit group:32 to Q8_0 (asymmetric 6-bit codes have no GGUF block with a minimum)"),
            Case(method: "absmax", bits: 8, granularity: .group(16), shape: [2, 64], request: .auto, type: .Q8_0, route: .requantized,
                 summary: "requantized from absmax 8-bit group:16 to Q8_0 (its scale blocks [1, 16] split runs of 32 along a row)"),
            Case(method: "absmax", bits: 4, granularity: .group(48), shape: [2, 96], request: .auto, type: .Q4_0, route: .requantized,
                 summary: "requantized from absmax 4-bit group:48 to Q4_0 (its scale blocks [1, 48] split runs of 32 along a row)"),
            Case(method: "simquant", bits: 4, granularity: .group(48), shape: [2, 96], request: .auto, type: .Q4_1, route: .requantized,
                 summary: "requantized from simquant 4-bit group:48 to Q4_1 (its scale blocks [1, 48] split runs of 32 along a row)"),
            Case(method: "absmax", bits: 8, granularity: .channel, shape: [64, 32], request: .auto, type: .Q8_0, route: .requantized,
                 summary: "requantized from absmax 8-bit channel along axis 1 to Q8_0 (its scale blocks [64, 1] split runs of 32 along a row)", axis: 1),
            Case(method: "zeropoint", bits: 8, granularity: .channel, shape: [3, 64], request: .f16, type: .F16, route: .dequantized,
                 summary: "dequantized from zeropoint 8-bit channel to F16 (asymmetric 8-bit codes have no GGUF block with a minimum)"),
            Case(method: "zeropoint", bits: 8, granularity: .channel, shape: [3, 64], request: .f32, type: .F32, route: .dequantized,
                 summary: "dequantized from zeropoint 8-bit channel to F32 (asymmetric 8-bit codes have no GGUF block with a minimum)"),
            Case(method: "simquant", bits: 8, granularity: .channel, shape: [3, 64], request: .q4_0, type: .Q4_0, route: .requantized,
                 summary: "requantized from simquant 8-bit channel to Q4_0 (asymmetric 8-bit codes have no GGUF block with a minimum)"),
            Case(method: "absmax", bits: 8, granularity: .channel, shape: [2, 48], request: .auto, type: .F16, route: .dequantized,
                 summary: "dequantized from absmax 8-bit channel to F16 (row length 48 is not a multiple of 32)"),
            Case(method: "simquant", bits: 4, granularity: .tensor, shape: [2, 48], request: .q4_1, type: .F16, route: .dequantized,
                 summary: "dequantized from simquant 4-bit tensor to F16 (row length 48 is not a multiple of 32)"),
            Case(method: "absmax", bits: 8, granularity: .channel, shape: [2, 48], request: .f32, type: .F32, route: .dequantized,
                 summary: "dequantized from absmax 8-bit channel to F32 (row length 48 is not a multiple of 32)"),
        ]
        for (i, c) in cases.enumerated() {
            let q = try W.quantize(c.method, bits: c.bits, c.granularity, shape: c.shape, seed: UInt64(200 + i), axis: c.axis)
            let plan = try GGUFTensorPlan(quantized: q, name: "t", request: c.request)
            XCTAssertEqual(plan.type, c.type, c.summary)
            XCTAssertEqual(plan.route, c.route, c.summary)
            XCTAssertEqual(plan.summary, c.summary)
            let encoded = try GGUFTensorEncoder.encode(q, name: "t", request: c.request)
            XCTAssertEqual(encoded.plan, plan)
            // The requantize path is the float encoder applied to the .eqm's dequantized values.
            let eqm = q.dequantized()
            let direct = try GGUFTensorEncoder.encode(floats: eqm, shape: c.shape, name: "t", as: c.type)
            XCTAssertEqual(encoded.bytes, direct.bytes, c.summary)
            XCTAssertEqual(encoded.maxAbsError, direct.maxAbsError, c.summary)
            let f = try W.open(W.file([encoded]))
            let got = try f.floats(of: f.tensor("t")!, threads: 1)
            XCTAssertEqual(encoded.maxAbsError, zip(got, eqm).map { abs(Double($0) - Double($1)) }.max(), c.summary)
            if c.type == .F32 { XCTAssertEqual(encoded.maxAbsError, 0) } else { XCTAssertGreaterThan(encoded.maxAbsError, 0) }
        }
    }

    func testStepsBeyondF16FallBackToTheRequest() throws {
        // Weights near 1e7: absmax steps of ~8e4 do not fit in f16, so no exact mapping.
        let x = W.weights(2, 64, seed: 9).map { $0 * 2e8 }
        let q = try W.quantize("absmax", bits: 8, .channel, values: x, shape: [2, 64])
        let plan = try GGUFTensorPlan(quantized: q, name: "big", request: .f32)
        XCTAssertEqual(plan.type, .F32)
        XCTAssertTrue(plan.summary.hasPrefix("dequantized from absmax 8-bit channel to F32 (block "), plan.summary)
        XCTAssertTrue(plan.summary.hasSuffix(" is beyond f16)"), plan.summary)
        XCTAssertEqual(try GGUFTensorEncoder.encode(q, name: "big", request: .f32).maxAbsError, 0)
        XCTAssertThrowsError(try GGUFTensorEncoder.encode(q, name: "big", request: .auto)) {
            guard let e = $0 as? GGUFConversionError, case .scaleOverflow(_, _, .Q8_0) = e.problem else { return XCTFail("\($0)") }
            XCTAssertTrue(e.description.contains("--gguf-type f32"), e.description)
        }
    }

    func testMalformedQuantizedTensorsAreRefused() throws {
        let good = try W.quantize("simquant", bits: 4, .group(32), shape: [2, 64], seed: 1)
        func problem(_ change: (inout QuantizedTensor) -> Void) -> GGUFConversionError.Problem? {
            var q = good
            change(&q)
            do {
                _ = try GGUFTensorEncoder.encode(q, name: "bad")
                return nil
            } catch let e as GGUFConversionError {
                XCTAssertTrue(e.description.hasPrefix("tensor bad: "), e.description)
                return e.problem
            } catch {
                XCTFail("\(error)")
                return nil
            }
        }
        XCTAssertNil(problem { _ in })
        XCTAssertEqual(problem { $0.scales.removeLast() }, .malformed(reason: "3 scales for 4 blocks"))
        XCTAssertEqual(problem { $0.codes.append(0) }, .malformed(reason: "65 bytes of codes for 128 4-bit codes"))
        XCTAssertEqual(problem { $0.zeroPoints = nil }, .malformed(reason: "asymmetric, yet it has no zero points"))
        XCTAssertEqual(problem { $0.zeroPoints![1] = .nan }, .malformed(reason: "zero point 1 is nan"))
        XCTAssertEqual(problem { $0.scales[2] = .infinity }, .malformed(reason: "scale 2 is inf"))
        XCTAssertEqual(problem { $0.isSymmetric = true }, .malformed(reason: "symmetric, yet it has zero points"))
        XCTAssertEqual(problem { $0.bits = 9 }, .malformed(reason: "9 bits; codes have 2 to 8"))
        XCTAssertEqual(problem { $0.layout = BlockLayout(shape: [4, 32], axis: 0, granularity: .group(32)) },
                       .malformed(reason: "its block layout [1, 32] over [4, 32] does not describe shape [2, 64]"))
        XCTAssertEqual(problem { $0.layout.columns = 0 }, .malformed(reason: "its block layout [1, 0] over [2, 64] does not describe shape [2, 64]"))
        XCTAssertEqual(problem { $0.shape = [2, 64, 1] },
                       .badShape(shape: [2, 64, 1], type: nil, reason: "a quantized tensor must be a matrix with at least one row and one column"))
        XCTAssertEqual(problem { $0.shape = [Int.max, 2]; $0.layout.shape = [Int.max, 2] },
                       .badShape(shape: [Int.max, 2], type: nil, reason: "too many elements"))
        // Finite steps and zero points whose product is not finite.
        XCTAssertEqual(problem { $0.scales[0] = 3e38; $0.zeroPoints![0] = -1e6 }.map { if case .nonFinite = $0 { return true } else { return false } }, true)
    }

    // MARK: GGUF → codes

    func testCodesSurviveEQMToGGUFToEQM() throws {
        let cases: [(String, Int, Granularity, [Int])] = [
            ("absmax", 8, .group(32), [3, 64]), ("absmax", 8, .channel, [4, 96]), ("symquant", 8, .group(64), [2, 128]),
            ("absmax", 4, .group(32), [3, 64]), ("symquant", 4, .group(32), [4, 64]),
            ("simquant", 4, .group(32), [3, 96]), ("simquant", 4, .group(128), [2, 256]),
        ]
        for (i, (method, bits, granularity, shape)) in cases.enumerated() {
            let label = "\(method) \(bits)-bit \(granularity)"
            let q = try W.quantize(method, bits: bits, granularity, shape: shape, seed: UInt64(300 + i))
            let encoded = try GGUFTensorEncoder.encode(q, name: "w", request: .auto)
            let f = try W.open(W.file([encoded]))
            let info = try XCTUnwrap(f.tensor("w"))
            let back = try f.quantizedTensor(info)
            XCTAssertEqual(back.codes, q.codes, "\(label): codes kept exactly")
            XCTAssertEqual(back.shape, shape)
            XCTAssertEqual(back.layout, BlockLayout(shape: shape, axis: 0, granularity: .group(32)))
            XCTAssertEqual(back.bits, bits <= 4 ? 4 : 8)
            XCTAssertEqual(back.isSigned, q.isSigned)
            XCTAssertEqual(back.isSymmetric, q.isSymmetric)
            XCTAssertEqual(back.method, method == "simquant" ? "simquant" : "absmax")
            // One f16 step per block of 32: the original block's step, rounded.
            let cols = shape[1]
            let expectedScales = (0..<(q.elementCount / 32)).map { b -> Float in
                let e = b * 32
                return Float(Float16(q.scales[(e / cols / q.layout.rows) * q.layout.scaleShape[1] + (e % cols) / q.layout.columns]))
            }
            XCTAssertEqual(back.scales, expectedScales, label)
            let ggml = try f.floats(of: info, threads: 1)
            if q.isSymmetric {
                XCTAssertEqual(back.dequantized(), ggml, "\(label): (code − 0)·d is ggml's value bit for bit")
            } else {
                let worst = zip(back.dequantized(), ggml).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst, 1e-6, "\(label): (q − z)·d against d·q + m")
                let z = try XCTUnwrap(back.zeroPoints)
                let original = q.zeroPoints!
                for b in 0..<z.count {
                    let e = b * 32
                    let zq = original[(e / cols / q.layout.rows) * q.layout.scaleShape[1] + (e % cols) / q.layout.columns]
                    XCTAssertEqual(z[b], zq, accuracy: 0.02 * Swift.max(1, abs(zq)), "\(label): z = −m/d near the integer zero point")
                }
            }
            // And back to GGUF: the same bytes.
            let again = try GGUFTensorEncoder.encode(back, name: "w")
            XCTAssertEqual(again.plan.route, .exact)
            XCTAssertEqual(again.bytes, Array(f.bytes(of: info)), "\(label): GGUF → codes → GGUF is the identity")
        }
    }

    func testZeropointCodesComeBackShiftedBy8() throws {
        let q = try W.quantize("zeropoint", bits: 4, .group(32), shape: [2, 64], seed: 7)
        let f = try W.open(W.file([try GGUFTensorEncoder.encode(q, name: "w")]))
        let back = try f.quantizedTensor(f.tensor("w")!)
        XCTAssertEqual((0..<q.elementCount).map { back.code(at: $0) }, (0..<q.elementCount).map { q.code(at: $0) + 8 },
                       "signed codes become Q4_1's unsigned q = code + 8")
        XCTAssertLessThan(zip(back.dequantized(), q.dequantized()).map { abs($0 - $1) }.max()!, 1e-3)
    }

    func testCodesOfFilesTheGGUFPackageWrote() throws {
        let f = try GGUFFile(path: TestFiles.fixture("gguf/all_types.gguf"))
        for name in ["q8_0_2d", "q4_0_2d", "q4_1_2d"] {
            let info = try XCTUnwrap(f.tensor(name))
            let back = try f.quantizedTensor(info)
            let ggml = try f.floats(of: info, threads: 1)
            if info.type == .Q4_1 {
                XCTAssertLessThan(zip(back.dequantized(), ggml).map { abs($0 - $1) }.max()!, 1e-6, name)
            } else {
                XCTAssertEqual(back.dequantized(), ggml, name)
            }
            XCTAssertEqual(try GGUFTensorEncoder.encode(back, name: name).bytes, Array(f.bytes(of: info)),
                           "\(name): llama.cpp-style blocks → codes → the same blocks")
        }
        func problem(_ name: String) -> GGUFConversionError.Problem? {
            do {
                _ = try f.quantizedTensor(f.tensor(name)!)
                return nil
            } catch let e as GGUFConversionError {
                XCTAssertTrue(e.description.hasPrefix(f.path + ": tensor \(name): "), e.description)
                return e.problem
            } catch {
                XCTFail("\(error)")
                return nil
            }
        }
        XCTAssertEqual(problem("f32_2d"), .notCodes(type: .F32))
        XCTAssertEqual(problem("q4_k_2d"), .notCodes(type: .Q4_K))
        XCTAssertEqual(problem("q4_0_1d"), .badShape(shape: [64], type: .Q4_0, reason: "EasyQuant's quantized tensors are matrices"))
        XCTAssertEqual(problem("q8_0_3d"), .badShape(shape: [2, 2, 64], type: .Q8_0, reason: "EasyQuant's quantized tensors are matrices"))
    }

    func testZeroStepBlocksAndNonFiniteStepsInGGUF() throws {
        // A constant block: the reference Q4_1 quantizer gives d = 0, m = the constant.
        let constant = try GGUFTensorEncoder.encode(floats: [Float](repeating: 0, count: 32) + [Float](repeating: 0.75, count: 32),
                                                    shape: [2, 32], name: "c", as: .Q4_1)
        let f = try W.open(W.file([constant]), name: "const.gguf")
        XCTAssertThrowsError(try f.quantizedTensor(f.tensor("c")!)) {
            XCTAssertEqual(($0 as? GGUFConversionError)?.problem, .zeroStepWithMinimum(block: 1, offset: f.tensor("c")!.offset + 20, minimum: 0.75))
            XCTAssertTrue("\($0)".hasPrefix("const.gguf: tensor c: "), "\($0)")
        }
        let zeros = try GGUFTensorEncoder.encode(floats: [Float](repeating: 0, count: 32), shape: [1, 32], name: "z", as: .Q4_1)
        let fz = try W.open(W.file([zeros]))
        let back = try fz.quantizedTensor(fz.tensor("z")!)
        XCTAssertEqual(back.scales, [0])
        XCTAssertEqual(back.zeroPoints, [0])
        XCTAssertEqual(back.dequantized(), [Float](repeating: 0, count: 32))

        // An infinite d, written as raw bytes.
        var block = [UInt8](repeating: 0, count: 34)
        block[0] = 0x00; block[1] = 0x7C
        let sink = MemorySink()
        let w = try GGUFWriter(sink: sink, name: "inf.gguf", metadata: [], tensors: [GGUFTensorDeclaration(name: "x", shape: [1, 32], type: .Q8_0)])
        try w.append("x", block)
        try w.finish()
        let fi = try W.open(sink.bytes, name: "inf.gguf")
        XCTAssertThrowsError(try fi.quantizedTensor(fi.tensor("x")!)) {
            XCTAssertEqual(($0 as? GGUFError)?.problem, .nonFinite(tensor: "x", block: 0, offset: fi.tensor("x")!.offset))
        }
    }

    // MARK: Hostile declarations and appends

    func testBadDeclarationsAreTypedErrors() {
        let ok = GGUFTensorDeclaration(name: "w", shape: [2, 32], type: .Q8_0)
        func problem(metadata: [(key: String, value: GGUFValue)] = [], tensors: [GGUFTensorDeclaration] = [],
                     alignment: Int = 32) -> GGUFWriteError.Problem? {
            let sink = MemorySink()
            do {
                _ = try GGUFWriter(sink: sink, name: "out.gguf", metadata: metadata, tensors: tensors, alignment: alignment)
                return nil
            } catch let e as GGUFWriteError {
                XCTAssertTrue(e.description.hasPrefix("out.gguf: "), e.description)
                XCTAssertFalse(e.description.contains("\n"), e.description)
                XCTAssertTrue(sink.bytes.isEmpty, "nothing written for a refused declaration")
                return e.problem
            } catch {
                XCTFail("\(error)")
                return nil
            }
        }
        XCTAssertNil(problem(metadata: [("a", .int8(1))], tensors: [ok]))
        for a in [0, 1, 4, 3, 48, GGUFFile.maxAlignment * 2, -32] { XCTAssertEqual(problem(alignment: a), .badAlignment(a)) }
        XCTAssertEqual(problem(metadata: [("general.alignment", .uint32(64))]), .alignmentKey(.uint32(64), alignment: 32))
        XCTAssertEqual(problem(metadata: [("general.alignment", .uint64(32))]), .alignmentKey(.uint64(32), alignment: 32))
        XCTAssertEqual(problem(metadata: [("a", .int8(1)), ("", .int8(2))]), .emptyKey(index: 1))
        let long = String(repeating: "k", count: 65_536)
        XCTAssertEqual(problem(metadata: [(long, .bool(true))]), .keyTooLong(key: long, bytes: 65_536))
        XCTAssertNil(problem(metadata: [(String(long.dropLast()), .bool(true))]))
        XCTAssertEqual(problem(metadata: [("a", .int8(1)), ("b", .int8(1)), ("a", .string("x"))]), .duplicateKey("a"))
        XCTAssertEqual(problem(metadata: [("m", .array(.int32, [.int32(1), .int64(2)]))]),
                       .mixedArray(key: "m", index: 1, declared: .int32, found: .int64))
        XCTAssertEqual(problem(metadata: [("m", .array(.array, [.array(.int8, [])]))]), .nestedArray(key: "m"))
        XCTAssertEqual(problem(metadata: [("m", .array(.string, [.string("a"), .array(.string, [])]))]),
                       .mixedArray(key: "m", index: 1, declared: .string, found: .array))

        let name63 = String(repeating: "n", count: 63), name64 = String(repeating: "n", count: 64)
        XCTAssertNil(problem(tensors: [GGUFTensorDeclaration(name: name63, shape: [1], type: .F32)]))
        XCTAssertEqual(problem(tensors: [GGUFTensorDeclaration(name: name64, shape: [1], type: .F32)]),
                       .badTensorName(name64, reason: "is 64 bytes long; llama.cpp takes at most 63"))
        let multibyte = String(repeating: "é", count: 32)  // 64 bytes in 32 characters
        XCTAssertEqual(problem(tensors: [GGUFTensorDeclaration(name: multibyte, shape: [1], type: .F32)]),
                       .badTensorName(multibyte, reason: "is 64 bytes long; llama.cpp takes at most 63"))
        XCTAssertEqual(problem(tensors: [GGUFTensorDeclaration(name: "", shape: [1], type: .F32)]), .badTensorName("", reason: "is empty"))
        XCTAssertEqual(problem(tensors: [ok, GGUFTensorDeclaration(name: "x", shape: [1], type: .F32), ok]), .duplicateTensor("w"))
        func shape(_ s: [Int], _ t: GGMLType) -> GGUFWriteError.Problem? { problem(tensors: [GGUFTensorDeclaration(name: "s", shape: s, type: t)]) }
        XCTAssertEqual(shape([], .F32), .badShape(tensor: "s", shape: [], type: .F32, reason: "GGUF tensors have 1 to 4 dimensions, not 0"))
        XCTAssertEqual(shape([1, 1, 1, 1, 1], .F32), .badShape(tensor: "s", shape: [1, 1, 1, 1, 1], type: .F32, reason: "GGUF tensors have 1 to 4 dimensions, not 5"))
        XCTAssertEqual(shape([2, 0], .F32), .badShape(tensor: "s", shape: [2, 0], type: .F32, reason: "every dimension must be at least 1"))
        XCTAssertEqual(shape([-2, -3], .F32), .badShape(tensor: "s", shape: [-2, -3], type: .F32, reason: "every dimension must be at least 1"))
        XCTAssertEqual(shape([2, 48], .Q8_0), .badShape(tensor: "s", shape: [2, 48], type: .Q8_0,
            reason: "the row length 48 (the last dimension) is not a multiple of Q8_0's block size 32"))
        XCTAssertEqual(shape([Int.max, 2], .F32), .badShape(tensor: "s", shape: [Int.max, 2], type: .F32,
            reason: "its dimensions multiply to more elements than can be counted"))
        XCTAssertEqual(shape([Int.max / 2], .F32), .badShape(tensor: "s", shape: [Int.max / 2], type: .F32,
            reason: "\(Int.max / 2) elements of F32 take more bytes than can be counted"))
        // Each fits; together, with the padding, they would end past Int.max.
        let quarter = Int.max / 4 - 1  // 2^62 − 4 bytes of I16: padded to 2^62
        XCTAssertEqual(problem(tensors: [GGUFTensorDeclaration(name: "h1", shape: [quarter], type: .I16),
                                         GGUFTensorDeclaration(name: "h2", shape: [quarter], type: .I16)]), .tooLarge(tensor: "h2"))
    }

    func testBadAppendsAreTypedErrorsAndTheWriterStaysUsable() throws {
        let decls = [GGUFTensorDeclaration(name: "a", shape: [2, 32], type: .Q8_0), GGUFTensorDeclaration(name: "b", shape: [3], type: .F32)]
        let sink = MemorySink()
        let w = try GGUFWriter(sink: sink, name: "out.gguf", metadata: [], tensors: decls)
        func problem(_ body: () throws -> Void) -> GGUFWriteError.Problem? {
            do {
                try body()
                return nil
            } catch let e as GGUFWriteError {
                XCTAssertTrue(e.description.hasPrefix("out.gguf: "), e.description)
                return e.problem
            } catch {
                XCTFail("\(error)")
                return nil
            }
        }
        let start = sink.bytes.count
        XCTAssertEqual(problem { try w.append("a", [UInt8](repeating: 0, count: 67)) },
                       .wrongByteCount(tensor: "a", type: .Q8_0, shape: [2, 32], expected: 68, got: 67))
        XCTAssertEqual(problem { try w.append("a", [UInt8](repeating: 0, count: 69)) },
                       .wrongByteCount(tensor: "a", type: .Q8_0, shape: [2, 32], expected: 68, got: 69))
        XCTAssertEqual(problem { try w.append("b", [UInt8](repeating: 0, count: 12)) }, .outOfOrder(expected: "a", got: "b"))
        XCTAssertEqual(problem { try w.finish() }, .missingTensors(next: "a", remaining: 2))
        let f16 = try GGUFTensorEncoder.encode(floats: [Float](repeating: 1, count: 64), shape: [2, 32], name: "a", as: .F16)
        XCTAssertEqual(problem { try w.append(f16) }, .wrongDeclaration(tensor: "a", declared: "Q8_0 [2, 32]", got: "F16 [2, 32]"))
        let reshaped = try GGUFTensorEncoder.encode(floats: [Float](repeating: 1, count: 64), shape: [64], name: "a", as: .Q8_0)
        XCTAssertEqual(problem { try w.append(reshaped) }, .wrongDeclaration(tensor: "a", declared: "Q8_0 [2, 32]", got: "Q8_0 [64]"))
        XCTAssertEqual(sink.bytes.count, start, "refused appends write nothing")

        try w.append(try GGUFTensorEncoder.encode(floats: [Float](repeating: 1, count: 64), shape: [2, 32], name: "a", as: .Q8_0))
        XCTAssertEqual(w.written, 1)
        XCTAssertEqual(problem { try w.append("a", [UInt8](repeating: 0, count: 68)) }, .outOfOrder(expected: "b", got: "a"))
        try w.append("b", [UInt8](repeating: 0, count: 12))
        XCTAssertEqual(problem { try w.append("c", [UInt8](repeating: 0, count: 4)) }, .noTensorLeft(got: "c"))
        XCTAssertEqual(try w.finish(), sink.bytes.count)
        XCTAssertEqual(problem { try w.finish() }, .finished)
        XCTAssertEqual(problem { try w.append("b", [UInt8](repeating: 0, count: 12)) }, .finished)
        XCTAssertEqual(try W.open(sink.bytes).tensors.map(\.name), ["a", "b"])

        // A sink written behind the writer's back: the size check catches it at finish.
        let shared = MemorySink()
        let w2 = try GGUFWriter(sink: shared, name: "out.gguf", metadata: [], tensors: [])
        try shared.write([1, 2, 3])
        XCTAssertEqual(problem { try w2.finish() }, .sizeMismatch(expected: w2.fileSize, written: UInt64(w2.fileSize + 3)))
        XCTAssertEqual(problem { try w2.finish() }, .failedEarlier)
    }
}

/// Shared helpers of the GGUF writer tests.
enum GGUFWriterTest {
    /// A metadata value of every type, in the order written.
    static let everyValue: [(key: String, value: GGUFValue)] = [
        ("general.architecture", .string("easyquant-test")),
        ("test.u8", .uint8(255)), ("test.i8", .int8(-128)), ("test.u16", .uint16(65535)), ("test.i16", .int16(-32768)),
        ("test.u32", .uint32(.max)), ("test.i32", .int32(.min)), ("test.u64", .uint64(.max)), ("test.i64", .int64(.min)),
        ("test.f32", .float32(-1.5e-3)), ("test.f32_subnormal", .float32(.leastNonzeroMagnitude)), ("test.f32_negative_zero", .float32(-0.0)),
        ("test.f64", .float64(.pi)), ("test.bool_true", .bool(true)), ("test.bool_false", .bool(false)),
        ("test.string", .string("h\u{e9}llo w\u{f6}rld \u{2713} \u{65e5}\u{672c}\u{8a9e} \u{1f999}")),
        ("test.string_empty", .string("")), ("test.string_nul", .string("a\u{0}b\nc\t\"q\"")),
        ("test.\u{fc}nicode_key", .string("key with unicode")),
        ("test.array_u8", .array(.uint8, [.uint8(0), .uint8(255)])),
        ("test.array_i8", .array(.int8, [.int8(-128), .int8(127)])),
        ("test.array_u16", .array(.uint16, [.uint16(0), .uint16(65535)])),
        ("test.array_i16", .array(.int16, [.int16(-32768), .int16(7)])),
        ("test.array_u32", .array(.uint32, [.uint32(.max)])),
        ("test.array_i32", .array(.int32, [.int32(.min), .int32(.max), .int32(0)])),
        ("test.array_u64", .array(.uint64, [.uint64(0), .uint64(.max)])),
        ("test.array_i64", .array(.int64, [.int64(.min), .int64(.max)])),
        ("test.array_f32", .array(.float32, [.float32(0), .float32(-0.0), .float32(.greatestFiniteMagnitude), .float32(-2.5e-7)])),
        ("test.array_f64", .array(.float64, [.float64(.leastNonzeroMagnitude * 3), .float64(-1)])),
        ("test.array_bool", .array(.bool, [.bool(true), .bool(false)])),
        ("test.array_string", .array(.string, ["<|endoftext|>", "", "\u{120}the", "\u{65e5}\u{1f999}"].map(GGUFValue.string))),
        ("test.array_empty_i32", .array(.int32, [])),
        ("test.array_empty_string", .array(.string, [])),
    ]

    /// Gaussian weights (sd 0.05) with every 37th value ×8, row-major.
    static func weights(_ rows: Int, _ cols: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<(rows * cols)).map { i in Float(rng.nextGaussian() * 0.05) * (i % 37 == 0 ? 8 : 1) }
    }

    /// `values` (or seeded weights) of `shape` quantized by EasyQuant's own method.
    static func quantize(_ method: String, bits: Int, _ granularity: Granularity, values: [Float]? = nil, shape: [Int],
                         seed: UInt64 = 0, axis: Int = 0) throws -> QuantizedTensor {
        let x = values ?? weights(shape[0], shape[1], seed: seed)
        let m = try QuantizationMethods.make(method, bits: bits)
        return try x.withUnsafeBufferPointer {
            try m.quantize($0, layout: BlockLayout(shape: shape, axis: axis, granularity: granularity), name: "test")
        }
    }

    /// The bytes of a GGUF file holding `tensors`, written in memory.
    static func file(_ tensors: [GGUFEncodedTensor], metadata: [(key: String, value: GGUFValue)] = []) throws -> [UInt8] {
        let sink = MemorySink()
        let w = try GGUFWriter(sink: sink, metadata: metadata, tensors: tensors.map(\.plan.declaration))
        for t in tensors { try w.append(t) }
        try w.finish()
        return sink.bytes
    }

    static func open(_ bytes: [UInt8], name: String = "written.gguf") throws -> GGUFFile {
        try GGUFFile(file: MappedFile(bytes: bytes, name: name))
    }
}
