/// One trainable tensor of a GPT-2 block, in checkpoint order.
public enum BlockTensor: Int, CaseIterable, Sendable {
    case norm1Weight, norm1Bias
    case attentionWeight, attentionBias
    case attentionProjectionWeight, attentionProjectionBias
    case norm2Weight, norm2Bias
    case feedForwardWeight, feedForwardBias
    case feedForwardProjectionWeight, feedForwardProjectionBias

    /// The name inside the block, as the checkpoint spells it ("ln_1.weight", "attn.c_attn.weight", ...);
    /// the full canonical name is `h.<layer>.` followed by this.
    public var name: String {
        switch self {
        case .norm1Weight: return "ln_1.weight"
        case .norm1Bias: return "ln_1.bias"
        case .attentionWeight: return "attn.c_attn.weight"
        case .attentionBias: return "attn.c_attn.bias"
        case .attentionProjectionWeight: return "attn.c_proj.weight"
        case .attentionProjectionBias: return "attn.c_proj.bias"
        case .norm2Weight: return "ln_2.weight"
        case .norm2Bias: return "ln_2.bias"
        case .feedForwardWeight: return "mlp.c_fc.weight"
        case .feedForwardBias: return "mlp.c_fc.bias"
        case .feedForwardProjectionWeight: return "mlp.c_proj.weight"
        case .feedForwardProjectionBias: return "mlp.c_proj.bias"
        }
    }

    /// The canonical checkpoint name in block `layer`, e.g. `h.0.attn.c_attn.weight`.
    public func canonicalName(layer: Int) -> String { "h.\(layer).\(name)" }

    /// Whether this is one of the four Conv1D weight matrices (stored [in, out]): the
    /// tensors that are quantized. Biases and LayerNorm parameters stay in float.
    public var isQuantizedMatrix: Bool {
        switch self {
        case .attentionWeight, .attentionProjectionWeight, .feedForwardWeight, .feedForwardProjectionWeight: return true
        default: return false
        }
    }

    /// The shape in a block of `config`: [in, out] for matrices, [n] for vectors.
    public func shape(_ config: ModelConfig) -> [Int] {
        let e = config.embeddingSize, i = config.innerSize
        switch self {
        case .norm1Weight, .norm1Bias, .norm2Weight, .norm2Bias, .attentionProjectionBias, .feedForwardProjectionBias: return [e]
        case .attentionWeight: return [e, 3 * e]
        case .attentionBias: return [3 * e]
        case .attentionProjectionWeight: return [e, e]
        case .feedForwardWeight: return [e, i]
        case .feedForwardBias: return [i]
        case .feedForwardProjectionWeight: return [i, e]
        }
    }
}

/// Every trainable tensor of one GPT-2 block (LayerNorm γ/β, the four Conv1D weights and
/// their biases), stored back to back in one flat array in `BlockTensor` order.
///
/// One flat array keeps the optimizer and the gradient bookkeeping to single loops, and
/// gives the forward pass one base pointer. The same type holds gradients. (Named
/// `BlockWeights` because `BlockParameters` already names a quantization block's scale.)
public struct BlockWeights<Scalar: TrainingScalar>: Sendable {
    /// The block geometry: embedding size, heads, MLP width, LayerNorm ε.
    public let config: ModelConfig
    /// All tensors, concatenated in `BlockTensor` order, each row-major.
    public var values: [Scalar]
    private let ranges: [Range<Int>]

    /// Tensors given as one flat array in `BlockTensor` order.
    public init(config: ModelConfig, values: [Scalar]) {
        var ranges: [Range<Int>] = [], start = 0
        for t in BlockTensor.allCases {
            let n = t.shape(config).reduce(1, *)
            ranges.append(start..<(start + n))
            start += n
        }
        precondition(values.count == start, "a block of this config has \(start) parameters, got \(values.count)")
        self.config = config; self.values = values; self.ranges = ranges
    }

    /// All zeros (the starting point for accumulating gradients).
    public init(zerosFor config: ModelConfig) {
        let n = BlockTensor.allCases.reduce(0) { $0 + $1.shape(config).reduce(1, *) }
        self.init(config: config, values: [Scalar](repeating: 0, count: n))
    }

    /// Tensors given one by one; every tensor must be present with its shape's element count.
    public init(config: ModelConfig, tensors: [BlockTensor: [Scalar]]) {
        self.init(config: config, values: BlockTensor.allCases.flatMap { t -> [Scalar] in
            guard let v = tensors[t] else { preconditionFailure("tensor \(t.name) missing") }
            return v
        })
    }

    /// Where `tensor` lives in `values`.
    public func range(of tensor: BlockTensor) -> Range<Int> { ranges[tensor.rawValue] }

    /// One tensor's values (row-major).
    public subscript(tensor: BlockTensor) -> [Scalar] {
        get { Array(values[range(of: tensor)]) }
        set {
            precondition(newValue.count == range(of: tensor).count, "tensor \(tensor.name) has \(range(of: tensor).count) elements")
            values.replaceSubrange(range(of: tensor), with: newValue)
        }
    }

    /// The same values in another number type.
    public func converted<T: TrainingScalar>(to type: T.Type) -> BlockWeights<T> {
        BlockWeights<T>(config: config, values: values.map { T($0) })
    }
}

extension BlockWeights where Scalar == Float {
    /// Block `layer` of the model in `source` (canonical names `h.<layer>.*`), in f32.
    public init(source: any WeightSource, layer: Int, config: ModelConfig) throws {
        var tensors: [BlockTensor: [Float]] = [:]
        for t in BlockTensor.allCases {
            let name = t.canonicalName(layer: layer)
            guard let shape = source.shapes[name] else { throw ModelError.missingTensor(origin: source.origin, name: name) }
            guard shape == t.shape(config) else {
                throw ModelError.badShape(origin: source.origin, name: name, shape: shape, expected: t.shape(config))
            }
            tensors[t] = try source.floats(name)
        }
        self.init(config: config, tensors: tensors)
    }
}
