/// One trainable tensor of a decoder block, as a `BlockSchema` lays it out.
public struct BlockTensor: Hashable, Sendable, CustomStringConvertible {
    /// The name inside the block, as the checkpoint spells it ("ln_1.weight",
    /// "self_attn.q_proj.weight"); the family's `blockTensorName(layer:_:)` gives the full name.
    public let name: String
    /// [rows, columns] for a matrix, [n] for a vector.
    public let shape: [Int]
    /// For a weight matrix, its output-channel axis as the family reports it to the converter
    /// (`ModelFamily.outputAxis(of:)`: 1 for GPT-2's Conv1D [in, out], 0 for [out, in]); nil
    /// for vectors (norm gains, biases), which are not quantized.
    public let outputAxis: Int?
    /// Where the tensor's values live in the flat parameter vector of `BlockWeights`.
    public let range: Range<Int>

    /// Whether the tensor is quantized: every matrix of a block is, as the converter
    /// quantizes every 2-D weight (`TensorSelection`).
    public var isQuantizedMatrix: Bool { outputAxis != nil }
    /// Input elements per output channel of a matrix (the axis groups run along), or nil.
    public var inputs: Int? { outputAxis.map { shape[1 - $0] } }
    public var description: String { name }
}

/// What a block of one family and config holds for training: its trainable tensors (names,
/// shapes, which are quantized and along which axis) and where each sits in one flat vector.
///
/// The family supplies the names and shapes (`DistillableFamily.trainableTensors`); the
/// output axis of each matrix is asked of the family under its canonical name, the very
/// question the converter asks, so the training quantizes each matrix the way the file will.
public struct BlockSchema: Sendable, Equatable {
    /// The family whose block this is (names, output axes, the trainable block).
    public let family: any DistillableFamily
    /// The block geometry the shapes come from.
    public let config: ModelConfig
    /// The tensors in the order of the flat parameter vector.
    public let tensors: [BlockTensor]
    /// Elements of all tensors together.
    public let parameterCount: Int
    private let positions: [String: Int]

    /// The schema of a block of `config` in `family`.
    public init(family: any DistillableFamily, config: ModelConfig) {
        var tensors: [BlockTensor] = [], start = 0
        for (name, shape) in family.trainableTensors(config) {
            precondition(shape.count == 1 || shape.count == 2, "\(name): block tensors are vectors or matrices")
            // ModelConfig.validate bounds every size (≤ 2¹⁸), so these products cannot overflow.
            let count = shape.reduce(1, *)
            let axis = shape.count == 2 ? family.outputAxis(of: family.blockTensorName(layer: 0, name)) : nil
            tensors.append(BlockTensor(name: name, shape: shape, outputAxis: axis, range: start..<(start + count)))
            start += count
        }
        self.family = family; self.config = config; self.tensors = tensors; parameterCount = start
        positions = Dictionary(tensors.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in
            preconditionFailure("\(tensors[a].name) is listed twice")
        })
    }

    /// The schema of a block of `config` in `family`, or an error naming `origin` when layer-
    /// wise distillation has no trainable block for the family.
    public init(family: any ModelFamily, config: ModelConfig, origin: String) throws {
        guard let distillable = family as? any DistillableFamily else {
            throw ModelError.unsupported(origin: origin, reason: "layer-wise distillation has no trainable block for the \(family.name) family; use --lkd-steps 0")
        }
        self.init(family: distillable, config: config)
    }

    /// The tensor named `name` (inside the block), or nil.
    public subscript(name: String) -> BlockTensor? { positions[name].map { tensors[$0] } }

    /// The weight matrices, which fake quantization replaces.
    public var quantizedMatrices: [BlockTensor] { tensors.filter(\.isQuantizedMatrix) }

    public static func == (a: BlockSchema, b: BlockSchema) -> Bool {
        a.family.name == b.family.name && a.config == b.config && a.tensors == b.tensors
    }
}
