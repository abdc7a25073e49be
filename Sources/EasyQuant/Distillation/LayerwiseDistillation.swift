import Foundation

/// ZeroQuant's layer-by-layer knowledge distillation (LKD; Yao et al. 2022, arXiv 2206.01861):
/// each transformer block is trained on its own to make its fake-quantized version
/// reproduce the float teacher block, on the teacher's own hidden states.
///
/// For block i, the input is the f32 teacher's hidden state entering block i and the target
/// the teacher's hidden state leaving it; the loss is MSE(block̂_i(x), teacher_i(x)), the
/// mean over all elements, with block̂_i computing with fake-quantized weights (straight-
/// through gradients) and trained by Adam on mini-batches of calibration windows.
///
/// Memory: the teacher is run block by block over all windows, keeping only the hidden
/// states entering and leaving the current block: 2 × windows × T × E floats (not
/// n_layer × that), plus one mini-batch's activations. Block i's input is exactly what a
/// `ForwardObserver` sees entering block i in `DecoderModel.hiddenStates` (same code path).
public struct LayerwiseDistillation {
    /// What to train and how.
    public struct Options: Sendable {
        /// Weight code width (8 or 4 for LKD; 2...8 accepted).
        public var bits: Int
        /// Input elements per scale (clamped to each matrix's input size).
        public var groupSize: Int
        /// Adam steps per block.
        public var steps: Int
        /// Adam's step size, or nil for `defaultLearningRate(bits:)`.
        public var learningRate: Double?
        /// Windows per mini-batch (clamped to the number of windows).
        public var batchSize: Int
        /// Seeds the mini-batch order (block i uses seed + i).
        public var seed: UInt64
        /// The blocks to train, or nil for all. Others are returned untouched.
        public var layers: [Int]?
        /// Keep a block's loaded parameters when training left its MSE higher than before
        /// (the report says so); off by default, so every trained block's final parameters are returned.
        public var revertIfWorse: Bool
        public var threads: Int
        public var backend: String

        public init(bits: Int = 8, groupSize: Int = 128, steps: Int = 100, learningRate: Double? = nil, batchSize: Int = 4,
                    seed: UInt64 = 0, layers: [Int]? = nil, revertIfWorse: Bool = false, threads: Int = Parallel.defaultThreads,
                    backend: String = MatrixBackends.names[0]) {
            self.bits = bits; self.groupSize = groupSize; self.steps = steps; self.learningRate = learningRate
            self.batchSize = batchSize; self.seed = seed; self.layers = layers; self.revertIfWorse = revertIfWorse
            self.threads = threads; self.backend = backend
        }

        /// The learning rate used: `learningRate`, or the default for `bits`.
        public var effectiveLearningRate: Double { learningRate ?? LayerwiseDistillation.defaultLearningRate(bits: bits) }
    }

    /// The default Adam step size for `bits`-bit weights: 1e-4 at 4 bits and below, 2e-6 at
    /// 8 bits, log-linear in between.
    ///
    /// Adam's early steps move every parameter by about the learning rate (m/√v ≈ sign g), so
    /// the step must be small next to the quantization error it is correcting, which shrinks
    /// ~18× from 4 to 8 bits. Measured on the tiny fixture (32 windows × 256 tokens, 100
    /// steps, batch 4, groups of 128), block MSE reductions: 4-bit 47-55% at 1e-4 (1e-3 made
    /// blocks worse); 8-bit 62-67% at 1e-6 and 2e-6, 41-49% at 5.5e-6, 16-31% at 1e-5, and
    /// 33-127% *worse* at 1e-4.
    public static func defaultLearningRate(bits: Int) -> Double {
        let t = Double(min(max(bits, 4), 8) - 4) / 4
        return 1e-4 * Foundation.pow(2e-2, t)
    }

    /// One block's outcome.
    public struct BlockReport: Sendable {
        public var layer: Int
        /// MSE over all calibration windows of the fake-quantized block before and after training.
        public var mseBefore: Double
        public var mseAfter: Double
        public var steps: Int
        public var seconds: Double
        /// True when `revertIfWorse` put the loaded parameters back (mseAfter is then the
        /// trained block's, which was not kept).
        public var reverted: Bool
        /// The mini-batch loss of every step, computed before that step's update.
        public var losses: [Double]
    }

    /// Where the training is, for progress displays.
    public struct Progress: Sendable {
        public var layer: Int
        /// Steps done in this block (0 right after the "before" measurement).
        public var step: Int
        public var steps: Int
        /// The last mini-batch loss (or the MSE before training at step 0).
        public var loss: Double
    }

    /// The trained model.
    public struct Result: Sendable {
        /// The f32 parameters of every block, in layer order (untrained blocks as loaded).
        /// Store the weight matrices with `quantizer.quantize` (the layout training used) and
        /// the other tensors as float.
        public var blocks: [BlockWeights<Float>]
        /// The quantizer the training used.
        public var quantizer: FakeQuantizer
        /// One report per trained block, in layer order.
        public var reports: [BlockReport]

        /// The f32 values of the block tensor with canonical name `name` (`h.<layer>.<tensor>`),
        /// or nil for any other name (embeddings, ln_f: not trained, take them from the source).
        /// Quantizing a weight matrix of these with `AbsMax(bits:)` and
        /// `quantizer.layout(inputs:outputs:)` gives exactly the Ŵ the training ended with.
        public func values(of name: String) -> [Float]? {
            let parts = (GPT2Family().canonicalName(name) ?? name).split(separator: ".", maxSplits: 2)
            guard parts.count == 3, parts[0] == "h", let layer = Int(parts[1]), blocks.indices.contains(layer),
                  let tensor = BlockTensor.allCases.first(where: { $0.name == parts[2] }) else { return nil }
            return blocks[layer][tensor]
        }
    }

    /// Why distillation could not run.
    public enum Failure: Error, CustomStringConvertible, Equatable {
        case noWindows
        case unequalWindows(first: Int, other: Int)
        case badLayer(Int, layerCount: Int)
        case windowTooLong(tokens: Int, contextLength: Int)
        case badToken(Int32, vocabularySize: Int)
        case unsupportedFamily(String)
        public var description: String {
            switch self {
            case .noWindows: return "distillation needs at least one calibration window"
            case let .unequalWindows(a, b): return "calibration windows must all have the same length (found \(a) and \(b) tokens)"
            case let .badLayer(l, n): return "layer \(l) does not exist (the model has \(n) blocks)"
            case let .windowTooLong(t, n): return "calibration windows of \(t) tokens exceed the model's \(n) positions"
            case let .badToken(id, n): return "token id \(id) is outside the model's vocabulary of \(n)"
            case .unsupportedFamily(let f): return "layer-wise distillation is not implemented for the \(f) family; use --lkd-steps 0"
            }
        }
    }

    public let source: any WeightSource
    public let options: Options

    public init(source: any WeightSource, options: Options) {
        self.source = source; self.options = options
    }

    /// Runs LKD over `windows` (token ids, all of the same length ≤ n_positions).
    public func run(windows: [[Int32]], progress: ((Progress) -> Void)? = nil) throws -> Result {
        guard let first = windows.first, !first.isEmpty else { throw Failure.noWindows }
        if let other = windows.first(where: { $0.count != first.count }) { throw Failure.unequalWindows(first: first.count, other: other.count) }
        let teacher = try source.makeModel()
        let config = teacher.config
        guard source.family is GPT2Family else {
            throw Failure.unsupportedFamily(source.family.name)
        }
        guard first.count <= config.contextLength else { throw Failure.windowTooLong(tokens: first.count, contextLength: config.contextLength) }
        for w in windows {
            if let bad = w.first(where: { $0 < 0 || Int($0) >= config.vocabSize }) { throw Failure.badToken(bad, vocabularySize: config.vocabSize) }
        }
        let layers = Set(options.layers ?? Array(0..<config.layerCount))
        if let bad = layers.first(where: { !(0..<config.layerCount).contains($0) }) {
            throw Failure.badLayer(bad, layerCount: config.layerCount)
        }
        let context = ComputeContext(mode: .f32, backendName: options.backend, threads: options.threads)
        let serialContext = ComputeContext(mode: .f32, backendName: options.backend, threads: 1)
        let quantizer = FakeQuantizer(bits: options.bits, groupSize: options.groupSize)
        let t = first.count, e = config.embeddingSize, rowSize = t * e

        // The hidden states entering the current block, all windows back to back.
        var hidden = [Float](repeating: 0, count: windows.count * rowSize)
        hidden.withUnsafeMutableBufferPointer { h in
            for (w, tokens) in windows.enumerated() { teacher.embed(tokens, into: h.baseAddress! + w * rowSize) }
        }
        var blocks: [BlockWeights<Float>] = []
        var reports: [BlockReport] = []
        let lastTrained = layers.max() ?? -1
        for layer in 0..<config.layerCount {
            var weights = try BlockWeights(source: source, layer: layer, config: config)
            if layer <= lastTrained {
                // The teacher block's output: the target, and the next block's input.
                // Windows side by side, each single-threaded (see TrainableBlock.product on why
                // oneDNN's own threads are not used).
                var target = hidden
                target.withUnsafeMutableBufferPointer { out in
                    let base = out.baseAddress!
                    Parallel.forEach(windows.count, threads: options.threads) { w in
                        teacher.forwardBlock(layer, base + w * rowSize, tokens: t, context: serialContext)
                    }
                }
                if layers.contains(layer) {
                    let report = try train(&weights, layer: layer, input: hidden, target: target, windows: windows.count,
                                           tokens: t, quantizer: quantizer, context: context, progress: progress)
                    reports.append(report)
                }
                hidden = target
            }
            blocks.append(weights)
        }
        return Result(blocks: blocks, quantizer: quantizer, reports: reports)
    }

    /// Adam on the fake-quantized block `weights` for `options.steps` mini-batches.
    func train(_ weights: inout BlockWeights<Float>, layer: Int, input: [Float], target: [Float], windows: Int, tokens: Int,
               quantizer: FakeQuantizer, context: ComputeContext, progress: ((Progress) -> Void)?) throws -> BlockReport {
        let start = DispatchTime.now().uptimeNanoseconds
        let rowSize = tokens * weights.config.embeddingSize
        func gather(_ all: [Float], _ indices: [Int]) -> [Float] {
            var out = [Float](); out.reserveCapacity(indices.count * rowSize)
            for i in indices { out.append(contentsOf: all[(i * rowSize)..<((i + 1) * rowSize)]) }
            return out
        }
        /// MSE over all windows, in chunks of one batch.
        func meanSquaredError(_ weights: BlockWeights<Float>) throws -> Double {
            let block = TrainableBlock(weights: try quantizer.apply(to: weights, threads: context.threads), context: context)
            var sum = 0.0
            let chunk = max(1, min(options.batchSize, windows))
            for w0 in stride(from: 0, to: windows, by: chunk) {
                let indices = Array(w0..<min(windows, w0 + chunk))
                let mse = TrainableBlock<Float>.meanSquaredError(block.forward(gather(input, indices), windows: indices.count, tokens: tokens).output,
                                                                 gather(target, indices)).loss
                sum += mse * Double(indices.count)
            }
            return sum / Double(windows)
        }

        let before = try meanSquaredError(weights)
        progress?(Progress(layer: layer, step: 0, steps: options.steps, loss: before))
        let initial = weights
        var adam = Adam(parameterCount: weights.values.count, learningRate: options.effectiveLearningRate)
        var order = MiniBatchOrder(windows: windows, batchSize: options.batchSize, seed: options.seed &+ UInt64(layer))
        var losses: [Double] = []
        for step in 0..<options.steps {
            let indices = order.next()
            let block = TrainableBlock(weights: try quantizer.apply(to: weights, threads: context.threads), context: context)
            let act = block.forward(gather(input, indices), windows: indices.count, tokens: tokens)
            let (loss, dy) = TrainableBlock<Float>.meanSquaredError(act.output, gather(target, indices))
            // Straight-through: the gradient at Ŵ is applied to W.
            let gradients = block.backward(act, outputGradient: dy).weights
            adam.update(&weights.values, gradient: gradients.values)
            losses.append(loss)
            progress?(Progress(layer: layer, step: step + 1, steps: options.steps, loss: loss))
        }
        let after = try meanSquaredError(weights)
        let reverted = options.revertIfWorse && after > before
        if reverted { weights = initial }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return BlockReport(layer: layer, mseBefore: before, mseAfter: after, steps: options.steps, seconds: seconds,
                           reverted: reverted, losses: losses)
    }
}
