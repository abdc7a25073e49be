/// A weight source that quantizes another one in memory, tensor by tensor as the model asks:
/// what `eqconvert` would write, without writing it. Used to compare many methods on one
/// model without temporary files.
public final class QuantizingWeightSource: WeightSource, @unchecked Sendable {
    public let base: any WeightSource
    public let method: any QuantizationMethod
    public let granularity: Granularity
    public let selection: TensorSelection
    public let preparation: (any ModelPreparation)?
    public let label: String
    private let int8Compute: Bool

    public init(base: any WeightSource, method: any QuantizationMethod, granularity: Granularity = .channel,
                keep: [String] = [], preparation: (any ModelPreparation)? = nil, label: String? = nil, prefersInt8: Bool = false) {
        self.base = base; self.method = method; self.granularity = granularity
        selection = TensorSelection(keepPatterns: keep)
        self.preparation = preparation
        self.label = label ?? "\(method.name) \(method.bits)-bit \(granularity)"
        int8Compute = prefersInt8
    }

    public var origin: String { base.origin }
    public var configJSON: JSONValue? { base.configJSON }
    public var shapes: [String: [Int]] { base.shapes }
    public var methodDescription: String { label }
    public var prefersInt8Compute: Bool { int8Compute }
    public func tokenizerFiles() throws -> [String: [UInt8]] { try base.tokenizerFiles() }

    private func prepared(_ name: String) throws -> [Float] {
        let v = try base.floats(name)
        guard let preparation, preparation.changes(name) else { return v }
        return preparation.transform(name, v)
    }

    /// The quantized form of `name`, or nil when the selection keeps it in float.
    public func quantized(_ name: String) throws -> QuantizedTensor? {
        guard let shape = shapes[name], case .quantize(let axis) = selection.action(for: name, shape: shape, dtype: .f32) else { return nil }
        let values = try prepared(name)
        let layout = BlockLayout(shape: shape, axis: axis, granularity: granularity)
        return try values.withUnsafeBufferPointer { try method.quantize($0, layout: layout, name: name, threads: Parallel.defaultThreads) }
    }

    public func floats(_ name: String) throws -> [Float] {
        try quantized(name)?.dequantized() ?? prepared(name)
    }

    public func matrix(_ name: String) throws -> WeightMatrix {
        if let q = try quantized(name) { return .quantized(QuantizedWeight(q)) }
        let shape = shapes[name]!
        return .dense(DenseWeight(rows: shape[0], columns: shape[1], values: try prepared(name)))
    }
}
