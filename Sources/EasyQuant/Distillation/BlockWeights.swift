/// Every trainable tensor of one block (whatever its family: the `BlockSchema` says which
/// tensors), stored back to back in one flat array in schema order.
///
/// One flat array keeps the optimizer and the gradient bookkeeping to single loops, and
/// gives the forward pass one base pointer. The same type holds gradients. (Named
/// `BlockWeights` because `BlockParameters` already names a quantization block's scale.)
public struct BlockWeights<Scalar: TrainingScalar>: Sendable {
    /// Which tensors, their shapes and places.
    public let schema: BlockSchema
    /// All tensors, concatenated in schema order, each row-major.
    public var values: [Scalar]

    /// The block geometry: embedding size, heads, MLP width, norm ε.
    public var config: ModelConfig { schema.config }

    /// Tensors given as one flat array in schema order.
    public init(schema: BlockSchema, values: [Scalar]) {
        precondition(values.count == schema.parameterCount, "a block of this schema has \(schema.parameterCount) parameters, got \(values.count)")
        self.schema = schema; self.values = values
    }

    /// All zeros (the starting point for accumulating gradients).
    public init(zerosFor schema: BlockSchema) {
        self.init(schema: schema, values: [Scalar](repeating: 0, count: schema.parameterCount))
    }

    /// Tensors given one by one, by name; every tensor must be present with its element count.
    public init(schema: BlockSchema, tensors: [String: [Scalar]]) {
        self.init(schema: schema, values: schema.tensors.flatMap { t -> [Scalar] in
            guard let v = tensors[t.name], v.count == t.range.count else {
                preconditionFailure("tensor \(t.name) missing or not \(t.range.count) values")
            }
            return v
        })
    }

    /// One tensor's values (row-major).
    public subscript(tensor: BlockTensor) -> [Scalar] {
        get { Array(values[tensor.range]) }
        set {
            precondition(newValue.count == tensor.range.count, "tensor \(tensor.name) has \(tensor.range.count) elements")
            values.replaceSubrange(tensor.range, with: newValue)
        }
    }

    /// The values of the tensor named `name` (inside the block), or nil if the block has none.
    public subscript(name: String) -> [Scalar]? { schema[name].map { self[$0] } }

    /// The same values in another number type.
    public func converted<T: TrainingScalar>(to type: T.Type) -> BlockWeights<T> {
        BlockWeights<T>(schema: schema, values: values.map { T($0) })
    }
}

extension BlockWeights where Scalar == Float {
    /// Block `layer` of the model in `source` (canonical names from the schema's family), in f32.
    public init(source: any WeightSource, layer: Int, schema: BlockSchema) throws {
        var tensors: [String: [Float]] = [:]
        for t in schema.tensors {
            let name = schema.family.blockTensorName(layer: layer, t.name)
            guard let shape = source.shapes[name] else { throw ModelError.missingTensor(origin: source.origin, name: name) }
            guard shape == t.shape else { throw ModelError.badShape(origin: source.origin, name: name, shape: shape, expected: t.shape) }
            let values = try source.floats(name)
            guard values.count == t.range.count else {
                throw ModelError.badShape(origin: source.origin, name: name, shape: [values.count], expected: t.shape)
            }
            tensors[t.name] = values
        }
        self.init(schema: schema, tensors: tensors)
    }

    /// Block `layer` of the model in `source`, with the schema of the source's family.
    public init(source: any WeightSource, layer: Int, config: ModelConfig) throws {
        try self.init(source: source, layer: layer, schema: BlockSchema(family: source.family, config: config, origin: source.origin))
    }
}
