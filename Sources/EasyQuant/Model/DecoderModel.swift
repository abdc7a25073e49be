/// A decoder-only transformer, the shell every family shares:
///
///     x = token embedding (+ position embedding) → blocks → final norm → logits = h · Wₒᵤₜᵀ
///
/// What a block computes is the family's (`GPT2Block`, `LlamaBlock`); the shell embeds,
/// runs the blocks in order, and computes logits (the output layer is the tied token
/// embedding unless the checkpoint carries its own). Weights stay in the form the source
/// holds them (in place from a memory map, or quantized).
public final class DecoderModel: CausalLanguageModel, @unchecked Sendable {
    public let config: ModelConfig
    public let family: any ModelFamily
    public let origin: String
    let tokenEmbedding: WeightMatrix
    /// Learned absolute positions (GPT-2), or nil (rotary embeddings inside the blocks).
    let positionEmbedding: WeightMatrix?
    let blocks: [any DecoderBlock]
    let finalNorm: Normalization
    /// The output layer: [vocab, embedding], one row per token.
    public let outputLayer: Linear
    /// Rotary embedding frequencies, or nil.
    let rotary: RotaryEmbedding?
    /// Whether the blocks' MLPs are gated (need a second hidden buffer).
    let gatedMLP: Bool

    init(config: ModelConfig, family: any ModelFamily, origin: String, tokenEmbedding: WeightMatrix,
         positionEmbedding: WeightMatrix?, blocks: [any DecoderBlock], finalNorm: Normalization, outputLayer: Linear,
         gatedMLP: Bool) {
        self.config = config; self.family = family; self.origin = origin
        self.tokenEmbedding = tokenEmbedding; self.positionEmbedding = positionEmbedding
        self.blocks = blocks; self.finalNorm = finalNorm; self.outputLayer = outputLayer
        self.gatedMLP = gatedMLP
        rotary = config.ropeTheta.map { RotaryEmbedding(headSize: config.headSize, theta: $0) }
    }

    public func hiddenStates(_ tokens: [Int32], context: ComputeContext, observer: (any ForwardObserver)?) -> [Float] {
        precondition(tokens.count <= config.contextLength, "window of \(tokens.count) tokens exceeds the model's \(config.contextLength) positions")
        return run(tokens, cache: nil, context: context, observer: observer)
    }

    public func decode(_ tokens: [Int32], cache: KVCache, context: ComputeContext) -> [Float] {
        precondition(cache.count + tokens.count <= cache.capacity, "the KV cache holds \(cache.capacity) tokens")
        defer { cache.commit(tokens.count) }
        return run(tokens, cache: cache, context: context, observer: nil)
    }

    public func makeCache(quantization: KVQuantization?, capacity: Int? = nil, storage: KVStorage = .f32) -> KVCache {
        KVCache(config: config, quantization: quantization, capacity: capacity, storage: storage)
    }

    private func run(_ tokens: [Int32], cache: KVCache?, context: ComputeContext, observer: (any ForwardObserver)?) -> [Float] {
        let t = tokens.count, e = config.embeddingSize
        let first = cache?.count ?? 0
        var x = [Float](repeating: 0, count: t * e)
        x.withUnsafeMutableBufferPointer { xb in
            let x = xb.baseAddress!
            context.profile.measure(.other) { embed(tokens, firstPosition: first, into: x) }
            let pass = BlockPass(tokens: t, firstPosition: first, scratch: BlockScratch(tokens: t, config: config, gated: gatedMLP),
                                 context: context, cache: cache, observer: observer,
                                 rotary: rotary.map { $0.table(first: first, count: t) })
            for (l, block) in blocks.enumerated() {
                observer?.blockInput(layer: l, UnsafeBufferPointer(start: x, count: t * e), tokens: t)
                block.forward(x, layer: l, pass)
                observer?.blockOutput(layer: l, UnsafeBufferPointer(start: x, count: t * e), tokens: t)
            }
            context.profile.measure(.other) { finalNorm.apply(x, rows: t, columns: e, into: x, threads: context.threads) }
        }
        return x
    }

    /// x[i] = token embedding of tokens[i] (+ position embedding of firstPosition + i).
    func embed(_ tokens: [Int32], firstPosition: Int = 0, into x: UnsafeMutablePointer<Float>) {
        let e = config.embeddingSize
        let row = UnsafeMutablePointer<Float>.allocate(capacity: e)
        defer { row.deallocate() }
        for (i, token) in tokens.enumerated() {
            precondition(token >= 0 && Int(token) < config.vocabSize, "token id \(token) is outside the vocabulary of \(config.vocabSize)")
            tokenEmbedding.copyRow(Int(token), into: x + i * e)
            if let positionEmbedding {
                positionEmbedding.copyRow(firstPosition + i, into: row)
                for j in 0..<e { x[i * e + j] += row[j] }
            }
        }
    }

    /// Runs block `layer` alone over `tokens` rows of x in place (a whole window from
    /// position 0, no cache): what layer-wise distillation needs of the teacher.
    func forwardBlock(_ layer: Int, _ x: UnsafeMutablePointer<Float>, tokens t: Int, context: ComputeContext) {
        let pass = BlockPass(tokens: t, firstPosition: 0, scratch: BlockScratch(tokens: t, config: config, gated: gatedMLP), context: context,
                             cache: nil, observer: nil, rotary: rotary.map { $0.table(first: 0, count: t) })
        blocks[layer].forward(x, layer: layer, pass)
    }

    /// Makes every quantized linear's batch-1 layout and frees the codes as loaded, so the
    /// weights are held once, in the layout decoding reads (a prompt's rows then go through
    /// the same kernels row by row). Whole-window evaluation never calls this: its batch
    /// products read the codes as loaded.
    public func prepareForDecoding(mode: ComputeMode, threads: Int) {
        Linear.keepOnlyStreamingForms(blocks.flatMap(\.linears) + [outputLayer], threads: threads)
    }

    public func weightBytesPerToken(mode: ComputeMode) -> Int {
        (blocks.flatMap(\.linears) + [outputLayer]).reduce(0) { $0 + $1.bytesReadPerToken(mode: mode) }
    }

    public func logits(_ hidden: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        context.profile.measure(.outputLayer) { outputLayer.forward(hidden, rows: rows, into: out, context: context) }
    }
}

/// One block of a family's network.
protocol DecoderBlock: Sendable {
    /// The block's linear layers.
    var linears: [Linear] { get }
    /// x ← block(x) for the `pass.tokens` rows of x (positions `pass.firstPosition` on).
    func forward(_ x: UnsafeMutablePointer<Float>, layer: Int, _ pass: BlockPass)
}

/// What one forward pass hands every block: sizes and positions, buffers, the compute
/// settings, the cache when decoding, the observer, and the rotary angles of the window.
struct BlockPass {
    let tokens: Int
    let firstPosition: Int
    let scratch: BlockScratch
    let context: ComputeContext
    let cache: KVCache?
    let observer: (any ForwardObserver)?
    let rotary: RotaryEmbedding.Table?

    /// Tells the observer what `site`'s linears read.
    func see(_ layer: Int, _ site: InputSite, _ input: UnsafePointer<Float>, width: Int) {
        observer?.linearInput(layer: layer, site, UnsafeBufferPointer(start: input, count: tokens * width), tokens: tokens)
    }
}

/// Buffers a block needs, allocated once per window and reused by every block:
/// the normalised input, q|k|v, attention's output, a projection's output, and the MLP's
/// hidden activations (two of them for gated MLPs).
final class BlockScratch {
    let normed, projections, attended, projected, inner, gate: UnsafeMutablePointer<Float>
    init(tokens t: Int, config c: ModelConfig, gated: Bool) {
        normed = .allocate(capacity: max(1, t * c.embeddingSize))
        projections = .allocate(capacity: max(1, t * (c.embeddingSize + 2 * c.kvSize)))
        attended = .allocate(capacity: max(1, t * c.embeddingSize))
        projected = .allocate(capacity: max(1, t * c.embeddingSize))
        inner = .allocate(capacity: max(1, t * c.innerSize))
        gate = .allocate(capacity: gated ? max(1, t * c.innerSize) : 1)
    }
    deinit { [normed, projections, attended, projected, inner, gate].forEach { $0.deallocate() } }
}

/// A normalisation over the last axis: LayerNorm (GPT-2) or RMSNorm (Llama).
enum Normalization: Sendable {
    /// (x − mean) / √(var + ε) · γ + β.
    case layerNorm(weight: [Float], bias: [Float], epsilon: Float)
    /// x / √(mean x² + ε) · γ.
    case rmsNorm(weight: [Float], epsilon: Float)

    func apply(_ x: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>, threads: Int) {
        switch self {
        case let .layerNorm(weight, bias, epsilon):
            weight.withUnsafeBufferPointer { g in
                bias.withUnsafeBufferPointer { b in
                    VectorOps.layerNorm(x, rows: rows, cols: columns, gamma: g.baseAddress!, beta: b.baseAddress!,
                                        eps: epsilon, out: out, threads: threads)
                }
            }
        case let .rmsNorm(weight, epsilon):
            weight.withUnsafeBufferPointer { g in
                VectorOps.rmsNorm(x, rows: rows, cols: columns, gamma: g.baseAddress!, eps: epsilon, out: out, threads: threads)
            }
        }
    }
}

extension WeightMatrix {
    /// Row `r` as floats (dequantized if needed).
    func copyRow(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .dense(let d): out.update(from: d.values + r * d.columns, count: d.columns)
        case .quantized(let q): q.dequantize(rows: r..<(r + 1), columns: 0..<q.columns, into: out, ld: q.columns)
        }
    }
}

extension QuantizedWeight {
    /// Quantizes a float matrix with absmax per output channel, for running float
    /// checkpoints in int8 mode.
    static func absmaxPerChannel(_ d: DenseWeight, outputAxis: Int, name: String) throws -> QuantizedWeight {
        let values = UnsafeBufferPointer(start: d.values, count: d.rows * d.columns)
        let layout = BlockLayout(shape: [d.rows, d.columns], axis: outputAxis, granularity: .channel)
        return QuantizedWeight(try AbsMax().quantize(values, layout: layout, name: name, threads: Parallel.defaultThreads))
    }
}
