import Foundation

/// Where a model's weights come from: a safetensors model or an `.eqm` file.
///
/// Names are canonical (without the `transformer.` prefix); each source maps them back to
/// what its file calls them. The model asks for vectors as floats and for matrices in
/// whatever form the source holds them, so quantized weights stay quantized.
public protocol WeightSource: AnyObject, Sendable {
    /// The path, for messages.
    var origin: String { get }
    /// The embedded or neighbouring `config.json`.
    var configJSON: JSONValue? { get }
    /// Shapes by canonical name.
    var shapes: [String: [Int]] { get }
    /// A tensor's values as floats (dequantized if needed).
    func floats(_ name: String) throws -> [Float]
    /// A 2-D tensor as a weight matrix: in place, owned f32, or quantized.
    func matrix(_ name: String) throws -> WeightMatrix
    /// The method recorded in the file ("f32" etc. for float sources).
    var methodDescription: String { get }
    /// Whether the file asks to be run with int8 activations by default.
    var prefersInt8Compute: Bool { get }
    /// The tokenizer files shipped with the model: embedded in the .eqm, or beside the safetensors.
    func tokenizerFiles() throws -> [String: [UInt8]]
    /// The f32 outlier part (LLM.int8) of matrix `name`, or nil. The default reads the
    /// reserved tensors named by `OutlierFeatures.tensorNames(for:)`.
    func outliers(_ name: String) throws -> OutlierFeatures?
}

/// Opens a weight source by sniffing the file: `.eqm`, or safetensors (file or folder).
public func openWeightSource(path: String) throws -> any WeightSource {
    if EQMSniffer.isEQM(path: path) { return try EQMWeightSource(file: EQMFile(path: path)) }
    return try SafetensorsWeightSource(model: SafetensorsModel(path: path))
}

/// Weights read from a safetensors model. Aligned F32 matrices are used in place, straight
/// from the memory map; F16 and BF16 are widened to F32 on load.
public final class SafetensorsWeightSource: WeightSource, @unchecked Sendable {
    public let model: SafetensorsModel
    public let shapes: [String: [Int]]
    private let names: [String: SafetensorsModel.Tensor]

    public init(model: SafetensorsModel) throws {
        self.model = model
        var names: [String: SafetensorsModel.Tensor] = [:]
        for t in model.tensors where !GPT2Names.isMaskBuffer(t.name) {
            names[GPT2Names.canonical(t.name)] = t
        }
        self.names = names
        shapes = names.mapValues { $0.info.shape }
    }

    public var origin: String { model.path }
    public var configJSON: JSONValue? { model.config }
    public var methodDescription: String { Set(names.values.map { $0.info.dtype.rawValue.lowercased() }).sorted().joined(separator: "+") }
    public var prefersInt8Compute: Bool { false }

    func tensor(_ name: String) throws -> SafetensorsModel.Tensor {
        guard let t = names[name] else { throw ModelError.missingTensor(origin: origin, name: name) }
        guard t.info.dtype.isFloatingPoint else {
            throw ModelError.unsupported(origin: origin, reason: "tensor \(t.name) is \(t.info.dtype.rawValue), not a float type")
        }
        return t
    }

    public func floats(_ name: String) throws -> [Float] { model.floats(of: try tensor(name)) }

    public func matrix(_ name: String) throws -> WeightMatrix {
        let t = try tensor(name)
        let shape = t.info.shape
        guard shape.count == 2 else { throw ModelError.unsupported(origin: origin, reason: "tensor \(t.name) is not a matrix") }
        let raw = model.bytes(of: t)
        if t.info.dtype == .f32, let base = raw.baseAddress, Int(bitPattern: base) % 4 == 0 {
            return .dense(DenseWeight(rows: shape[0], columns: shape[1],
                                      viewing: base.assumingMemoryBound(to: Float.self), owner: model.shards[t.shard].file))
        }
        return .dense(DenseWeight(rows: shape[0], columns: shape[1], values: model.floats(of: t)))
    }

    public func tokenizerFiles() throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for (name, path) in model.tokenizerFiles {
            files[name] = try InputFile.read(path)
        }
        return files
    }
}

/// Weights read from an `.eqm` file: quantized tensors stay quantized (one byte per code).
public final class EQMWeightSource: WeightSource, @unchecked Sendable {
    public let file: EQMFile
    public let shapes: [String: [Int]]
    private let names: [String: EQMTensorRecord]

    public init(file: EQMFile) throws {
        self.file = file
        var names: [String: EQMTensorRecord] = [:]
        for r in file.tensors where !GPT2Names.isMaskBuffer(r.name) { names[GPT2Names.canonical(r.name)] = r }
        self.names = names
        shapes = names.mapValues(\.shape)
    }

    public var origin: String { file.path }
    public var configJSON: JSONValue? { file.modelConfig }
    public var methodDescription: String {
        guard let q = file.quantizationInfo, let m = q["method"]?.stringValue else { return "unknown" }
        let bits = q["bits"]?.intValue.map { " \($0)-bit" } ?? ""
        let g = q["granularity"]?.stringValue.map { " \($0)" } ?? ""
        return m + bits + g
    }
    public var prefersInt8Compute: Bool { file.quantizationInfo?["compute"]?.stringValue == "int8" }

    func record(_ name: String) throws -> EQMTensorRecord {
        guard let r = names[name] else { throw ModelError.missingTensor(origin: origin, name: name) }
        return r
    }

    public func floats(_ name: String) throws -> [Float] { try file.floats(record(name)) }

    public func matrix(_ name: String) throws -> WeightMatrix {
        let r = try record(name)
        guard r.shape.count == 2 else { throw ModelError.unsupported(origin: origin, reason: "tensor \(r.name) is not a matrix") }
        if r.quantization != nil { return .quantized(QuantizedWeight(try file.quantizedTensor(r))) }
        return .dense(DenseWeight(rows: r.shape[0], columns: r.shape[1], values: try file.floats(r)))
    }

    public func tokenizerFiles() throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for name in file.tokenizerFileNames { files[name] = try file.tokenizerFile(name) }
        return files
    }
}
