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
/// and to feed calibrated weights to in-memory evaluation.
public final class PreparedWeightSource: WeightSource, @unchecked Sendable {
    public let base: any WeightSource
    public let preparation: any ModelPreparation

    public init(base: any WeightSource, preparation: any ModelPreparation) {
        self.base = base; self.preparation = preparation
    }

    public var origin: String { base.origin }
    public var configJSON: JSONValue? { base.configJSON }
    public var shapes: [String: [Int]] { base.shapes }
    public var methodDescription: String { base.methodDescription }
    public var prefersInt8Compute: Bool { base.prefersInt8Compute }
    public func tokenizerFiles() throws -> [String: [UInt8]] { try base.tokenizerFiles() }

    public func floats(_ name: String) throws -> [Float] {
        let v = try base.floats(name)
        return preparation.changes(name) ? preparation.transform(name, v) : v
    }

    public func matrix(_ name: String) throws -> WeightMatrix {
        guard preparation.changes(name) else { return try base.matrix(name) }
        let shape = shapes[name]!
        return .dense(DenseWeight(rows: shape[0], columns: shape[1], values: preparation.transform(name, try base.floats(name))))
    }
}
