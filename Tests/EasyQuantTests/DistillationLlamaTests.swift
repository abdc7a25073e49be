import EasyQuant
import XCTest

/// The Llama-family trainable block (RMSNorm, rope, grouped-query attention, SwiGLU, weights
/// [out, in], optional q/k/v biases) and LKD on Llama-family models: analytic gradients
/// against finite differences, the f32 path against the f64 path, the forward pass against
/// the inference model's `LlamaBlock`, training on a random model, and the converter storing
/// exactly the Ŵ the training ended with.
final class DistillationLlamaTests: XCTestCase {
    let context = ComputeContext(mode: .f32, threads: 2)

    /// 4 query heads sharing 2 key/value heads, q/k/v biases (Qwen2), E = 16 (head size 4),
    /// an MLP width that is not a multiple of E.
    let groupedWithBias = RandomLlamaSource.config(embeddingSize: 16, layerCount: 1, heads: 4, kvHeads: 2, innerSize: 24, bias: true)
    /// One key/value head for all 4 query heads (multi-query), no biases (Llama).
    let multiQueryNoBias = RandomLlamaSource.config(embeddingSize: 16, layerCount: 1, heads: 4, kvHeads: 1, innerSize: 20, bias: false)

    // MARK: Gradients

    /// Central finite differences of the MSE loss for every element of every parameter tensor
    /// and of the input, in Double (see `DistillationBlockTests` on why), bound 1e-6 relative.
    func testGradientsMatchFiniteDifferences() {
        checkGradients(groupedWithBias, windows: 2, tokens: 5, seed: 7)
        checkGradients(multiQueryNoBias, windows: 1, tokens: 7, seed: 8)
    }

    func checkGradients(_ config: ModelConfig, windows: Int, tokens: Int, seed: UInt64, file: StaticString = #filePath, line: UInt = #line) {
        let e = config.embeddingSize
        let weights = DistillationFixtures.randomBlock(config, seed: seed)
        XCTAssertEqual(weights.schema["self_attn.q_proj.bias"] != nil, config.attentionBias, file: file, line: line)
        var rng = SeededNormals(seed: seed &+ 90)
        let input = rng.normals(windows * tokens * e, std: 1)
        let target = rng.normals(windows * tokens * e, std: 1)

        func loss(_ w: BlockWeights<Double>, _ x: [Double]) -> Double {
            DistillationLoss.meanSquaredError(LlamaTrainableBlock(weights: w, context: context).output(x, windows: windows, tokens: tokens), target).loss
        }
        let block = LlamaTrainableBlock(weights: weights, context: context)
        let act = block.forward(input, windows: windows, tokens: tokens)
        let (grads, dx) = block.backward(act, outputGradient: DistillationLoss.meanSquaredError(act.output, target).gradient)

        let h = 1e-5
        func check(_ what: String, analytic: [Double], numeric: [Double]) {
            let err = relativeError(numeric, analytic)
            XCTAssertLessThan(err, 1e-6, "\(what): relative error \(err)", file: file, line: line)
            let scale = analytic.map(abs).max()!
            XCTAssertGreaterThan(scale, 1e-6, "\(what): gradient is zero, the check would prove nothing", file: file, line: line)
            for (i, (a, n)) in zip(analytic, numeric).enumerated() where abs(a - n) > 1e-6 * scale + 1e-12 {
                XCTFail("\(what)[\(i)]: analytic \(a), numeric \(n)", file: file, line: line); break
            }
        }
        for t in weights.schema.tensors {
            var numeric: [Double] = []
            for i in t.range {
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
        let config = RandomLlamaSource.config(embeddingSize: 48, layerCount: 1, heads: 6, kvHeads: 2, innerSize: 80, bias: true)
        let windows = 3, tokens = 11, e = 48
        let wd = DistillationFixtures.randomBlock(config, seed: 3)
        var rng = SeededNormals(seed: 4)
        let xd = rng.normals(windows * tokens * e, std: 1), td = rng.normals(windows * tokens * e, std: 1)

        let bd = LlamaTrainableBlock(weights: wd, context: context)
        let ad = bd.forward(xd, windows: windows, tokens: tokens)
        let gd = bd.backward(ad, outputGradient: DistillationLoss.meanSquaredError(ad.output, td).gradient)

        let bf = LlamaTrainableBlock(weights: wd.converted(to: Float.self), context: context)
        let af = bf.forward(xd.map(Float.init), windows: windows, tokens: tokens)
        let gf = bf.backward(af, outputGradient: DistillationLoss.meanSquaredError(af.output, td.map(Float.init)).gradient)

        XCTAssertLessThan(relativeError(af.output.map(Double.init), ad.output), 1e-5)
        for t in wd.schema.tensors {
            let err = relativeError(gf.weights[t].map(Double.init), gd.weights[t])
            XCTAssertLessThan(err, 1e-4, "\(t.name): f32 vs f64 gradient differ by \(err)")
        }
        XCTAssertLessThan(relativeError(gf.input.map(Double.init), gd.input), 1e-4)
    }

    // MARK: Forward against inference

    /// With float weights, the trainable forward pass reproduces the inference model's
    /// `LlamaBlock` (block inputs and outputs seen through the public observer), with and
    /// without biases, over a window longer than one attention query block of the inference code.
    func testForwardMatchesInferenceBlock() throws {
        for bias in [true, false] {
            let config = RandomLlamaSource.config(vocabSize: 64, contextLength: 96, embeddingSize: 32, layerCount: 2, heads: 4, kvHeads: 2,
                                                  innerSize: 56, bias: bias)
            let source = RandomLlamaSource(config: config, seed: 11)
            let model = try source.makeModel()
            XCTAssertEqual(model.config, config)
            let tokens: [Int32] = (0..<77).map { Int32(($0 * 37 + 5) % 64) }
            let recorder = BlockRecorder()
            _ = model.hiddenStates(tokens, context: context, observer: recorder)
            for layer in 0..<2 {
                let weights = try BlockWeights(source: source, layer: layer, config: model.config)
                let block = weights.block(context: context)
                XCTAssertTrue(block is LlamaTrainableBlock<Float>)
                let out = block.output(recorder.inputs[layer]!, windows: 1, tokens: 77)
                let err = relativeError(out, recorder.outputs[layer]!)
                XCTAssertLessThan(err, 1e-5, "bias \(bias) layer \(layer)")
                // The block changes its input by much more than that: the comparison is not trivially met.
                XCTAssertGreaterThan(relativeError(recorder.inputs[layer]!, recorder.outputs[layer]!), 1e-2)
            }
        }
    }

    // MARK: Schema and quantization layout

    func testSchemaListsTheFamilysTensors() {
        let schema = DistillationFixtures.schema(groupedWithBias)   // E 16, kv 8, I 24
        XCTAssertEqual(schema.tensors.map(\.name), [
            "input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
            "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
            "post_attention_layernorm.weight", "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"])
        XCTAssertEqual(schema.tensors.map(\.shape), [[16], [16, 16], [16], [8, 16], [8], [8, 16], [8], [16, 16], [16], [24, 16], [24, 16], [16, 24]])
        XCTAssertEqual(schema.parameterCount, 16 + 272 + 136 + 136 + 256 + 16 + 3 * 384)
        XCTAssertEqual(schema.quantizedMatrices.map(\.name), LlamaFamily().blockStructure(groupedWithBias).linears.map(\.weight))
        XCTAssertTrue(schema.quantizedMatrices.allSatisfy { $0.outputAxis == 0 }, "Linear weights are [out, in]")
        XCTAssertEqual(schema["mlp.down_proj.weight"]?.inputs, 24)
        XCTAssertNil(DistillationFixtures.schema(multiQueryNoBias)["self_attn.k_proj.bias"])
        XCTAssertEqual(DistillationFixtures.schema(multiQueryNoBias)["self_attn.k_proj.weight"]?.shape, [4, 16])
    }

    /// Every family EasyQuant runs has a trainable block, so distillation refuses none.
    func testEveryFamilyIsDistillable() {
        for family in ModelFamilies.all { XCTAssertTrue(family is any DistillableFamily, family.name) }
    }

    /// Ŵ recomputed by hand for [out, in] matrices: per row, per group of G consecutive
    /// columns (inputs), step = max|group| / 7 at 4 bits, Ŵ = round-half-even(W / step)·step.
    func testFakeQuantizerGroupsInputsOfOneRow() throws {
        let weights = DistillationFixtures.randomBlock(groupedWithBias, seed: 5).converted(to: Float.self)
        let quantizer = FakeQuantizer(bits: 4, groupSize: 8)
        let fake = try quantizer.apply(to: weights)
        for t in weights.schema.tensors {
            guard t.isQuantizedMatrix else {
                XCTAssertEqual(fake[t], weights[t], "\(t.name) must stay float"); continue
            }
            let rows = t.shape[0], cols = t.shape[1]
            let w = weights[t], got = fake[t]
            for r in 0..<rows {
                for g0 in stride(from: 0, to: cols, by: 8) {
                    let group = (g0..<min(cols, g0 + 8)).map { r * cols + $0 }
                    let step = group.map { abs(w[$0]) }.max()! / 7
                    for i in group { XCTAssertEqual(got[i], (w[i] / step).rounded(.toNearestOrEven) * step, "\(t.name)[\(i)]") }
                }
            }
            XCTAssertEqual(quantizer.layout(of: t).scaleShape, [rows, (cols + 7) / 8], t.name)
        }
        // A group larger than the inputs becomes one group per row.
        XCTAssertEqual(FakeQuantizer(bits: 8, groupSize: 128).layout(of: weights.schema["mlp.down_proj.weight"]!).scaleShape, [16, 1])
    }

    // MARK: Training

    func windows(_ n: Int, tokens: Int, seed: Int) -> [[Int32]] {
        (0..<n).map { w in (0..<tokens).map { Int32((w * 131 + $0 * 17 + seed * 7 + $0 * $0) % 64) } }
    }

    /// LKD lowers every block's error at 8 and at 4 bits on a random tiny Llama with
    /// grouped-query heads and biases; the progress reports count every step.
    ///
    /// Learning rates as the step must be small next to the quantization error (see
    /// `LayerwiseDistillation.defaultLearningRate`): on this model 40 steps end at 35-40% of
    /// the starting MSE at 8 bits with 2e-5 (60% with 5e-5) and at 40-47% at 4 bits with 5e-4
    /// (64-84% with 3e-3); the bound 0.7 leaves room for summation-order noise only.
    func testDistillationLowersEveryBlocksError() throws {
        let config = RandomLlamaSource.config(embeddingSize: 32, layerCount: 3, heads: 4, kvHeads: 2, innerSize: 64, bias: true)
        let source = RandomLlamaSource(config: config, seed: 21)
        for (bits, rate) in [(8, 2e-5), (4, 5e-4)] {
            let options = LayerwiseDistillation.Options(bits: bits, groupSize: 16, steps: 40, learningRate: rate, batchSize: 2, seed: 9, threads: 2)
            var seen = 0
            let result = try LayerwiseDistillation(source: source, options: options).run(windows: windows(6, tokens: 15, seed: 1)) { _ in seen += 1 }
            XCTAssertEqual(result.reports.map(\.layer), [0, 1, 2])
            XCTAssertEqual(seen, 3 * 41)
            for r in result.reports {
                print(String(format: "%d-bit block %d: MSE %.4g -> %.4g", bits, r.layer, r.mseBefore, r.mseAfter))
                XCTAssertEqual(r.losses.count, 40)
                XCTAssertGreaterThan(r.mseBefore, 0)
                XCTAssertLessThan(r.mseAfter, 0.7 * r.mseBefore, "\(bits)-bit layer \(r.layer): \(r.mseBefore) → \(r.mseAfter)")
            }
            let original = try BlockWeights(source: source, layer: 1, config: config)
            XCTAssertNotEqual(result.blocks[1].values, original.values)
        }
    }

    /// The report's "before" error is the fake-quantized block against the teacher block seen
    /// through the public observer; blocks not asked for come back as loaded; `values(of:)`
    /// answers the family's canonical names and nothing else.
    func testReportMatchesObserverTeacherAndValuesUseLlamaNames() throws {
        let config = RandomLlamaSource.config(embeddingSize: 32, layerCount: 3, heads: 4, kvHeads: 2, innerSize: 64, bias: true)
        let source = RandomLlamaSource(config: config, seed: 31)
        let calibration = windows(4, tokens: 13, seed: 2)
        let options = LayerwiseDistillation.Options(bits: 8, groupSize: 16, steps: 6, learningRate: 1e-3, batchSize: 3, seed: 5,
                                                    layers: [2], threads: 2)
        let result = try LayerwiseDistillation(source: source, options: options).run(windows: calibration)
        XCTAssertEqual(result.reports.map(\.layer), [2])
        for layer in 0..<2 {
            XCTAssertEqual(result.blocks[layer].values, try BlockWeights(source: source, layer: layer, config: config).values)
        }
        XCTAssertEqual(result.values(of: "model.layers.2.self_attn.k_proj.bias"), result.blocks[2]["self_attn.k_proj.bias"])
        XCTAssertEqual(result.values(of: "model.layers.2.mlp.down_proj.weight"), result.blocks[2]["mlp.down_proj.weight"])
        XCTAssertEqual(result.values(of: "model.layers.0.input_layernorm.weight"), try source.floats("model.layers.0.input_layernorm.weight"))
        XCTAssertNil(result.values(of: "model.embed_tokens.weight"))
        XCTAssertNil(result.values(of: "model.norm.weight"))
        XCTAssertNil(result.values(of: "model.layers.3.mlp.up_proj.weight"))
        XCTAssertNil(result.values(of: "h.2.attn.c_attn.weight"))

        let model = try source.makeModel()
        let recorder = BlockRecorder()
        for w in calibration { _ = model.hiddenStates(w, context: context, observer: recorder) }
        let initial = try BlockWeights(source: source, layer: 2, config: config)
        let out = try result.quantizer.apply(to: initial).block(context: context).output(recorder.inputs[2]!, windows: 4, tokens: 13)
        let mse = DistillationLoss.meanSquaredError(out, recorder.outputs[2]!).loss
        XCTAssertEqual(result.reports[0].mseBefore, mse, accuracy: 1e-5 * mse)
    }

    // MARK: Into the file

    /// The converter, given the distillation's result, stores exactly the Ŵ the training
    /// ended with (every matrix of every block, dequantized from the file, equals the fake-
    /// quantized trained weights bit for bit) and the trained float tensors unchanged.
    func testConverterStoresTheTrainedWeights() throws {
        let folder = TestFiles.fixture("tiny-qwen2")
        let source = try openWeightSource(path: folder)
        let options = LayerwiseDistillation.Options(bits: 4, groupSize: 32, steps: 3, learningRate: 1e-3, batchSize: 2, threads: 2)
        let calibration: [[Int32]] = (0..<4).map { (w: Int) -> [Int32] in (0..<9).map { (t: Int) -> Int32 in Int32((w * 61 + t * 29) % 256) } }
        let result = try LayerwiseDistillation(source: source, options: options).run(windows: calibration)

        var conversion = ConversionOptions(method: AbsMax.name, bits: 4, granularity: .group(32), threads: 2)
        conversion.preparation = DistilledWeights(result: result, options: options)
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ModelConverter(options: conversion).convert(SafetensorsModel(path: folder), to: dir + "/out.eqm")
        let stored = try openWeightSource(path: dir + "/out.eqm")
        for (layer, block) in result.blocks.enumerated() {
            let expected = try result.quantizer.apply(to: block)
            XCTAssertNotEqual(block.values, try BlockWeights(source: source, layer: layer, config: block.config).values, "block \(layer) was trained")
            for t in block.schema.tensors {
                let name = LlamaFamily().blockTensorName(layer: layer, t.name)
                XCTAssertEqual(try stored.floats(name), expected[t], name)
            }
        }
    }
}
