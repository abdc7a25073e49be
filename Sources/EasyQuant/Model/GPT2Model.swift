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
            Linear(weight: try matrix(prefix + ".weight", [input, output], outputAxis: 1), outputIsRows: false,
                   bias: try vector(prefix + ".bias", output))
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
    public func hiddenStates(_ tokens: [Int32], context: ComputeContext) -> [Float] {
        let t = tokens.count, e = config.embeddingSize
        precondition(t <= config.contextLength, "window of \(t) tokens exceeds the model's \(config.contextLength) positions")
        var x = [Float](repeating: 0, count: t * e)
        x.withUnsafeMutableBufferPointer { xb in
            let x = xb.baseAddress!
            embed(tokens, into: x)
            let scratch = BlockScratch(tokens: t, config: config)
            for block in blocks { block.forward(x, tokens: t, scratch: scratch, context: context) }
            finalNorm.apply(x, rows: t, columns: e, into: x)
        }
        return x
    }

    /// x[i] = wte[token i] + wpe[i].
    func embed(_ tokens: [Int32], into x: UnsafeMutablePointer<Float>) {
        let e = config.embeddingSize
        let row = UnsafeMutablePointer<Float>.allocate(capacity: e)
        defer { row.deallocate() }
        for (i, token) in tokens.enumerated() {
            precondition(token >= 0 && Int(token) < config.vocabSize, "token id \(token) is outside the vocabulary of \(config.vocabSize)")
            tokenEmbedding.copyRow(Int(token), into: x + i * e)
            positionEmbedding.copyRow(i, into: row)
            for j in 0..<e { x[i * e + j] += row[j] }
        }
    }

    /// Logits for `rows` hidden states: [rows, vocab].
    public func logits(_ hidden: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>, context: ComputeContext) {
        outputLayer.forward(hidden, rows: rows, into: out, context: context)
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
    func forward(_ x: UnsafeMutablePointer<Float>, tokens t: Int, scratch s: BlockScratch, context: ComputeContext) {
        let e = attention.inFeatures
        norm1.apply(x, rows: t, columns: e, into: s.normed)
        attention.forward(s.normed, rows: t, into: s.qkv, context: context)
        CausalSelfAttention.forward(qkv: s.qkv, tokens: t, embedding: e, heads: headCount, into: s.attended, context: context)
        attentionProjection.forward(s.attended, rows: t, into: s.projected, context: context)
        VectorOps.add(s.projected, into: x, count: t * e)

        norm2.apply(x, rows: t, columns: e, into: s.normed)
        feedForward.forward(s.normed, rows: t, into: s.inner, context: context)
        VectorOps.geluNew(s.inner, count: t * feedForward.outFeatures, threads: context.threads)
        feedForwardProjection.forward(s.inner, rows: t, into: s.projected, context: context)
        VectorOps.add(s.projected, into: x, count: t * e)
    }
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

    func apply(_ x: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { g in
            bias.withUnsafeBufferPointer { b in
                VectorOps.layerNorm(x, rows: rows, columns: columns, gamma: g.baseAddress!, beta: b.baseAddress!,
                                    epsilon: epsilon, into: out)
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
