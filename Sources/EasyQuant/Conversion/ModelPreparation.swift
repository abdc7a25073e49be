/// A change to a model's float tensors made before quantization: SmoothQuant's smoothing,
/// ZeroQuant's distilled weights. Preparations see canonical names (no `transformer.`).
///
/// The data still flows one way: reader → preparation → quantizer → writer.
public protocol ModelPreparation: Sendable {
    /// Whether `transform` changes tensor `name` (so untouched tensors are never copied).
    func changes(_ name: String) -> Bool
    /// The values to use for tensor `name` instead of `values` (called only when `changes(name)`).
    func transform(_ name: String, _ values: [Float]) -> [Float]
    /// Extra float tensors the file should carry (calibration results for eqinspect).
    var extraTensors: [ExtraTensor] { get }
    /// What `metadata.quantization.parameters` should record.
    var parameters: [(String, JSONValue)] { get }
}

/// A float tensor a preparation adds to the file, under the reserved `eqm.` prefix.
public struct ExtraTensor: Sendable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]
    public init(name: String, shape: [Int], values: [Float]) {
        precondition(name.hasPrefix(ExtraTensor.prefix), "extra tensors live under \(ExtraTensor.prefix)")
        self.name = name; self.shape = shape; self.values = values
    }
    /// Names under this prefix are not model weights; loaders and exporters skip them.
    public static let prefix = "eqm."
}

/// A weight source seen through a preparation: what the model would compute after the
/// change, before any quantization. Used to check that smoothing leaves the function intact
/// and to feed calibrated weights to in-memory evaluation. The preparation's extra tensors
/// are listed beside the weights, as the `.eqm` file would list them, so what the model
/// reads from them (LLM.int8's outlier parts) is there too.
public final class PreparedWeightSource: WeightSource, @unchecked Sendable {
    public let base: any WeightSource
    public let preparation: any ModelPreparation
    private let extras: ExtraTensorTable
    public let shapes: [String: [Int]]

    public init(base: any WeightSource, preparation: any ModelPreparation) {
        self.base = base; self.preparation = preparation
        extras = ExtraTensorTable(preparation)
        shapes = extras.shapes(over: base.shapes)
    }

    public var origin: String { base.origin }
    public var family: any ModelFamily { base.family }
    public var configJSON: JSONValue? { base.configJSON }
    public var methodDescription: String { base.methodDescription }
    public var prefersInt8Compute: Bool { base.prefersInt8Compute }
    public func tokenizerFiles() throws -> [String: [UInt8]] { try base.tokenizerFiles() }

    public func floats(_ name: String) throws -> [Float] {
        if let extra = extras[name] { return extra.values }
        let v = try base.floats(name)
        return preparation.changes(name) ? preparation.transform(name, v) : v
    }

    public func matrix(_ name: String) throws -> WeightMatrix {
        if let extra = extras[name] { return try extra.matrix(origin: origin) }
        guard preparation.changes(name) else { return try base.matrix(name) }
        let shape = shapes[name]!
        return .dense(DenseWeight(rows: shape[0], columns: shape[1], values: preparation.transform(name, try base.floats(name))))
    }
}

/// A preparation's extra tensors by name, computed once, for the in-memory sources that
/// show them as a file would.
struct ExtraTensorTable: Sendable {
    private let byName: [String: ExtraTensor]

    init(_ preparation: (any ModelPreparation)?) {
        var byName: [String: ExtraTensor] = [:]
        for t in preparation?.extraTensors ?? [] { byName[t.name] = t }
        self.byName = byName
    }

    subscript(name: String) -> ExtraTensor? { byName[name] }

    /// `base` with the extra tensors' shapes added.
    func shapes(over base: [String: [Int]]) -> [String: [Int]] {
        base.merging(byName.mapValues(\.shape)) { _, extra in extra }
    }
}

extension ExtraTensor {
    /// The tensor as an owned f32 matrix.
    func matrix(origin: String) throws -> WeightMatrix {
        guard shape.count == 2 else { throw ModelError.unsupported(origin: origin, reason: "tensor \(name) is not a matrix") }
        return .dense(DenseWeight(rows: shape[0], columns: shape[1], values: values))
    }
}
