import EasyQuant
import Foundation
import XCTest

/// `ModelInspector` on whole files: what the report says must equal what the pieces
/// compute on the tensors themselves, and hand-computed values where they can be.
final class InspectReportTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws { dir = try TestFiles.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// One 1×4 weight [1, -3, 0.5, 4], absmax per tensor: step 4/127, codes [32, -95, 16, 127]
    /// (see QuantizerTests), plus a 1-D bias kept in float.
    func testHandComputedSingleTensor() throws {
        let folder = dir + "/one"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let w = try SafetensorsWriter(path: folder + "/model.safetensors", entries: [
            .init(name: "proj.weight", dtype: .f32, shape: [1, 4]), .init(name: "proj.bias", dtype: .f32, shape: [2]),
        ])
        try w.write(floats: [1, -3, 0.5, 4])
        try w.write(floats: [0, 0.25])
        try w.finish()
        let out = dir + "/one.eqm"
        _ = try ModelConverter(options: ConversionOptions(method: "absmax", granularity: .tensor)).convert(SafetensorsModel(path: folder), to: out)

        let options = InspectionOptions(statistics: true, original: folder, histogramTensors: ["proj.weight"], histogramBins: 4)
        let report = try ModelInspector(options: options).inspect(path: out)
        XCTAssertEqual(report.kind, .eqm)
        XCTAssertEqual(report.tensors.map(\.name), ["proj.weight", "proj.bias"], "file order (the source's data order)")
        let t = report.tensors[0]
        XCTAssertEqual(t.storage, "int8 sym tensor")
        XCTAssertEqual(t.elementCount, 4)
        XCTAssertEqual(t.entropyBitsPerWeight, 2, "four different codes: log2(4)")
        XCTAssertEqual(t.codes?.boundBytes, 1)
        XCTAssertEqual(t.clampLimits, -127...127)
        XCTAssertEqual(t.clampShare, 0.25, "only 127 sits at a limit")
        XCTAssertEqual(t.scaleRange, Float(4) / 127...Float(4) / 127)
        XCTAssertNil(t.zeroPointRange)

        let step = Float(4) / 127
        let dequantized: [Float] = [32, -95, 16, 127].map { $0 * step }
        let s = try XCTUnwrap(t.statistics)
        XCTAssertEqual(s.minimum, -95 * step)
        XCTAssertEqual(s.maximum, 127 * step)
        XCTAssertEqual(s.absMax, 127 * step)
        XCTAssertEqual(s.zeroShare, 0)
        XCTAssertEqual(s, TensorStatistics(dequantized))
        let e = try XCTUnwrap(t.error)
        XCTAssertEqual(e, ErrorMetrics(original: [1, -3, 0.5, 4], reconstructed: dequantized))
        XCTAssertEqual(e.maxAbsError, Double(abs(Float(-3) - (-95 * step))))

        // The float bias: stored exactly, no codes, its zero counted.
        let bias = report.tensors[1]
        XCTAssertEqual(bias.storage, "f32")
        XCTAssertNil(bias.entropyBitsPerWeight)
        XCTAssertEqual(bias.statistics?.zeroShare, 0.5)
        XCTAssertEqual(bias.error?.mse, 0)

        // The bound: codes at 2 bits (1 byte) + the stored scale + the stored bias.
        let eqm = try EQMFile(path: out)
        let record = eqm.record("proj.weight")!
        XCTAssertEqual(report.boundBytes, 1 + Double(record.scales!.length) + Double(eqm.record("proj.bias")!.data.length))
        XCTAssertEqual(report.tensorBytes, eqm.tensors.reduce(0) { $0 + $1.storedBytes })
        XCTAssertEqual(report.actualOverBound, Double(report.tensorBytes) / report.boundBytes)
        XCTAssertEqual(report.quantizedError?.pooled, e, "one quantized tensor: the summary is its metrics")

        XCTAssertEqual(report.histograms.count, 1)
        XCTAssertEqual(report.histograms[0].histogram.counts.reduce(0, +), 4)
        XCTAssertEqual(report.histograms[0].histogram.lower, Double(-95 * step))
    }

    /// On a GPT-2-shaped model, every number in the report equals the library's own
    /// computation on the decoded tensors, for a packed asymmetric file.
    func testReportAgreesWithTheTensors() throws {
        let folder = try CLIFixtures.makeModel(in: dir)
        let out = dir + "/m.eqm"
        let options = ConversionOptions(method: "simquant", bits: 4, granularity: .group(8), threads: 2)
        _ = try ModelConverter(options: options).convert(SafetensorsModel(path: folder), to: out)
        let report = try ModelInspector(options: InspectionOptions(statistics: true, original: folder, threads: 2)).inspect(path: out)
        let eqm = try EQMFile(path: out)
        let source = try SafetensorsModel(path: folder)
        XCTAssertEqual(report.tensors.map(\.name), eqm.tensors.map(\.name))
        XCTAssertEqual(report.notInFile, ["h.0.attn.bias"], "the dropped mask buffer is skipped, not an error")
        XCTAssertEqual(report.method, "simquant")
        XCTAssertEqual(report.bits, 4)
        XCTAssertEqual(report.sources.first?.sha256, try SHA256Hasher.hex(ofFile: folder + "/model.safetensors"))
        var bound = 0.0
        for (t, record) in zip(report.tensors, eqm.tensors) {
            let values = try eqm.floats(record)
            let original = source.floats(of: source.tensor(record.name)!)
            XCTAssertEqual(t.statistics, TensorStatistics(values), record.name)
            XCTAssertEqual(t.error, ErrorMetrics(original: original, reconstructed: values), record.name)
            XCTAssertEqual(t.storedBytes, record.storedBytes)
            if let q = record.quantization {
                XCTAssertEqual(t.storage, "uint4 asym g8 ax\(q.layout.axis!)")
                let qt = try eqm.quantizedTensor(record)
                XCTAssertEqual(t.codes, CodeEntropy(qt))
                XCTAssertEqual(t.zeroPointRange, qt.zeroPoints!.min()!...qt.zeroPoints!.max()!)
                XCTAssertLessThanOrEqual(t.entropyBitsPerWeight!, 4)
                XCTAssertGreaterThan(t.entropyBitsPerWeight!, 2.5, "gaussian weights use most of 16 codes")
                bound += CodeEntropy(qt).boundBytes + Double(record.scales!.length + record.zeroPoints!.length)
            } else {
                bound += Double(record.data.length)
            }
        }
        XCTAssertEqual(report.boundBytes, bound, accuracy: 1e-9 * bound)
        // Model-wide error = pooled over the quantized tensors.
        var pooled = ErrorMetrics()
        for t in report.tensors where t.isQuantized { pooled.merge(t.error!) }
        XCTAssertEqual(report.quantizedError?.pooled, pooled)
        XCTAssertLessThan(report.quantizedError!.pooled.sqnrDB, report.allError!.pooled.sqnrDB, "exact float tensors raise the all-tensor SQNR")
        XCTAssertGreaterThan(report.quantizedError!.pooled.sqnrDB, 15, "4-bit groups of 8 on gaussian weights")
    }

    func testSafetensorsInputAndTypos() throws {
        let folder = try CLIFixtures.makeModel(in: dir)
        let report = try ModelInspector(options: InspectionOptions(statistics: true)).inspect(path: folder)
        XCTAssertEqual(report.kind, .safetensors)
        XCTAssertEqual(report.tensors.count, 9, "mask buffer included: safetensors input is shown as it is")
        XCTAssertTrue(report.tensors.allSatisfy { $0.storage == "f32" && $0.bitsPerWeight == 32 })
        XCTAssertNil(report.tensors[0].entropyBitsPerWeight)

        XCTAssertThrowsError(try ModelInspector(options: InspectionOptions(histogramTensors: ["wte.wieght"])).inspect(path: folder)) {
            XCTAssertEqual($0 as? InspectionError, .noSuchTensor(file: folder, tensor: "wte.wieght", known: report.tensors.map(\.name)))
        }
        // The original lacks a tensor the file holds: refused, naming the tensor.
        let out = dir + "/m.eqm"
        _ = try ModelConverter(options: ConversionOptions()).convert(SafetensorsModel(path: folder), to: out)
        let other = dir + "/other.safetensors"
        let w = try SafetensorsWriter(path: other, entries: [.init(name: "wte.weight", dtype: .f32, shape: [40, 16])])
        try w.write(floats: [Float](repeating: 0, count: 640))
        try w.finish()
        XCTAssertThrowsError(try ModelInspector(options: InspectionOptions(original: other)).inspect(path: out)) {
            XCTAssertTrue("\($0)".hasPrefix(other + ": has no tensor "), "\($0)")
        }
    }

    func testRepresentativeTensorsForTheDefaultPlot() throws {
        let folder = try CLIFixtures.makeModel(in: dir)
        let out = dir + "/m.eqm"
        _ = try ModelConverter(options: ConversionOptions()).convert(SafetensorsModel(path: folder), to: out)
        let model = try InspectedModel.open(out)
        let picks = ModelInspector.representativeTensors(model).map { model.tensorNames[$0] }
        XCTAssertEqual(picks, ["wte.weight", "h.0.attn.c_attn.weight", "h.0.mlp.c_fc.weight", "h.0.mlp.c_proj.weight"])

        // Layers 0, 1, 2 and 10, stored alphabetically (h.10 before h.2): the deepest is 10.
        let many = dir + "/many.safetensors"
        let names = ["h.0.mlp.c_proj.weight", "h.1.mlp.c_proj.weight", "h.10.mlp.c_proj.weight", "h.2.mlp.c_proj.weight"]
        let w = try SafetensorsWriter(path: many, entries: names.map { .init(name: $0, dtype: .f32, shape: [2, 2]) })
        for _ in names { try w.write(floats: [1, 2, 3, 4]) }
        try w.finish()
        let layers = try InspectedModel.open(many)
        XCTAssertEqual(ModelInspector.representativeTensors(layers).map { layers.tensorNames[$0] }, ["h.10.mlp.c_proj.weight", "h.0.mlp.c_proj.weight", "h.1.mlp.c_proj.weight", "h.2.mlp.c_proj.weight"],
                       "the deepest c_proj, then a spread to make up the few")
    }
}
