/// A weight source that quantizes another one in memory, tensor by tensor as the model asks:
/// what `eqconvert` would write, without writing it. Used to compare many methods on one
/// model without temporary files. The preparation's extra tensors (calibration results,
/// LLM.int8's outlier parts) are listed beside the weights, as in the file.
public final class QuantizingWeightSource: WeightSource, @unchecked Sendable {
    public let base: any WeightSource
    public let method: any QuantizationMethod
    public let granularity: Granularity
    public let selection: TensorSelection
    public let preparation: (any ModelPreparation)?
    public let label: String
    public let shapes: [String: [Int]]
    private let int8Compute: Bool
    private let extras: ExtraTensorTable

    public init(base: any WeightSource, method: any QuantizationMethod, granularity: Granularity = .channel,
                keep: [String] = [], preparation: (any ModelPreparation)? = nil, label: String? = nil, prefersInt8: Bool = false) {
        self.base = base; self.method = method; self.granularity = granularity
        selection = TensorSelection(keepPatterns: keep, family: base.family)
        self.preparation = preparation
        self.label = label ?? "\(method.name) \(method.bits)-bit \(granularity)"
        int8Compute = prefersInt8
        extras = ExtraTensorTable(preparation)
        shapes = extras.shapes(over: base.shapes)
    }

    /// The model `ModelConverter` would write with `options`, in memory: the same weight
    /// quantizer, preparation, kept tensors and compute mode, labelled with the recorded method.
    public convenience init(base: any WeightSource, options: ConversionOptions) throws {
        let method = try QuantizationMethods.make(options.method, bits: options.bits)
        let name = options.recordedMethod ?? options.method
        self.init(base: base, method: method, granularity: options.granularity, keep: options.keep,
                  preparation: options.preparation, label: "\(name) \(options.bits)-bit \(options.granularity)",
                  prefersInt8: options.compute == .int8)
    }

    public var origin: String { base.origin }
    public var family: any ModelFamily { base.family }
    public var configJSON: JSONValue? { base.configJSON }
    public var methodDescription: String { label }
    public var prefersInt8Compute: Bool { int8Compute }
    public func tokenizerFiles() throws -> [String: [UInt8]] { try base.tokenizerFiles() }

    private func prepared(_ name: String) throws -> [Float] {
        if let extra = extras[name] { return extra.values }
        let v = try base.floats(name)
        guard let preparation, preparation.changes(name) else { return v }
        return preparation.transform(name, v)
    }

    /// The quantized form of `name`, or nil when the selection keeps it in float (reserved
    /// `eqm.` tensors are never quantized, as the converter stores them in f32).
    public func quantized(_ name: String) throws -> QuantizedTensor? {
        guard !name.hasPrefix(ExtraTensor.prefix), let shape = shapes[name],
              case .quantize(let axis) = selection.action(for: name, shape: shape) else { return nil }
        let values = try prepared(name)
        let layout = BlockLayout(shape: shape, axis: axis, granularity: granularity)
        return try values.withUnsafeBufferPointer { try method.quantize($0, layout: layout, name: name, threads: Parallel.defaultThreads) }
    }

    public func floats(_ name: String) throws -> [Float] {
        try quantized(name)?.dequantized() ?? prepared(name)
    }

    public func matrix(_ name: String) throws -> WeightMatrix {
        if let extra = extras[name] { return try extra.matrix(origin: origin) }
        if let q = try quantized(name) { return .quantized(QuantizedWeight(q)) }
        let shape = shapes[name]!
        return .dense(DenseWeight(rows: shape[0], columns: shape[1], values: try prepared(name)))
    }
}
