import Foundation

/// Where a model's weights come from: a safetensors model, an `.eqm` file or a GGUF file.
///
/// Names are canonical (the family's `canonicalName`: GPT-2 without `transformer.`, Llama as
/// Hugging Face names it); each source maps them back to what its file calls them. The model
/// asks for vectors as floats and for matrices in whatever form the source holds them, so
/// quantized weights stay quantized.
public protocol WeightSource: AnyObject, Sendable {
    /// The path, for messages.
    var origin: String { get }
    /// The model family the file holds.
    var family: any ModelFamily { get }
    /// The Hugging Face `config.json` (embedded, beside the weights, or made from GGUF metadata).
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

extension WeightSource {
    /// The model's hyperparameters, validated against the tensors.
    public func modelConfig() throws -> ModelConfig {
        try family.config(json: configJSON, shapes: shapes, origin: origin)
    }

    /// The network, built by the source's family. `quantizeDenseForInt8`: float matrices are
    /// quantized on load (absmax per output channel) for int8 compute.
    public func makeModel(quantizeDenseForInt8: Bool = false) throws -> DecoderModel {
        try family.makeModel(source: self, config: modelConfig(), quantizeDenseForInt8: quantizeDenseForInt8)
    }
}

/// Opens a weight source by sniffing the file: `.eqm`, GGUF, or safetensors (file or folder).
public func openWeightSource(path: String) throws -> any WeightSource {
    if EQMSniffer.isEQM(path: path) { return try EQMWeightSource(file: EQMFile(path: path)) }
    if GGUFFile.isGGUF(path: path) { return try GGUFWeightSource(file: GGUFFile(path: path)) }
    return try SafetensorsWeightSource(model: SafetensorsModel(path: path))
}

/// Builds a source's canonical-name table: tensors the family does not count as weights
/// (buffers) are left out, and two file names that mean the same tensor (`ln_f.bias` beside
/// `transformer.ln_f.bias`) are refused rather than letting one silently win.
func canonicalTable<T>(_ items: [(fileName: String, value: T)], family: any ModelFamily, origin: String) throws -> [String: T] {
    var table: [String: T] = [:]
    var fileNames: [String: String] = [:]
    for (fileName, value) in items {
        guard let canonical = family.canonicalName(fileName) else { continue }
        if let other = fileNames[canonical] {
            throw ModelError.unsupported(origin: origin, reason: "tensors \(other) and \(fileName) are the same tensor (\(canonical)) under two names; keep one of them")
        }
        fileNames[canonical] = fileName
        table[canonical] = value
    }
    return table
}

/// Weights read from a safetensors model. Aligned F32 matrices are used in place, straight
/// from the memory map; F16 and BF16 are widened to F32 on load.
public final class SafetensorsWeightSource: WeightSource, @unchecked Sendable {
    public let model: SafetensorsModel
    public let family: any ModelFamily
    public let shapes: [String: [Int]]
    private let names: [String: SafetensorsModel.Tensor]

    public init(model: SafetensorsModel) throws {
        self.model = model
        family = try ModelFamilies.detect(config: model.config, fileNames: model.tensors.map(\.name), origin: model.path)
        names = try canonicalTable(model.tensors.map { ($0.name, $0) }, family: family, origin: model.path)
        shapes = names.mapValues { $0.info.shape }
    }

    public var origin: String { model.path }
    public var configJSON: JSONValue? { model.config }
    public var methodDescription: String { Set(names.values.map { $0.info.dtype.rawValue.lowercased() }).sorted().joined(separator: "+") }
    public var prefersInt8Compute: Bool { false }

    func tensor(_ name: String) throws -> SafetensorsModel.Tensor {
        guard let t = names[name] else { throw ModelError.missingTensor(origin: origin, name: name) }
        guard t.info.dtype.isFloatingPoint else {
            throw ModelError.unsupported(origin: origin, reason: "tensor \(t.name) is \(t.info.dtype.rawValue); model weights must be a float type (F32, F16, BF16)")
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
        for (name, path) in model.tokenizerFiles { files[name] = try InputFiles.read(path, what: "tokenizer file") }
        return files
    }
}

/// Weights read from an `.eqm` file: quantized tensors stay quantized.
public final class EQMWeightSource: WeightSource, @unchecked Sendable {
    public let file: EQMFile
    public let family: any ModelFamily
    public let shapes: [String: [Int]]
    private let names: [String: EQMTensorRecord]

    public init(file: EQMFile) throws {
        self.file = file
        if let recorded = file.metadata["model"]?["architecture"]?.stringValue, let f = ModelFamilies.named(recorded) {
            family = f
        } else {
            family = try ModelFamilies.detect(config: file.modelConfig, fileNames: file.tensors.map(\.name), origin: file.path)
        }
        names = try canonicalTable(file.tensors.map { ($0.name, $0) }, family: family, origin: file.path)
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
