import EasyQuant
import Foundation
import XCTest

/// The tiny fixture model calibrated once for the LLM.int8 and AWQ tests, and perplexity on
/// the start of WikiText-2 test.
enum CalibratedFixture {
    /// Windows drawn from the calibration text (small, so the tests stay quick).
    static let samples = 16
    static let length = 256
    /// Evaluation tokens: the first 4096 of wiki.test.hfjoin.txt, 16 windows of 256.
    static let evaluationTokens = 4096

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cached: CalibrationRun?

    /// The calibration run on the tiny fixture, or nil (the test skips) when the fixture or
    /// the calibration text is absent.
    static func run() throws -> CalibrationRun? {
        let model = TestFiles.fixture("tiny-gpt2"), text = TestFiles.fixture("calibration/corpus-calib.txt")
        guard FileManager.default.fileExists(atPath: model), FileManager.default.fileExists(atPath: text) else { return nil }
        lock.lock(); defer { lock.unlock() }
        if let cached { return cached }
        let run = try CalibrationRun(try SafetensorsModel(path: model),
                                     options: CalibrationOptions(file: text, samples: samples, length: length, seed: 0), threads: 2)
        cached = run
        return run
    }

    /// The first `evaluationTokens` tokens of the evaluation text with the fixture's tokenizer.
    static func evaluationText(_ run: CalibrationRun) throws -> [Int32] {
        let tokenizer = try EvaluationSetup.tokenizer(for: run.weights, override: nil)
        let ids = try EvaluationSetup.tokens(ofTextFile: TestFiles.fixture("wikitext-2-raw/wiki.test.hfjoin.txt"), tokenizer: tokenizer, threads: 2)
        return Array(ids.prefix(evaluationTokens))
    }

    /// Perplexity of `tokens` under the model `source` holds, in `mode` (nil: what the source prefers).
    static func perplexity(_ source: any WeightSource, _ tokens: [Int32], mode: ComputeMode? = nil) throws -> Double {
        let m = mode ?? (source.prefersInt8Compute ? .int8 : .f32)
        let model = try source.makeModel(quantizeDenseForInt8: m == .int8)
        let evaluator = PerplexityEvaluator(model: model, context: ComputeContext(mode: m, threads: 2),
                                            protocolSettings: PerplexityProtocol(contextLength: CalibratedFixture.length))
        return try evaluator.evaluate(tokens).perplexity
    }

    /// Mean KL(p_reference ‖ p_model) per position over `tokens` in windows of `length`: how far
    /// a quantized model's predictions moved from the f32 model's. Unlike perplexity on a text
    /// the model was not trained for (where noise can even lower the perplexity), it only
    /// measures damage.
    static func divergence(from reference: DecoderModel, _ source: any WeightSource, _ tokens: [Int32]) throws -> Double {
        let model = try source.makeModel()
        let context = ComputeContext(mode: .f32, threads: 2)
        let v = reference.config.vocabSize
        var total = 0.0, positions = 0
        for start in stride(from: 0, to: tokens.count - length + 1, by: length) {
            let window = Array(tokens[start..<(start + length)])
            let p = logProbabilities(reference, window, context), q = logProbabilities(model, window, context)
            for i in 0..<(window.count * v) { total += exp(Double(p[i])) * Double(p[i] - q[i]) }
            positions += window.count
        }
        return total / Double(positions)
    }

    /// log-softmax of the logits of every position of `window`, [T, vocab].
    static func logProbabilities(_ model: DecoderModel, _ window: [Int32], _ context: ComputeContext) -> [Float] {
        let v = model.config.vocabSize
        let hidden = model.hiddenStates(window, context: context)
        var out = [Float](repeating: 0, count: window.count * v)
        hidden.withUnsafeBufferPointer { h in
            out.withUnsafeMutableBufferPointer { o in
                model.logits(h.baseAddress!, rows: window.count, into: o.baseAddress!, context: context)
                for r in 0..<window.count {
                    let row = o.baseAddress! + r * v
                    let lse = VectorOps.logSumExp(row, count: v)
                    for j in 0..<v { row[j] -= lse }
                }
            }
        }
        return out
    }

    /// Writes `options`' conversion of the fixture to a temporary .eqm and opens it.
    static func convert(_ options: ConversionOptions) throws -> EQMWeightSource {
        let dir = try TestFiles.temporaryDirectory()
        let path = dir + "/model.eqm"
        _ = try ModelConverter(options: options).convert(try SafetensorsModel(path: TestFiles.fixture("tiny-gpt2")), to: path)
        return try EQMWeightSource(file: EQMFile(path: path))
    }
}

/// Seeded uniform floats in [-1, 1) and normal ones, for the layer-level tests.
struct SeededFloats {
    var normals: SeededNormals
    init(seed: UInt64) { normals = SeededNormals(seed: seed) }
    mutating func normal(_ n: Int, std: Float = 1) -> [Float] { normals.normals(n, std: Double(std)).map(Float.init) }
}

/// y = x · W for a Linear, as an array.
func apply(_ linear: Linear, _ x: [Float], rows: Int, mode: ComputeMode) -> [Float] {
    var y = [Float](repeating: 0, count: rows * linear.outFeatures)
    x.withUnsafeBufferPointer { xb in
        y.withUnsafeMutableBufferPointer { yb in
            linear.forward(xb.baseAddress!, rows: rows, into: yb.baseAddress!, context: ComputeContext(mode: mode, threads: 2))
        }
    }
    return y
}
