import EasyQuant
import XCTest

/// The Swift LKD on Llama-family blocks against scripts/lkd_llama_reference.py (PyTorch,
/// float32, transformers' own `LlamaDecoderLayer` and `Qwen2DecoderLayer` as the student) on
/// the two tiny random checkpoints of fixtures/lkd-llama: same windows, same batch order,
/// same hyperparameters.
final class DistillationLlamaReferenceTests: XCTestCase {
    struct Model {
        var name: String
        var folder: String
        var sha256: String
        var windows: [[Int32]]
        var batches: [Int: [[Int]]]
        var blocks: [(layer: Int, mseBefore: Double, mseAfter: Double, losses: [Double])]
    }

    func loadReference() throws -> (options: LayerwiseDistillation.Options, models: [Model]) {
        let text = try String(contentsOfFile: TestFiles.fixture("reference/lkd-llama-reference.json"), encoding: .utf8)
        let json = try JSONValue.parse(text)
        func ints(_ v: JSONValue?) -> [Int] { v?.arrayValue?.compactMap(\.intValue) ?? [] }
        func doubles(_ v: JSONValue?) -> [Double] { v?.arrayValue?.compactMap(\.doubleValue) ?? [] }
        let o = try XCTUnwrap(json["options"])
        let options = LayerwiseDistillation.Options(
            bits: try XCTUnwrap(o["bits"]?.intValue), groupSize: try XCTUnwrap(o["group_size"]?.intValue),
            steps: try XCTUnwrap(o["steps"]?.intValue), learningRate: try XCTUnwrap(o["learning_rate"]?.doubleValue),
            batchSize: try XCTUnwrap(o["batch_size"]?.intValue), seed: UInt64(try XCTUnwrap(o["seed"]?.intValue)),
            layers: ints(o["layers"]), threads: 2)
        let models = try XCTUnwrap(json["models"]?.arrayValue).map { m -> Model in
            var batches: [Int: [[Int]]] = [:]
            for (key, value) in m["batches"]?.objectMembers ?? [] { batches[Int(key)!] = value.arrayValue!.map(ints) }
            return Model(
                name: try XCTUnwrap(m["name"]?.stringValue), folder: try XCTUnwrap(m["folder"]?.stringValue),
                sha256: try XCTUnwrap(m["sha256"]?.stringValue),
                windows: try XCTUnwrap(m["windows"]?.arrayValue).map { ints($0).map(Int32.init) }, batches: batches,
                blocks: try XCTUnwrap(m["blocks"]?.arrayValue).map {
                    (try XCTUnwrap($0["layer"]?.intValue), try XCTUnwrap($0["mse_before"]?.doubleValue),
                     try XCTUnwrap($0["mse_after"]?.doubleValue), doubles($0["losses"]))
                })
        }
        return (options, models)
    }

    /// The loss curves agree step by step, for the Llama model (no biases, 4 query heads
    /// sharing 2 kv heads) and the Qwen2 model (q/k/v biases, 6 query heads sharing 2).
    ///
    /// Tolerance 2e-6 relative on every step and on the MSE before and after: both sides
    /// start from the same weights and the same fake-quantized Ŵ (the quantizer is
    /// deterministic float arithmetic, identical in both), so the differences are float
    /// summation orders; every step agreed to < 7e-7 (most to 1-4e-7). Later steps could in
    /// principle part if a weight sat on a 4-bit rounding boundary on one side only (see
    /// `DistillationReferenceTests`), which would show here as a failure to investigate. The
    /// bound is far below the 1-50% step-to-step changes of the curves, which a different
    /// batch order, quantizer, optimizer or gradient would produce.
    func testLossCurvesMatchPyTorch() throws {
        let (options, models) = try loadReference()
        XCTAssertEqual(models.map(\.name), ["llama", "qwen2"])
        for model in models {
            let directory = TestFiles.root + "/" + model.folder
            XCTAssertEqual(try SHA256Hasher.hex(ofFile: directory + "/model.safetensors"), model.sha256,
                           "\(model.folder) changed since the reference was made: rerun scripts/lkd_llama_reference.py")
            for (layer, expected) in model.batches {
                var order = MiniBatchOrder(windows: model.windows.count, batchSize: options.batchSize, seed: options.seed &+ UInt64(layer))
                XCTAssertEqual((0..<expected.count).map { _ in order.next() }, expected, "batch order of block \(layer)")
            }
            let source = try openWeightSource(path: directory)
            XCTAssertTrue(source.family is LlamaFamily)
            XCTAssertEqual(try source.modelConfig().attentionBias, model.name == "qwen2")
            let result = try LayerwiseDistillation(source: source, options: options).run(windows: model.windows)
            XCTAssertEqual(result.reports.map(\.layer), model.blocks.map(\.layer))
            for (report, expected) in zip(result.reports, model.blocks) {
                XCTAssertEqual(report.losses.count, expected.losses.count)
                print("\(model.name) block \(report.layer): step, Swift loss, PyTorch loss, relative difference")
                for (step, (got, want)) in zip(report.losses, expected.losses).enumerated() {
                    print(String(format: "  %2d  %.7f  %.7f  %+.2e", step + 1, got, want, (got - want) / want))
                }
                print(String(format: "  MSE before %.7f / %.7f, after %.7f / %.7f", report.mseBefore, expected.mseBefore,
                             report.mseAfter, expected.mseAfter))
                for (step, (got, want)) in zip(report.losses, expected.losses).enumerated() {
                    XCTAssertEqual(got, want, accuracy: 2e-6 * want, "\(model.name) block \(report.layer) step \(step + 1)")
                }
                XCTAssertEqual(report.mseBefore, expected.mseBefore, accuracy: 2e-6 * expected.mseBefore, "\(model.name) block \(report.layer)")
                XCTAssertEqual(report.mseAfter, expected.mseAfter, accuracy: 2e-6 * expected.mseAfter, "\(model.name) block \(report.layer)")
                XCTAssertLessThan(report.mseAfter, report.mseBefore, "\(model.name) block \(report.layer)")
            }
        }
    }
}
