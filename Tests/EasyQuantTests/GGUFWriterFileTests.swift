import EasyQuant
import Foundation
import XCTest

/// Whole files from the GGUF writer: the small one committed in fixtures/gguf-writer/ (which
/// scripts/check_gguf_writer.py reads with the Python `gguf` package), rebuilt here byte for
/// byte from its committed .eqm source, and an export of the tiny GPT-2 fixture model.
///
/// `EASYQUANT_MAKE_GGUF_WRITER_FILE=1` makes the committed file instead of comparing
/// (written.eqm from seeded weights, then written.gguf and written.report.json from it);
/// `EASYQUANT_GGUF_CHECK_DIR=DIR` keeps the tiny GPT-2 export in DIR for the Python check.
final class GGUFWriterFileTests: XCTestCase {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    func testWriterOutputMatchesTheCommittedFile() throws {
        let dir = TestFiles.fixture("gguf-writer")
        if Self.environment["EASYQUANT_MAKE_GGUF_WRITER_FILE"] == "1" {
            try GGUFWriterFixture.makeSource(at: dir + "/written.eqm")
            let report = try GGUFExport.export(EQMFile(path: dir + "/written.eqm"), metadata: GGUFWriterFixture.metadata,
                                               floatTypes: GGUFWriterFixture.floatTypes, requests: GGUFWriterFixture.requests) {
                try GGUFWriter(path: dir + "/written.gguf", metadata: $0, tensors: $1)
            }
            try (report.prettyPrinted() + "\n").write(toFile: dir + "/written.report.json", atomically: true, encoding: .utf8)
        }
        let sink = MemorySink()
        let report = try GGUFExport.export(EQMFile(path: dir + "/written.eqm"), metadata: GGUFWriterFixture.metadata,
                                           floatTypes: GGUFWriterFixture.floatTypes, requests: GGUFWriterFixture.requests) {
            try GGUFWriter(sink: sink, name: "written.gguf", metadata: $0, tensors: $1)
        }
        let committed = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/written.gguf")))
        XCTAssertEqual(sink.bytes.count, committed.count)
        if let i = zip(sink.bytes, committed).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            XCTFail("first byte that differs from fixtures/gguf-writer/written.gguf: \(i)")
        }
        XCTAssertEqual(report, try GGUFTest.json("gguf-writer/written.report.json"), "types, routes, summaries and errors as committed")

        // What the committed file holds, as the reader sees it.
        let f = try GGUFFile(path: dir + "/written.gguf")
        let routes = Dictionary(grouping: report["tensors"]!.arrayValue!, by: { $0["route"]!.stringValue! }).mapValues(\.count)
        XCTAssertEqual(routes, ["fromFloats": 7, "exact": 9, "requantized": 3, "dequantized": 3])
        XCTAssertEqual(Set(f.tensors.map(\.type)), [.F32, .F16, .BF16, .Q8_0, .Q4_0, .Q4_1])
        XCTAssertEqual(f.value("general.name")?.stringValue, "EasyQuant GGUF writer fixture")
    }

    func testTinyGPT2ExportReadsBackAsReported() throws {
        let keep = Self.environment["EASYQUANT_GGUF_CHECK_DIR"]
        let dir = try keep ?? TestFiles.temporaryDirectory()
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: dir) } }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let requests = try GGUFWriterFixture.makeTinyGPT2Source(at: dir + "/model.eqm")
        let vocabulary = try GGUFWriterFixture.tinyGPT2Vocabulary()
        let metadata: [(key: String, value: GGUFValue)] = [
            ("general.architecture", .string("easyquant-test")),
            ("general.name", .string("tiny-gpt2 exported by GGUFWriterFileTests")),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.tokens", .array(.string, vocabulary.tokens.map(GGUFValue.string))),
            ("tokenizer.ggml.merges", .array(.string, vocabulary.merges.map(GGUFValue.string))),
        ]
        let eqm = try EQMFile(path: dir + "/model.eqm")
        let report = try GGUFExport.export(eqm, metadata: metadata, floatTypes: [:], requests: requests) {
            try GGUFWriter(path: dir + "/model.gguf", metadata: $0, tensors: $1)
        }
        try (report.prettyPrinted() + "\n").write(toFile: dir + "/model.report.json", atomically: true, encoding: .utf8)

        let f = try GGUFFile(path: dir + "/model.gguf")
        XCTAssertEqual(f.value("tokenizer.ggml.tokens")?.stringArray, vocabulary.tokens)
        XCTAssertEqual(f.value("tokenizer.ggml.merges")?.stringArray?.count, vocabulary.merges.count)
        XCTAssertEqual(f.tensors.map(\.name), eqm.tensors.map(\.name))
        var routes: [String: Int] = [:]
        for (t, entry) in zip(f.tensors, report["tensors"]!.arrayValue!) {
            let record = try eqm.requireRecord(t.name)
            XCTAssertEqual(t.shape, record.shape, t.name)
            XCTAssertEqual(t.type.name, entry["type"]?.stringValue, t.name)
            let got = try f.floats(of: t, threads: 2), want = try eqm.floats(record)
            let worst = zip(got, want).map { abs(Double($0) - Double($1)) }.max()!
            XCTAssertEqual(worst, entry["max_abs_error"]?.doubleValue, "\(t.name): the reported error is the file's")
            routes[entry["route"]!.stringValue!, default: 0] += 1
        }
        XCTAssertEqual(routes, ["exact": 11, "requantized": 5, "dequantized": 1, "fromFloats": 35])
    }

    /// Opt-in (`EASYQUANT_GGUF_MODEL=FILE.gguf`, a model llama.cpp's tools quantized; never
    /// committed): every Q8_0, Q4_0 and Q4_1 matrix goes GGUF → codes → GGUF back to the
    /// same bytes, or is refused with a typed error (a Q4_1 block with d = 0 and m ≠ 0).
    func testCodesOfAModelLlamaCppWroteSurviveARoundTrip() throws {
        guard let path = Self.environment["EASYQUANT_GGUF_MODEL"] else { throw XCTSkip("set EASYQUANT_GGUF_MODEL to a .gguf file") }
        let f = try GGUFFile(path: path)
        var identical: [GGMLType: Int] = [:], refused = 0
        for t in f.tensors where [.Q8_0, .Q4_0, .Q4_1].contains(t.type) && t.shape.count == 2 {
            let back: QuantizedTensor
            do {
                back = try f.quantizedTensor(t)
            } catch let e as GGUFConversionError {
                guard case .zeroStepWithMinimum = e.problem else { throw e }
                refused += 1
                continue
            }
            XCTAssertEqual(try GGUFTensorEncoder.encode(back, name: t.name).bytes, Array(f.bytes(of: t)), t.name)
            identical[t.type, default: 0] += 1
        }
        print("GGUF → codes → GGUF on \(path): identical bytes in \(identical.map { "\($0.value) \($0.key.name)" }.sorted()); refused \(refused)")
        XCTAssertGreaterThan(identical.values.reduce(0, +), 0)
    }
}

/// eqm → GGUF for the tests (the tools will get their own): plans every tensor from the
/// .eqm first (quantized tensors by the planner, float ones as `floatTypes` says, F32 by
/// default), opens the writer with those declarations, then encodes and appends one tensor
/// at a time. Returns the report scripts/check_gguf_writer.py compares with the file.
enum GGUFExport {
    static func export(_ eqm: EQMFile, metadata: [(key: String, value: GGUFValue)], floatTypes: [String: GGMLType],
                       requests: [String: GGUFTypeRequest],
                       writer make: ([(key: String, value: GGUFValue)], [GGUFTensorDeclaration]) throws -> GGUFWriter) throws -> JSONValue {
        let plans = try eqm.tensors.map { r -> GGUFTensorPlan in
            switch r.encoding {
            case .quantized: return try GGUFTensorPlan(quantized: eqm.quantizedTensor(r), name: r.name, request: requests[r.name] ?? .auto)
            case .float: return try GGUFTensorPlan(floats: r.name, shape: r.shape, as: floatTypes[r.name] ?? .F32)
            }
        }
        let writer = try make(metadata, plans.map(\.declaration))
        var entries: [JSONValue] = []
        for (r, plan) in zip(eqm.tensors, plans) {
            let encoded: GGUFEncodedTensor
            switch r.encoding {
            case .quantized: encoded = try GGUFTensorEncoder.encode(eqm.quantizedTensor(r), name: r.name, request: requests[r.name] ?? .auto)
            case .float: encoded = try GGUFTensorEncoder.encode(floats: eqm.floats(r), shape: r.shape, name: r.name, as: plan.type)
            }
            try writer.append(encoded)
            entries.append(.makeObject([
                ("name", .string(r.name)), ("type", .string(plan.type.name)), ("shape", JSONValue(plan.shape)),
                ("route", .string(plan.route.rawValue)), ("summary", .string(plan.summary)),
                ("max_abs_error", .double(encoded.maxAbsError)), ("rms_error", .double(encoded.rmsError)),
            ]))
        }
        try writer.finish()
        let written = metadata + (metadata.contains { $0.key == "general.alignment" } ? [] : [("general.alignment", .uint32(UInt32(writer.alignment)))])
        let meta = written.map { kv in JSONValue.makeObject([("key", .string(kv.key))] + (GGUFTest.canonical(kv.value).objectMembers ?? [])) }
        return .makeObject([("alignment", JSONValue(writer.alignment)), ("metadata", .array(meta)), ("tensors", .array(entries))])
    }
}

/// The sources of the writer-made files.
enum GGUFWriterFixture {
    static let metadata = GGUFWriterTest.everyValue + [("general.name", .string("EasyQuant GGUF writer fixture"))]

    static let floatTypes: [String: GGMLType] = [
        "float.f16": .F16, "float.bf16": .BF16, "float.q8_0": .Q8_0, "float.q4_0": .Q4_0, "float.q4_1": .Q4_1,
    ]

    static let requests: [String: GGUFTypeRequest] = ["zeropoint8.channel.f16": .f16, "simquant8.channel.f32": .f32]

    /// written.eqm: float tensors and quantized ones of every exact mapping and every
    /// fallback, from seeded weights.
    static func makeSource(at path: String) throws {
        let floats: [(String, [Int])] = [
            ("float.f32_1d", [96]), ("float.f32_3d", [2, 3, 32]), ("float.f16", [3, 64]), ("float.bf16", [2, 32]),
            ("float.q8_0", [2, 64]), ("float.q4_0", [2, 64]), ("float.q4_1", [2, 64]),
        ]
        let quantized: [(String, String, Int, Granularity, [Int])] = [
            ("absmax8.channel", "absmax", 8, .channel, [4, 64]),
            ("absmax8.tensor", "absmax", 8, .tensor, [2, 64]),
            ("symquant8.group64", "symquant", 8, .group(64), [3, 128]),
            ("absmax6.channel", "absmax", 6, .channel, [2, 64]),
            ("absmax4.group32", "absmax", 4, .group(32), [4, 64]),
            ("symquant4.group32", "symquant", 4, .group(32), [2, 64]),
            ("simquant4.group32", "simquant", 4, .group(32), [4, 64]),
            ("simquant4.group128", "simquant", 4, .group(128), [2, 256]),
            ("zeropoint4.group32", "zeropoint", 4, .group(32), [2, 64]),
            ("simquant8.channel", "simquant", 8, .channel, [3, 64]),
            ("absmax8.group16", "absmax", 8, .group(16), [2, 64]),
            ("simquant4.group48", "simquant", 4, .group(48), [2, 96]),
            ("zeropoint8.channel.f16", "zeropoint", 8, .channel, [2, 64]),
            ("simquant8.channel.f32", "simquant", 8, .channel, [2, 32]),
            ("absmax8.row48", "absmax", 8, .channel, [2, 48]),
        ]
        let writer = try EQMWriter(path: path)
        for (i, (name, shape)) in floats.enumerated() {
            let n = shape.reduce(1, *)
            let x = GGUFWriterTest.weights(1, n, seed: UInt64(1000 + i))
            try writer.append(PendingTensor(name: name, floats: x, shape: shape, sourceDType: .f32, level: 3))
        }
        for (i, (name, method, bits, granularity, shape)) in quantized.enumerated() {
            let q = try GGUFWriterTest.quantize(method, bits: bits, granularity, shape: shape, seed: UInt64(2000 + i))
            try writer.append(PendingTensor(name: name, quantized: q, sourceDType: .f32, level: 3))
        }
        try writer.finish(metadata: .makeObject([("made_by", .string("GGUFWriterFileTests (EASYQUANT_MAKE_GGUF_WRITER_FILE=1)"))]))
    }

    /// The tiny GPT-2 fixture as an .eqm whose matrices are stored [out, in] (GPT-2's Conv1D
    /// weights transposed), quantized with a different method per matrix; the rest kept in
    /// F32. Returns the `--gguf-type` requests for the export.
    static func makeTinyGPT2Source(at path: String) throws -> [String: GGUFTypeRequest] {
        let model = try SafetensorsFile(path: TestFiles.fixture("tiny-gpt2/model.safetensors"))
        let methods: [(String, Int, Granularity, GGUFTypeRequest)] = [
            ("absmax", 8, .channel, .auto), ("absmax", 4, .group(32), .auto), ("simquant", 4, .group(32), .auto),
            ("symquant", 8, .group(64), .auto), ("simquant", 4, .group(128), .auto), ("zeropoint", 8, .channel, .auto),
            ("absmax", 8, .group(16), .auto), ("simquant", 6, .channel, .auto), ("simquant", 8, .channel, .f16),
        ]
        var requests: [String: GGUFTypeRequest] = [:]
        let writer = try EQMWriter(path: path)
        var matrix = 0
        for info in model.tensors.sorted(by: { $0.name < $1.name }) {
            var x = model.floats(of: info)
            var shape = info.shape
            let isConv1D = info.name.hasSuffix(".weight") && shape.count == 2 && (info.name.contains(".attn.") || info.name.contains(".mlp."))
            if isConv1D || info.name.hasSuffix("wte.weight") {
                if isConv1D {
                    // [in, out] → [out, in]: blocks along the input axis, as ggml computes x·Wᵀ.
                    let (rows, cols) = (shape[0], shape[1])
                    x = (0..<(rows * cols)).map { i in x[(i % rows) * cols + i / rows] }
                    shape = [cols, rows]
                }
                let (method, bits, granularity, request) = info.name.hasSuffix("wte.weight") ? ("absmax", 8, .channel, .auto)
                                                                                             : methods[matrix % methods.count]
                if !info.name.hasSuffix("wte.weight") { matrix += 1 }
                let q = try GGUFWriterTest.quantize(method, bits: bits, granularity, values: x, shape: shape)
                try writer.append(PendingTensor(name: info.name, quantized: q, sourceDType: info.dtype, level: 3))
                requests[info.name] = request
            } else {
                try writer.append(PendingTensor(name: info.name, floats: x, shape: shape, sourceDType: info.dtype, level: 3))
            }
        }
        try writer.finish(metadata: .makeObject([("made_by", .string("GGUFWriterFileTests.testTinyGPT2ExportReadsBackAsReported"))]))
        return requests
    }

    /// The tiny GPT-2's tokens in id order and its merges, as GGUF's tokenizer keys hold them.
    static func tinyGPT2Vocabulary() throws -> (tokens: [String], merges: [String]) {
        let vocab = try GGUFTest.json("tiny-gpt2/vocab.json")
        let pairs = try XCTUnwrap(vocab.objectMembers).map { ($0.key, $0.value.intValue ?? -1) }
        var tokens = [String](repeating: "", count: pairs.count)
        for (token, id) in pairs { tokens[id] = token }
        let text = try String(contentsOfFile: TestFiles.fixture("tiny-gpt2/merges.txt"), encoding: .utf8)
        let merges = text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#version") }
        return (tokens, merges)
    }
}
