import EasyQuant
import XCTest

/// Fake quantization, Adam, the mini-batch order and the LKD loop on a random model.
final class DistillationTrainingTests: XCTestCase {
    let config = GPT2Family.config(vocabSize: 64, contextLength: 32, embeddingSize: 32, layerCount: 3, headCount: 4)

    // MARK: Fake quantization

    /// Ŵ recomputed by hand: per column, per group of G consecutive rows (inputs), step =
    /// max|group| / 7 at 4 bits, Ŵ = round-half-even(W / step) · step.
    func testFakeQuantizerGroupsInputsOfOneColumn() throws {
        let weights = DistillationFixtures.randomBlock(config, seed: 5).converted(to: Float.self)
        let quantizer = FakeQuantizer(bits: 4, groupSize: 8)
        let fake = try quantizer.apply(to: weights)
        for t in BlockTensor.allCases {
            guard t.isQuantizedMatrix else {
                XCTAssertEqual(fake[t], weights[t], "\(t.name) must stay float"); continue
            }
            let rows = t.shape(config)[0], cols = t.shape(config)[1]
            let w = weights[t], got = fake[t]
            var levels = Set<Float>()
            for c in 0..<cols {
                for g0 in stride(from: 0, to: rows, by: 8) {
                    let group = (g0..<min(rows, g0 + 8)).map { $0 * cols + c }
                    let step = group.map { abs(w[$0]) }.max()! / 7
                    for i in group {
                        XCTAssertEqual(got[i], (w[i] / step).rounded(.toNearestOrEven) * step, "\(t.name)[\(i)]")
                        levels.insert(((got[i] / step).rounded()))
                    }
                }
            }
            XCTAssertEqual(levels, Set((-7...7).map(Float.init)), "\(t.name): 4-bit codes span -7...7")
        }
    }

    func testGroupSizeIsClampedToTheInputSize() throws {
        let quantizer = FakeQuantizer(bits: 8, groupSize: 128)
        XCTAssertEqual(quantizer.layout(inputs: 32, outputs: 96).scaleShape, [1, 96])
        XCTAssertEqual(quantizer.layout(inputs: 512, outputs: 128).scaleShape, [4, 128])
        let weights = DistillationFixtures.randomBlock(config, seed: 5).converted(to: Float.self)
        let q = try quantizer.quantize(weights, .feedForwardProjectionWeight)   // [128, 32]: one group of 128 rows
        XCTAssertEqual(q.layout.block, [128, 1])
        XCTAssertEqual(q.bits, 8)
        XCTAssertEqual(q.dequantized(), try quantizer.apply(to: weights)[.feedForwardProjectionWeight])
    }

    // MARK: Adam

    /// Two steps by hand: m₁ = 0.1g₁, v₁ = 0.001g₁², so step 1 moves each parameter by
    /// lr·g/(|g| + ε) (≈ lr·sign g); step 2 with g₂: m₂ = 0.09g₁ + 0.1g₂, v₂ = 0.000999g₁² + 0.001g₂².
    func testAdamMatchesHandComputedSteps() {
        var p: [Float] = [1, 2, 3]
        var adam = Adam(parameterCount: 3, learningRate: 0.01)
        let g1: [Float] = [0.5, -2, 0], g2: [Float] = [-1, -1, 4]
        adam.update(&p, gradient: g1)
        XCTAssertEqual(p[0], 1 - 0.01, accuracy: 1e-6)
        XCTAssertEqual(p[1], 2 + 0.01, accuracy: 1e-6)
        XCTAssertEqual(p[2], 3, "a zero gradient leaves m at 0")
        adam.update(&p, gradient: g2)
        for i in 0..<3 {
            let m = 0.09 * Double(g1[i]) + 0.1 * Double(g2[i])
            let v = 0.000999 * Double(g1[i] * g1[i]) + 0.001 * Double(g2[i] * g2[i])
            let mHat = m / (1 - 0.81), vHat = v / (1 - 0.998001)
            let expected = [0.99, 2.01, 3.0][i] - 0.01 * mHat / (vHat.squareRoot() + 1e-8)
            XCTAssertEqual(Double(p[i]), expected, accuracy: 1e-6, "parameter \(i)")
        }
        XCTAssertEqual(adam.step, 2)
    }

    func testAdamMinimisesAQuadratic() {
        let centre: [Float] = [3, -1, 0.5, 10]
        var p = [Float](repeating: 0, count: 4)
        var adam = Adam(parameterCount: 4, learningRate: 0.05)
        for _ in 0..<2000 { adam.update(&p, gradient: zip(p, centre).map { 2 * ($0 - $1) }) }
        for (x, c) in zip(p, centre) { XCTAssertEqual(x, c, accuracy: 1e-2) }
    }

    // MARK: Mini-batch order

    func testMiniBatchOrderCoversEveryWindowEachEpoch() {
        var order = MiniBatchOrder(windows: 10, batchSize: 3, seed: 42)
        var again = MiniBatchOrder(windows: 10, batchSize: 3, seed: 42)
        var other = MiniBatchOrder(windows: 10, batchSize: 3, seed: 43)
        var differs = false
        for _ in 0..<5 {
            let epoch = (0..<3).map { _ in order.next() }   // 3 batches of 3; one window skipped per epoch
            XCTAssertEqual(epoch.map { $0.count }, [3, 3, 3])
            XCTAssertEqual(Set(epoch.joined()).count, 9, "no window twice within an epoch")
            XCTAssertEqual(epoch, (0..<3).map { _ in again.next() }, "same seed, same order")
            differs = differs || epoch != (0..<3).map { _ in other.next() }
        }
        XCTAssertTrue(differs, "another seed gives another order")
        var big = MiniBatchOrder(windows: 4, batchSize: 16, seed: 1)
        XCTAssertEqual(big.next().sorted(), [0, 1, 2, 3], "batch size clamps to the window count")
    }

    // MARK: The LKD loop

    func windows(_ n: Int, tokens: Int, seed: Int) -> [[Int32]] {
        (0..<n).map { w in (0..<tokens).map { Int32((w * 131 + $0 * 17 + seed * 7 + $0 * $0) % 64) } }
    }

    func testDistillationLowersEveryBlocksError() throws {
        let source = RandomGPT2Source(config: config, seed: 21)
        let options = LayerwiseDistillation.Options(bits: 4, groupSize: 16, steps: 40, learningRate: 2e-3, batchSize: 2, seed: 9, threads: 2)
        var seen: [(Int, Int)] = []
        let result = try LayerwiseDistillation(source: source, options: options)
            .run(windows: windows(6, tokens: 16, seed: 1)) { seen.append(($0.layer, $0.step)) }
        XCTAssertEqual(result.reports.map(\.layer), [0, 1, 2])
        XCTAssertEqual(result.blocks.count, 3)
        for r in result.reports {
            XCTAssertEqual(r.losses.count, 40)
            XCTAssertGreaterThan(r.mseBefore, 0)
            XCTAssertLessThan(r.mseAfter, 0.8 * r.mseBefore, "layer \(r.layer): \(r.mseBefore) → \(r.mseAfter)")
        }
        XCTAssertEqual(seen.count, 3 * 41)
        XCTAssertEqual(seen.first!.1, 0)
        XCTAssertEqual(seen.last!.0, 2)
        XCTAssertEqual(seen.last!.1, 40)
        // Training moved the weights, and only within quantization's reach of a better block.
        let original = try BlockWeights(source: source, layer: 1, config: config)
        XCTAssertNotEqual(result.blocks[1].values, original.values)
    }

    /// The report's "before" error is the MSE between the teacher's block output and the
    /// fake-quantized block applied to the teacher's block input, both seen through the
    /// public observer of the inference model; training is deterministic from the seed;
    /// blocks not asked for are returned as loaded.
    func testReportMatchesObserverTeacherAndRunsAreDeterministic() throws {
        let source = RandomGPT2Source(config: config, seed: 31)
        let calibration = windows(4, tokens: 12, seed: 2)
        let options = LayerwiseDistillation.Options(bits: 8, groupSize: 16, steps: 6, learningRate: 1e-3, batchSize: 3, seed: 5,
                                                    layers: [2], threads: 2)
        let first = try LayerwiseDistillation(source: source, options: options).run(windows: calibration)
        let second = try LayerwiseDistillation(source: source, options: options).run(windows: calibration)
        XCTAssertEqual(first.reports.map(\.layer), [2])
        XCTAssertEqual(first.reports[0].losses, second.reports[0].losses)
        XCTAssertEqual(first.blocks[2].values, second.blocks[2].values)
        for layer in 0..<2 {
            XCTAssertEqual(first.blocks[layer].values, try BlockWeights(source: source, layer: layer, config: config).values)
        }
        XCTAssertEqual(first.values(of: "h.2.mlp.c_fc.bias"), first.blocks[2][.feedForwardBias])
        XCTAssertEqual(first.values(of: "transformer.h.2.attn.c_attn.weight"), first.blocks[2][.attentionWeight])
        XCTAssertNil(first.values(of: "wte.weight"))
        XCTAssertNil(first.values(of: "h.7.ln_1.weight"))

        let model = try source.makeModel()
        let context = ComputeContext(threads: 2)
        let recorder = BlockRecorder()
        for w in calibration { _ = model.hiddenStates(w, context: context, observer: recorder) }
        let initial = try BlockWeights(source: source, layer: 2, config: config)
        let block = TrainableBlock(weights: try first.quantizer.apply(to: initial), context: context)
        let out = block.forward(recorder.inputs[2]!, windows: 4, tokens: 12).output
        let mse = TrainableBlock<Float>.meanSquaredError(out, recorder.outputs[2]!).loss
        XCTAssertEqual(first.reports[0].mseBefore, mse, accuracy: 1e-5 * mse)
    }

    func testDefaultLearningRateFollowsTheBitWidth() {
        XCTAssertEqual(LayerwiseDistillation.defaultLearningRate(bits: 4), 1e-4, accuracy: 1e-12)
        XCTAssertEqual(LayerwiseDistillation.defaultLearningRate(bits: 2), 1e-4, accuracy: 1e-12)
        XCTAssertEqual(LayerwiseDistillation.defaultLearningRate(bits: 8), 2e-6, accuracy: 1e-12)
        XCTAssertEqual(LayerwiseDistillation.defaultLearningRate(bits: 6), 1e-4 * 2e-2.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(LayerwiseDistillation.Options(bits: 8).effectiveLearningRate, 2e-6, accuracy: 1e-12)
        XCTAssertEqual(LayerwiseDistillation.Options(bits: 8, learningRate: 0.5).effectiveLearningRate, 0.5)
    }

    /// A learning rate far too large ruins the block; `revertIfWorse` then keeps the loaded one.
    func testRevertIfWorseKeepsTheLoadedBlock() throws {
        let source = RandomGPT2Source(config: config, seed: 41)
        let calibration = windows(4, tokens: 12, seed: 3)
        let original = try BlockWeights(source: source, layer: 0, config: config)
        for revert in [false, true] {
            let options = LayerwiseDistillation.Options(bits: 8, groupSize: 16, steps: 5, learningRate: 0.5, batchSize: 2,
                                                        layers: [0], revertIfWorse: revert, threads: 2)
            let result = try LayerwiseDistillation(source: source, options: options).run(windows: calibration)
            let report = result.reports[0]
            XCTAssertGreaterThan(report.mseAfter, report.mseBefore)
            XCTAssertEqual(report.reverted, revert)
            XCTAssertEqual(result.blocks[0].values == original.values, revert)
        }
    }

    func testRefusesUnequalWindowsAndUnknownLayers() {
        let source = RandomGPT2Source(config: config, seed: 1)
        XCTAssertThrowsError(try LayerwiseDistillation(source: source, options: .init(steps: 1)).run(windows: [[1, 2, 3], [1, 2]])) {
            XCTAssertEqual($0 as? LayerwiseDistillation.Failure, .unequalWindows(first: 3, other: 2))
        }
        XCTAssertThrowsError(try LayerwiseDistillation(source: source, options: .init(steps: 1, layers: [3])).run(windows: [[1, 2]])) {
            XCTAssertEqual($0 as? LayerwiseDistillation.Failure, .badLayer(3, layerCount: 3))
        }
        XCTAssertThrowsError(try LayerwiseDistillation(source: source, options: .init(steps: 1)).run(windows: []))
        XCTAssertThrowsError(try LayerwiseDistillation(source: source, options: .init(steps: 1)).run(windows: [[Int32](repeating: 1, count: 33)])) {
            XCTAssertEqual($0 as? LayerwiseDistillation.Failure, .windowTooLong(tokens: 33, contextLength: 32))
        }
        XCTAssertThrowsError(try LayerwiseDistillation(source: source, options: .init(steps: 1)).run(windows: [[1, 64]])) {
            XCTAssertEqual($0 as? LayerwiseDistillation.Failure, .badToken(64, vocabularySize: 64))
        }
    }
}
