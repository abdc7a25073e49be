/// GPT-2, as a short forward pass over one window of tokens.
///
/// token + position embeddings → n_layer × [x += attn(ln_1(x)); x += mlp(ln_2(x))] → ln_f →
/// logits = h · wteᵀ (the output layer is tied to the token embedding unless the checkpoint
/// carries its own `lm_head.weight`). Attention is causal multi-head; the MLP uses the tanh
/// approximation of GELU (`gelu_new`). Weights stay in the form the source holds them.
public final class GPT2Model: @unchecked Sendable {
    public let config: GPT2Config
    public let origin: String
    let tokenEmbedding: WeightMatrix
    let positionEmbedding: WeightMatrix
    let blocks: [GPT2Block]
    let finalNorm: LayerNorm
    /// The output layer: [vocab, n_embd], one row per token.
    public let outputLayer: Linear

    /// Builds the network from `source`. `compute` decides nothing here except that float
    /// matrices meant to run in int8 are quantized on load (absmax, per output channel).
    public init(source: any WeightSource, quantizeDenseForInt8: Bool = false) throws {
        origin = source.origin
        var shapes = source.shapes
        shapes.removeValue(forKey: "lm_head.weight")
        config = try GPT2Config(json: source.configJSON, inferred: GPT2Config.infer(shapes: shapes), origin: source.origin)
        let c = config
        func expect(_ name: String, _ shape: [Int]) throws {
            guard let s = source.shapes[name] else { throw ModelError.missingTensor(origin: source.origin, name: name) }
            guard s == shape else { throw ModelError.badShape(origin: source.origin, name: name, shape: s, expected: shape) }
        }
        func vector(_ name: String, _ size: Int) throws -> [Float] {
            try expect(name, [size])
            return try source.floats(name)
        }
        func matrix(_ name: String, _ shape: [Int], outputAxis: Int) throws -> WeightMatrix {
            try expect(name, shape)
            let m = try source.matrix(name)
            if quantizeDenseForInt8, case .dense(let d) = m {
                return .quantized(try QuantizedWeight.absmaxPerChannel(d, outputAxis: outputAxis, name: name))
            }
            return m
        }
        func norm(_ prefix: String) throws -> LayerNorm {
            LayerNorm(weight: try vector(prefix + ".weight", c.embeddingSize), bias: try vector(prefix + ".bias", c.embeddingSize),
                      epsilon: c.layerNormEpsilon)
        }
        func conv1D(_ prefix: String, _ input: Int, _ output: Int) throws -> Linear {
            let weight = try matrix(prefix + ".weight", [input, output], outputAxis: 1)
            let outliers = try source.outliers(prefix + ".weight")
            try outliers?.check(inFeatures: input, outFeatures: output, origin: source.origin, name: prefix + ".weight")
            return Linear(weight: weight, outputIsRows: false, bias: try vector(prefix + ".bias", output), outliers: outliers)
        }

        // Embeddings are looked up row by row; only the output layer multiplies with them.
        tokenEmbedding = try source.matrix("wte.weight")
        try expect("wte.weight", [c.vocabSize, c.embeddingSize])
        positionEmbedding = try matrix("wpe.weight", [c.contextLength, c.embeddingSize], outputAxis: 0)
        blocks = try (0..<c.layerCount).map { l in
            let p = "h.\(l)"
            return GPT2Block(
                norm1: try norm(p + ".ln_1"),
                attention: try conv1D(p + ".attn.c_attn", c.embeddingSize, 3 * c.embeddingSize),
                attentionProjection: try conv1D(p + ".attn.c_proj", c.embeddingSize, c.embeddingSize),
                norm2: try norm(p + ".ln_2"),
                feedForward: try conv1D(p + ".mlp.c_fc", c.embeddingSize, c.innerSize),
                feedForwardProjection: try conv1D(p + ".mlp.c_proj", c.innerSize, c.embeddingSize),
                headCount: c.headCount)
        }
        finalNorm = try norm("ln_f")
        let head = source.shapes["lm_head.weight"] != nil ? "lm_head.weight" : "wte.weight"
        // A tied head shares the embedding's memory unless int8 mode must quantize a float embedding.
        let shareEmbedding = head == "wte.weight" && (tokenEmbedding.isQuantized || !quantizeDenseForInt8)
        let headWeight = shareEmbedding ? tokenEmbedding : try matrix(head, [c.vocabSize, c.embeddingSize], outputAxis: 0)
        outputLayer = Linear(weight: headWeight, outputIsRows: true, bias: nil)
    }

    /// The hidden states after `ln_f` for `tokens` (at most n_positions of them), [T, n_embd].
    /// An `observer` sees every block's input and output and every linear layer's input,
    /// which is how calibration looks inside the network.
    public func hiddenStates(_ tokens: [Int32], context: ComputeContext, observer: (any ForwardObserver)? = nil) -> [Float] {
        precondition(tokens.count <= config.contextLength, "window of \(tokens.count) tokens exceeds the model's \(config.contextLength) positions")
        return run(tokens, cache: nil, context: context, observer: observer)
    }

    /// Incremental decoding: the hidden states after `ln_f` of `tokens`, which follow the
    /// `cache.count` tokens already in `cache`; their keys and values are added to it.
    public func decode(_ tokens: [Int32], cache: KVCache, context: ComputeContext) -> [Float] {
        precondition(cache.count + tokens.count <= cache.capacity, "the KV cache holds \(cache.capacity) tokens")
        defer { cache.commit(tokens.count) }
        return run(tokens, cache: cache, context: context, observer: nil)
    }

    private func run(_ tokens: [Int32], cache: KVCache?, context: ComputeContext, observer: (any ForwardObserver)?) -> [Float] {
        let t = tokens.count, e = config.embeddingSize
        var x = [Float](repeating: 0, count: t * e)
        x.withUnsafeMutableBufferPointer { xb in
            let x = xb.baseAddress!
            context.profile.measure(.other) { embed(tokens, firstPosition: cache?.count ?? 0, into: x) }
            let scratch = BlockScratch(tokens: t, config: config)
            for (l, block) in blocks.enumerated() {
                observer?.blockInput(layer: l, UnsafeBufferPointer(start: x, count: t * e), tokens: t)
                block.forward(x, tokens: t, scratch: scratch, context: context, layer: l, cache: cache, observer: observer)
                observer?.blockOutput(layer: l, UnsafeBufferPointer(start: x, count: t * e), tokens: t)
            }
            context.profile.measure(.other) { finalNorm.apply(x, rows: t, columns: e, into: x, threads: context.threads) }
        }
        return x
    }

    /// x[i] = wte[token i] + wpe[firstPosition + i].
    func embed(_ tokens: [Int32], firstPosition: Int = 0, into x: UnsafeMutablePointer<Float>) {
        let e = config.embeddingSize
        let row = UnsafeMutablePointer<Float>.allocate(capacity: e)
        defer { row.deallocate() }
        for (i, token) in tokens.enumerated() {
            precondition(token >= 0 && Int(token) < config.vocabSize, "token id \(token) is outside the vocabulary of \(config.vocabSize)")
            tokenEmbedding.copyRow(Int(token), into: x + i * e)
            positionEmbedding.copyRow(firstPosition + i, into: row)
            for j in 0..<e { x[i * e + j] += row[j] }
        }
    }

    /// Logits for `rows` hidden states: [rows, vocab].
    public func logits(_ hidden: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        context.profile.measure(.outputLayer) { outputLayer.forward(hidden, rows: rows, into: out, context: context) }
    }
}

/// One transformer block's weights and its forward pass.
struct GPT2Block: Sendable {
    let norm1: LayerNorm
    let attention: Linear
    let attentionProjection: Linear
    let norm2: LayerNorm
    let feedForward: Linear
    let feedForwardProjection: Linear
    let headCount: Int

    /// x ← x + attn(ln_1(x)); x ← x + mlp(ln_2(x)), for `tokens` rows of x.
    func forward(_ x: UnsafeMutablePointer<Float>, tokens t: Int, scratch s: BlockScratch, context: ComputeContext,
                 layer: Int = 0, cache: KVCache? = nil, observer: (any ForwardObserver)? = nil) {
        let e = attention.inFeatures
        let profile = context.profile
        func see(_ which: BlockLinear, _ input: UnsafeMutablePointer<Float>, _ width: Int) {
            observer?.linearInput(layer: layer, which, UnsafeBufferPointer(start: input, count: t * width), tokens: t)
        }
        profile.measure(.other) { norm1.apply(x, rows: t, columns: e, into: s.normed, threads: context.threads) }
        see(.attention, s.normed, e)
        profile.measure(.blockProducts) { attention.forward(s.normed, rows: t, into: s.qkv, context: context) }
        observer?.projectedQKV(layer: layer, UnsafeBufferPointer(start: s.qkv, count: t * 3 * e), tokens: t)
        profile.measure(.attention) {
            if let cache {
                // Decoding: keys and values come from the cache (quantized there if it is).
                let (k, v) = cache.append(layer: layer, qkv: s.qkv, tokens: t)
                CausalSelfAttention.forward(.init(q: s.qkv, ldq: 3 * e, k: k, ldk: e, v: v, ldv: e, queries: t, start: cache.count),
                                            embedding: e, heads: headCount, into: s.attended, context: context)
            } else {
                // A whole window: keys and values rounded as a quantized cache would hold them, if asked.
                context.kvQuantization?.roundTrip(qkv: s.qkv, tokens: t, embedding: e, layer: layer, threads: context.threads, tally: context.kvTally)
                CausalSelfAttention.forward(qkv: s.qkv, tokens: t, embedding: e, heads: headCount, into: s.attended, context: context)
            }
        }
        see(.attentionProjection, s.attended, e)
        profile.measure(.blockProducts) { attentionProjection.forward(s.attended, rows: t, into: s.projected, context: context) }
        profile.measure(.other) {
            VectorOps.add(s.projected, into: x, count: t * e, threads: context.threads)
            norm2.apply(x, rows: t, columns: e, into: s.normed, threads: context.threads)
        }
        see(.feedForward, s.normed, e)
        profile.measure(.blockProducts) { feedForward.forward(s.normed, rows: t, into: s.inner, context: context) }
        profile.measure(.other) { VectorOps.geluInPlace(s.inner, count: t * feedForward.outFeatures, threads: context.threads) }
        see(.feedForwardProjection, s.inner, feedForward.outFeatures)
        profile.measure(.blockProducts) { feedForwardProjection.forward(s.inner, rows: t, into: s.projected, context: context) }
        profile.measure(.other) { VectorOps.add(s.projected, into: x, count: t * e, threads: context.threads) }
    }
}

/// The four linear layers of a GPT-2 block, named as in the checkpoint.
public enum BlockLinear: String, CaseIterable, Sendable {
    case attention = "attn.c_attn"
    case attentionProjection = "attn.c_proj"
    case feedForward = "mlp.c_fc"
    case feedForwardProjection = "mlp.c_proj"
}

/// Sees inside a forward pass: the hidden state entering and leaving each block
/// ([tokens, n_embd]), and the input of each linear layer ([tokens, in]).
/// Calibration (activation ranges, distillation targets) is built on this.
public protocol ForwardObserver: AnyObject {
    func blockInput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int)
    func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int)
    func linearInput(layer: Int, _ linear: BlockLinear, _ x: UnsafeBufferPointer<Float>, tokens: Int)
    /// The fused attention projection q|k|v, [tokens, 3·n_embd], before attention uses it.
    func projectedQKV(layer: Int, _ qkv: UnsafeBufferPointer<Float>, tokens: Int)
}

extension ForwardObserver {
    public func blockInput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int) {}
    public func blockOutput(layer: Int, _ x: UnsafeBufferPointer<Float>, tokens: Int) {}
    public func linearInput(layer: Int, _ linear: BlockLinear, _ x: UnsafeBufferPointer<Float>, tokens: Int) {}
    public func projectedQKV(layer: Int, _ qkv: UnsafeBufferPointer<Float>, tokens: Int) {}
}

/// Buffers a block needs, allocated once per window and reused by every block.
final class BlockScratch {
    let normed, qkv, attended, projected, inner: UnsafeMutablePointer<Float>
    init(tokens t: Int, config c: GPT2Config) {
        normed = .allocate(capacity: t * c.embeddingSize)
        qkv = .allocate(capacity: t * 3 * c.embeddingSize)
        attended = .allocate(capacity: t * c.embeddingSize)
        projected = .allocate(capacity: t * c.embeddingSize)
        inner = .allocate(capacity: t * c.innerSize)
    }
    deinit { [normed, qkv, attended, projected, inner].forEach { $0.deallocate() } }
}

/// LayerNorm over the last axis: (x − mean) / sqrt(var + ε) · γ + β.
struct LayerNorm: Sendable {
    let weight: [Float]
    let bias: [Float]
    let epsilon: Float

    func apply(_ x: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>, threads: Int = Parallel.defaultThreads) {
        weight.withUnsafeBufferPointer { g in
            bias.withUnsafeBufferPointer { b in
                VectorOps.layerNorm(x, rows: rows, cols: columns, gamma: g.baseAddress!, beta: b.baseAddress!,
                                    eps: epsilon, out: out, threads: threads)
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
