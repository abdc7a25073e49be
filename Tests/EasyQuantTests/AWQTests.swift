import EasyQuant
import XCTest

/// AWQ: the candidate scales, the folding (function-preserving in f32), the search against
/// an independent computation of its objective, and the method end to end on the fixture.
final class AWQTests: XCTestCase {
    func testCandidateScalesAreNormalisedAndClamped() {
        // raw = [1, 2, 1e-4 (clamped from 0)], divided by √(2 · 1e-4).
        let s = AWQScaleSearch.scales(absMean: [1, 4, 0], alpha: 0.5)
        let norm = (Float(2) * 1e-4).squareRoot()
        XCTAssertEqual(s[0], 1 / norm, accuracy: 1e-3)
        XCTAssertEqual(s[1], 2 / norm, accuracy: 1e-3)
        XCTAssertEqual(s[2], 1e-4 / norm, accuracy: 1e-6)
        XCTAssertEqual(AWQScaleSearch.scales(absMean: [0.3, 7, 2], alpha: 0), [1, 1, 1])
        XCTAssertEqual(AWQScaleSearch().alphas.count, 21)
        XCTAssertEqual(AWQScaleSearch().alphas.first, 0)
        XCTAssertEqual(AWQScaleSearch().alphas.last, 1)
    }

    /// Folding arbitrary positive scales (0.1 ... 10) into ln_1, ln_2 and c_attn's value
    /// columns leaves the fixture's logits unchanged (before quantization).
    func testFoldedModelComputesTheSameLogits() throws {
        guard let run = try CalibratedFixture.run() else { throw XCTSkip("tiny-gpt2 fixture or calibration text absent") }
        let c = run.model.config
        var rng = SeededNormals(seed: 11)
        var layers: [AWQScaling.Layer] = []
        for l in 0..<c.layerCount {
            for site in AWQScaling.searched(GPT2Family().blockStructure(c)) {
                let width = site == .mlpHidden ? c.innerSize : c.embeddingSize
                let s = (0..<width).map { _ in Float(pow(10, 2 * rng.uniform() - 1)) }
                layers.append(.init(layer: l, site: site, name: "h.\(l).\(site)",
                                    result: .init(alpha: 0.5, scales: s, loss: 0, plainLoss: 0, losses: [])))
            }
        }
        let scaling = try AWQScaling(search: AWQScaleSearch(), sampleRows: 0, source: run.weights, config: c, layers: layers)
        let folded = try (PreparedWeightSource(base: run.weights, preparation: scaling)).makeModel()
        XCTAssertNotEqual(try PreparedWeightSource(base: run.weights, preparation: scaling).floats("h.1.ln_1.weight"), try run.weights.floats("h.1.ln_1.weight"))
        let tokens = Array(run.windows.windows[0].prefix(64))
        let a = logits(run.model, tokens), b = logits(folded, tokens)
        let scale = a.map(abs).max()!
        XCTAssertGreaterThan(scale, 1)
        XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()!, 1e-4)
    }

    /// The search's objective matches an independent computation (simquant codes through
    /// the public quantizer, products and sums in Double), the chosen α is the grid's
    /// minimum, it never loses to α = 0, and on the fixture it strictly wins somewhere.
    func testChosenAlphaNeverLosesToPlainQuantization() throws {
        guard let run = try CalibratedFixture.run() else { throw XCTSkip("tiny-gpt2 fixture or calibration text absent") }
        let sample = LinearInputSample.collect(model: run.model, windows: run.windows.windows, maximumRows: 256, threads: 2)
        let scaling = try AWQScaling(source: run.weights, statistics: run.activations, sample: sample, search: AWQScaleSearch(), threads: 2)
        XCTAssertEqual(scaling.layers.count, run.model.config.layerCount * 3)
        var strictWins = 0
        for layer in scaling.layers {
            let r = layer.result
            XCTAssertEqual(r.losses.count, 21)
            XCTAssertEqual(r.loss, r.losses.min()!)
            XCTAssertEqual(r.plainLoss, r.losses[0])
            XCTAssertLessThanOrEqual(r.loss, r.plainLoss)
            if r.loss < r.plainLoss * 0.999 { strictWins += 1 }

            let name = layer.name + ".weight"
            let shape = run.weights.shapes[name]!
            let w = try run.weights.floats(name)
            let x = sample.rows(layer: layer.layer, layer.site, width: shape[0])
            XCTAssertEqual(x.rows, 256)
            let plain = try Self.objective(x.values, rows: x.rows, w, shape: shape, scales: [Float](repeating: 1, count: shape[0]))
            let chosen = try Self.objective(x.values, rows: x.rows, w, shape: shape, scales: r.scales)
            XCTAssertEqual(plain, r.plainLoss, accuracy: 1e-3 * plain, "\(name) at α = 0")
            XCTAssertEqual(chosen, r.loss, accuracy: 1e-3 * chosen, "\(name) at α = \(r.alpha)")
        }
        XCTAssertGreaterThan(strictWins, 2, "the search should improve some layers of the fixture")
    }

    /// AWQ end to end on the fixture: file and in-memory source agree, and against plain
    /// simquant 4-bit group:128 it is a wash, not a win. Measured here (16 calibration windows,
    /// first 4096 WikiText tokens): ppl 255.93 vs 257.07 (f32 256.13), KL from f32 0.02731 vs
    /// 0.02723; with `eqconvert` defaults on 50,000 tokens: ppl 296.60 vs 296.06. The reason
    /// is the fixture, not the search: its LayerNorm outputs have near-uniform magnitudes
    /// (max/min of mean |x| per channel 1.7-3.4), so there are no salient channels to
    /// protect, and the objective's in-sample gains (−3.5% on average) shrink to −0.2% on
    /// held-out rows. The bounds below are therefore "no worse than plain within noise";
    /// `testBeatsPlainQuantizationOnSalientChannels` checks that AWQ wins where its premise holds.
    func testFixtureEndToEnd() throws {
        guard let run = try CalibratedFixture.run() else { throw XCTSkip("tiny-gpt2 fixture or calibration text absent") }
        let tokens = try CalibratedFixture.evaluationText(run)
        let options = try CalibratedMethods.awq(run, base: ConversionOptions(threads: 2))
        let file = try CalibratedFixture.convert(options)
        let info = try XCTUnwrap(file.file.quantizationInfo)
        XCTAssertEqual(info["method"]?.stringValue, "awq")
        XCTAssertEqual(info["bits"]?.intValue, 4)
        XCTAssertEqual(info["granularity"]?.stringValue, "group:128")
        XCTAssertEqual(info["compute"]?.stringValue, "f32")
        XCTAssertEqual(info["parameters"]?["awq_alpha"]?.arrayValue?.count, run.model.config.layerCount)
        let record = file.file.tensors.first { GPT2Family().canonicalName($0.name) == "h.0.attn.c_attn.weight" }
        XCTAssertEqual(record?.quantization?.bits, 4)
        XCTAssertEqual(record?.quantization?.method, "simquant")
        XCTAssertNotNil(file.shapes["eqm.awq.h.0.attn.c_attn.scales"])
        XCTAssertFalse(file.prefersInt8Compute)

        let plainSource = QuantizingWeightSource(base: run.weights, method: SimQuant(bits: 4), granularity: .group(128))
        let awq = try CalibratedFixture.perplexity(file, tokens)
        let inMemory = try CalibratedFixture.perplexity(try QuantizingWeightSource(base: run.weights, options: options), tokens)
        let plain = try CalibratedFixture.perplexity(plainSource, tokens)
        XCTAssertTrue(awq.isFinite)
        XCTAssertEqual(awq, inMemory, accuracy: 1e-9 * awq, "file and in-memory source must compute the same model")
        XCTAssertLessThan(awq / plain, 1.01, "AWQ ppl \(awq) vs plain simquant \(plain)")
        let awqKL = try CalibratedFixture.divergence(from: run.model, file, tokens)
        let plainKL = try CalibratedFixture.divergence(from: run.model, plainSource, tokens)
        XCTAssertLessThan(awqKL, 1.05 * plainKL, "AWQ KL \(awqKL) vs plain simquant \(plainKL)")
    }

    /// Where AWQ's premise holds it wins clearly: the fixture made function-preservingly to
    /// have four salient input channels in every LayerNorm-fed layer (activations ×16, weight
    /// rows ÷16). Plain group quantization crushes those rows; AWQ scales them back. Measured:
    /// KL from f32 0.0457 (plain) vs 0.0076 (AWQ), embeddings kept in f32 so that only the
    /// block layers count. (Perplexity on WikiText, far from this model's training text, did
    /// not separate them: 260.2 vs 261.2, which is why the comparison uses KL.)
    func testBeatsPlainQuantizationOnSalientChannels() throws {
        guard let run = try CalibratedFixture.run() else { throw XCTSkip("tiny-gpt2 fixture or calibration text absent") }
        let tokens = try CalibratedFixture.evaluationText(run)
        let salient = PreparedWeightSource(base: run.weights, preparation: SalientChannels(layers: run.model.config.layerCount, embedding: run.model.config.embeddingSize, factor: 16))
        let model = try salient.makeModel()
        let stats = ActivationStatistics.collect(model: model, windows: run.windows.windows, context: ComputeContext(mode: .f32, threads: 2))
        let sample = LinearInputSample.collect(model: model, windows: run.windows.windows, threads: 2)
        let scaling = try AWQScaling(source: salient, statistics: stats, sample: sample, search: AWQScaleSearch(), threads: 2)
        for layer in scaling.layers where layer.site != .attentionOutput {
            XCTAssertGreaterThanOrEqual(layer.result.alpha, 0.5, "\(layer.name) should scale its salient channels")
        }
        func quantized(_ preparation: (any ModelPreparation)?) -> QuantizingWeightSource {
            QuantizingWeightSource(base: salient, method: SimQuant(bits: 4), granularity: .group(128), keep: ["wte", "wpe"], preparation: preparation)
        }
        let awqKL = try CalibratedFixture.divergence(from: model, quantized(scaling), tokens)
        let plainKL = try CalibratedFixture.divergence(from: model, quantized(nil), tokens)
        XCTAssertLessThan(3 * awqKL, plainKL, "AWQ KL \(awqKL) vs plain \(plainKL)")
    }

    /// mean((X·W − (X·diag(s)⁻¹)·Q(diag(s)·W))²), Q = simquant 4-bit in groups of 128 inputs.
    static func objective(_ x: [Float], rows: Int, _ w: [Float], shape: [Int], scales s: [Float]) throws -> Double {
        let (k, n) = (shape[0], shape[1])
        var scaled = w
        for j in 0..<k { for c in 0..<n { scaled[j * n + c] *= s[j] } }
        let q = try scaled.withUnsafeBufferPointer {
            try SimQuant(bits: 4).quantize($0, layout: BlockLayout(shape: shape, axis: 1, granularity: .group(128)))
        }.dequantized()
        var total = 0.0
        for i in 0..<rows {
            for c in 0..<n {
                var exact = 0.0, approx = 0.0
                for j in 0..<k {
                    exact += Double(x[i * k + j]) * Double(w[j * n + c])
                    approx += Double(x[i * k + j]) / Double(s[j]) * Double(q[j * n + c])
                }
                total += (exact - approx) * (exact - approx)
            }
        }
        return total / Double(rows * n)
    }

    func logits(_ model: DecoderModel, _ tokens: [Int32]) -> [Float] {
        let context = ComputeContext(mode: .f32, threads: 2)
        let hidden = model.hiddenStates(tokens, context: context)
        var out = [Float](repeating: 0, count: tokens.count * model.config.vocabSize)
        hidden.withUnsafeBufferPointer { h in
            out.withUnsafeMutableBufferPointer { model.logits(h.baseAddress!, rows: tokens.count, into: $0.baseAddress!, context: context) }
        }
        return out
    }
}

/// A function-preserving change that gives the fixture AWQ's "salient channels": a few
/// LayerNorm output channels multiplied by `factor` (so those activations are `factor`×
/// larger) and the matching weight rows of c_attn / c_fc divided by it.
struct SalientChannels: ModelPreparation {
    let layers: Int
    let embedding: Int
    let factor: Float
    let channels = [5, 40, 77, 100]

    func target(_ name: String) -> String? {
        let parts = name.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "h", let l = Int(parts[1]), l < layers else { return nil }
        let rest = String(parts[2])
        return ["ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias", "attn.c_attn.weight", "mlp.c_fc.weight"].contains(rest) ? rest : nil
    }
    func changes(_ name: String) -> Bool { target(name) != nil }
    func transform(_ name: String, _ values: [Float]) -> [Float] {
        guard let what = target(name) else { return values }
        var out = values
        if what.hasPrefix("ln_") {
            for c in channels { out[c] *= factor }
        } else {
            let cols = values.count / embedding
            for c in channels { for k in 0..<cols { out[c * cols + k] /= factor } }
        }
        return out
    }
    var extraTensors: [ExtraTensor] { [] }
    var parameters: [(String, JSONValue)] { [] }
}
