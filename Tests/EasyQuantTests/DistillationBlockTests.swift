import EasyQuant
import XCTest

/// The trainable block: analytic gradients against finite differences, the f32 path against
/// the f64 path, and the forward pass against the inference model's block.
final class DistillationBlockTests: XCTestCase {
    let context = ComputeContext(mode: .f32, threads: 2)

    /// Central finite differences of the MSE loss for every element of every parameter
    /// tensor and of the input, on a block with E=8, 2 heads, T=5, B=2.
    ///
    /// Why Double: in f32 a central difference with step h has rounding error ≈ ε₃₂·|L|/h
    /// ≈ 1e-7/h, which for any h small enough to keep the truncation error (≈ h²) low lands
    /// near 1e-3 relative, too close to the bound to tell a bug from noise. The block is
    /// generic over its number type, so the identical forward/backward code runs in Double,
    /// where h = 1e-5 gives errors around 1e-10, and the bound can be 1e-6.
    func testGradientsMatchFiniteDifferences() {
        let config = GPT2Family.config(vocabSize: 16, contextLength: 8, embeddingSize: 8, layerCount: 1, headCount: 2)
        let windows = 2, tokens = 5, e = 8
        let weights = DistillationFixtures.randomBlock(config, seed: 7)
        var rng = SeededNormals(seed: 99)
        let input = rng.normals(windows * tokens * e, std: 1)
        let target = rng.normals(windows * tokens * e, std: 1)

        func loss(_ w: BlockWeights<Double>, _ x: [Double]) -> Double {
            let out = TrainableBlock(weights: w, context: context).forward(x, windows: windows, tokens: tokens).output
            return TrainableBlock<Double>.meanSquaredError(out, target).loss
        }
        let block = TrainableBlock(weights: weights, context: context)
        let act = block.forward(input, windows: windows, tokens: tokens)
        let (_, dy) = TrainableBlock<Double>.meanSquaredError(act.output, target)
        let (grads, dx) = block.backward(act, outputGradient: dy)

        let h = 1e-5
        func check(_ what: String, analytic: [Double], numeric: [Double]) {
            let err = relativeError(numeric, analytic)
            XCTAssertLessThan(err, 1e-6, "\(what): relative error \(err)")
            let scale = analytic.map(abs).max()!
            XCTAssertGreaterThan(scale, 1e-6, "\(what): gradient is zero, the check would prove nothing")
            for (i, (a, n)) in zip(analytic, numeric).enumerated() where abs(a - n) > 1e-6 * scale + 1e-12 {
                XCTFail("\(what)[\(i)]: analytic \(a), numeric \(n)"); break
            }
        }
        for t in BlockTensor.allCases {
            var numeric: [Double] = []
            for i in weights.range(of: t) {
                var plus = weights, minus = weights
                plus.values[i] += h; minus.values[i] -= h
                numeric.append((loss(plus, input) - loss(minus, input)) / (2 * h))
            }
            check(t.name, analytic: grads[t], numeric: numeric)
        }
        var numeric: [Double] = []
        for i in 0..<input.count {
            var plus = input, minus = input
            plus[i] += h; minus[i] -= h
            numeric.append((loss(weights, plus) - loss(weights, minus)) / (2 * h))
        }
        check("input", analytic: dx, numeric: numeric)
    }

    /// The f32 path (oneDNN sgemm, threads) computes what the f64 path (plain loops) does.
    func testFloatPathMatchesDoublePath() {
        let config = GPT2Family.config(vocabSize: 16, contextLength: 16, embeddingSize: 32, layerCount: 1, headCount: 4)
        let windows = 3, tokens = 11, e = 32
        let wd = DistillationFixtures.randomBlock(config, seed: 3)
        var rng = SeededNormals(seed: 4)
        let xd = rng.normals(windows * tokens * e, std: 1), td = rng.normals(windows * tokens * e, std: 1)

        let bd = TrainableBlock(weights: wd, context: context)
        let ad = bd.forward(xd, windows: windows, tokens: tokens)
        let gd = bd.backward(ad, outputGradient: TrainableBlock<Double>.meanSquaredError(ad.output, td).gradient)

        let bf = TrainableBlock(weights: wd.converted(to: Float.self), context: context)
        let af = bf.forward(xd.map(Float.init), windows: windows, tokens: tokens)
        let gf = bf.backward(af, outputGradient: TrainableBlock<Float>.meanSquaredError(af.output, td.map(Float.init)).gradient)

        XCTAssertLessThan(relativeError(af.output.map(Double.init), ad.output), 1e-5)
        for t in BlockTensor.allCases {
            let err = relativeError(gf.weights[t].map(Double.init), gd.weights[t])
            XCTAssertLessThan(err, 1e-4, "\(t.name): f32 vs f64 gradient differ by \(err)")
        }
        XCTAssertLessThan(relativeError(gf.input.map(Double.init), gd.input), 1e-4)
    }

    /// With float weights, the trainable forward pass reproduces the inference model's block
    /// (block inputs and outputs seen through the public observer).
    func testForwardMatchesInferenceBlock() throws {
        let config = GPT2Family.config(vocabSize: 64, contextLength: 32, embeddingSize: 32, layerCount: 2, headCount: 4)
        let source = RandomGPT2Source(config: config, seed: 11)
        let model = try source.makeModel()
        let tokens: [Int32] = (0..<20).map { Int32(($0 * 37 + 5) % 64) }
        let recorder = BlockRecorder()
        _ = model.hiddenStates(tokens, context: context, observer: recorder)
        for layer in 0..<2 {
            let weights = try BlockWeights(source: source, layer: layer, config: model.config)
            let out = TrainableBlock(weights: weights, context: context).forward(recorder.inputs[layer]!, windows: 1, tokens: 20).output
            XCTAssertLessThan(relativeError(out, recorder.outputs[layer]!), 1e-5, "layer \(layer)")
        }
    }

    func testBlockWeightsLayout() {
        let config = GPT2Family.config(vocabSize: 16, contextLength: 8, embeddingSize: 8, layerCount: 1, headCount: 2, innerSize: 20)
        var w = BlockWeights<Float>(zerosFor: config)
        // 2·8 + (8·24 + 24) + (8·8 + 8) + 2·8 + (8·20 + 20) + (20·8 + 8)
        XCTAssertEqual(w.values.count, 16 + 216 + 72 + 16 + 180 + 168)
        XCTAssertEqual(w.range(of: .attentionWeight), 16..<208)
        w[.feedForwardBias] = (0..<20).map(Float.init)
        XCTAssertEqual(w.values[w.range(of: .feedForwardBias)].first, 0)
        XCTAssertEqual(w[.feedForwardBias].last, 19)
        XCTAssertEqual(BlockTensor.feedForwardProjectionWeight.canonicalName(layer: 3), "h.3.mlp.c_proj.weight")
        XCTAssertEqual(BlockTensor.allCases.filter(\.isQuantizedMatrix).count, 4)
    }
}
