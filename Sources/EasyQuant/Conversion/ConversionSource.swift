import Foundation

/// One tensor as the converter sees it.
public struct ConversionEntry: Sendable {
    /// The name written to the `.eqm` (the file's own for safetensors, the canonical one for GGUF).
    public var storedName: String
    /// The family's canonical name, or nil for tensors that are not weights (buffers).
    public var canonicalName: String?
    /// Shape in the canonical layout.
    public var shape: [Int]
    /// The element type recorded as the tensor's source type.
    public var dtype: DType
    /// Whether the stored values are real numbers the quantizers can use.
    public var isFloatingPoint: Bool
    /// Bytes the tensor takes in the source (for progress).
    public var byteCount: Int
    /// The source's own index of the tensor.
    let index: Int
}

/// What the converter reads: a model's tensors in file order, each available as floats, and
/// what the `.eqm` records beside them (config, tokenizer files, the files to hash).
/// Safetensors models and GGUF files both are one.
public protocol ConversionSource: AnyObject {
    var path: String { get }
    /// The model family, or nil for a file of tensors no family describes (weight-only
    /// methods still quantize it, every matrix [out, in]; nothing can run it).
    var family: (any ModelFamily)? { get }
    /// Tensors in file order.
    var entries: [ConversionEntry] { get }
    /// The Hugging Face config the `.eqm` embeds.
    var configJSON: JSONValue? { get }
    /// The files whose SHA-256 the `.eqm` records.
    var files: [String] { get }
    /// Bytes of those files.
    var fileBytes: Int { get }
    /// The tokenizer files to embed, by name.
    func tokenizerFiles() throws -> [(name: String, bytes: [UInt8])]
    /// Calls `body` with the tensor's values as floats in the canonical layout.
    func withFloats<R>(_ entry: ConversionEntry, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R
    /// Tells the kernel the tensor's pages are no longer needed by this process.
    func release(_ entry: ConversionEntry)
    /// The f32 model over the same file, for calibration.
    func weightSource() throws -> any WeightSource
    /// The tensor's own quantization codes in the canonical layout, when the file holds
    /// codes an `.eqm` can keep as they are (GGUF's Q8_0, Q4_0, Q4_1 matrices); else nil.
    func storedCodes(_ entry: ConversionEntry) throws -> QuantizedTensor?
}

extension ConversionSource {
    public func storedCodes(_ entry: ConversionEntry) throws -> QuantizedTensor? { nil }
}

/// Opens a conversion source by sniffing the file: GGUF, or safetensors (file or folder).
/// An `.eqm` is not a conversion source (it is already quantized).
public func openConversionSource(path: String) throws -> any ConversionSource {
    if GGUFFile.isGGUF(path: path) { return try GGUFConversionSource(GGUFWeightSource(file: GGUFFile(path: path))) }
    return try SafetensorsConversionSource(SafetensorsModel(path: path))
}

/// A safetensors model (file or Hugging Face folder) as a conversion source: F32 tensors are
/// read in place from the memory map, F16/BF16 converted per tensor.
public final class SafetensorsConversionSource: ConversionSource {
    public let model: SafetensorsModel
    public let family: (any ModelFamily)?
    public let entries: [ConversionEntry]

    public init(_ model: SafetensorsModel) throws {
        self.model = model
        do {
            family = try ModelFamilies.detect(config: model.config, fileNames: model.tensors.map(\.name), origin: model.path)
        } catch let error as ModelError {
            // A config naming an unknown family is an error; a bare file of tensors is not.
            guard model.config == nil else { throw error }
            family = nil
        }
        let family = self.family
        entries = model.tensors.enumerated().map { i, t in
            ConversionEntry(storedName: t.name, canonicalName: family.map { $0.canonicalName(t.name) } ?? t.name, shape: t.info.shape, dtype: t.info.dtype,
                            isFloatingPoint: t.info.dtype.isFloatingPoint, byteCount: t.info.byteCount, index: i)
        }
    }

    public var path: String { model.path }
    public var configJSON: JSONValue? { model.config }
    public var files: [String] { model.shards.map(\.path) }
    public var fileBytes: Int { model.fileBytes }

    public func tokenizerFiles() throws -> [(name: String, bytes: [UInt8])] {
        try model.tokenizerFiles.map { ($0.name, try InputFiles.read($0.path, what: "tokenizer file")) }
    }

    public func withFloats<R>(_ entry: ConversionEntry, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        try model.withFloats(of: model.tensors[entry.index], body)
    }

    public func release(_ entry: ConversionEntry) { model.release(model.tensors[entry.index]) }

    public func weightSource() throws -> any WeightSource { try SafetensorsWeightSource(model: model) }
}

/// A GGUF file as a conversion source: the family's tensors under their canonical names,
/// dequantized and brought to the canonical layout one at a time.
public final class GGUFConversionSource: ConversionSource {
    public let source: GGUFWeightSource
    public let entries: [ConversionEntry]

    public init(_ source: GGUFWeightSource) throws {
        self.source = source
        // File order, as the GGUF lists its tensors.
        let byGGUFName = Dictionary(uniqueKeysWithValues: source.file.tensors.enumerated().map { ($1.name, $0) })
        let table = source.family.ggufNames!
        entries = source.shapes.keys.compactMap { name -> ConversionEntry? in
            guard let ggufName = table.gguf(canonical: name), let i = byGGUFName[ggufName] else { return nil }
            let info = source.file.tensors[i]
            let dtype: DType = info.type == .F16 ? .f16 : info.type == .BF16 ? .bf16 : .f32
            return ConversionEntry(storedName: name, canonicalName: name, shape: source.shapes[name]!, dtype: dtype,
                                   isFloatingPoint: true, byteCount: info.byteCount, index: i)
        }.sorted { $0.index < $1.index }
    }

    public var path: String { source.origin }
    public var family: (any ModelFamily)? { source.family }
    public var configJSON: JSONValue? { source.configJSON }
    public var files: [String] { [source.file.path] }
    public var fileBytes: Int { source.file.file.count }

    public func tokenizerFiles() throws -> [(name: String, bytes: [UInt8])] {
        try source.tokenizerFiles().map { ($0.key, $0.value) }.sorted { $0.name < $1.name }
    }

    public func withFloats<R>(_ entry: ConversionEntry, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        try source.floats(entry.storedName).withUnsafeBufferPointer { try body($0) }
    }

    public func release(_ entry: ConversionEntry) {
        let info = source.file.tensors[entry.index]
        source.file.file.release(info.fileRange)
    }

    public func weightSource() throws -> any WeightSource { source }

    /// Q8_0, Q4_0 and Q4_1 matrices as codes (`GGUFFile.quantizedTensor`), brought back to
    /// the canonical layout in code space (transposed, or rotary rows put back in order).
    public func storedCodes(_ entry: ConversionEntry) throws -> QuantizedTensor? {
        let info = source.file.tensors[entry.index]
        guard [.Q8_0, .Q4_0, .Q4_1].contains(info.type), info.shape.count == 2 else { return nil }
        let q = try source.file.quantizedTensor(info)
        switch try source.layout(of: entry.storedName) {
        case .none: return q
        case .transposed: return q.transposed()
        case let change:
            // GGUF's blocks are one row high, so rows always move with their scales.
            guard let order = change.rowOrder(rows: q.shape[0], toGGUF: false) else { return q }
            return q.reorderingRows(order)
        }
    }
}

extension SafetensorsModel {
    /// Calls `body` with a tensor's values as floats: straight from the map when the tensor
    /// is aligned F32, else converted into a temporary buffer.
    public func withFloats<R>(of tensor: Tensor, _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        let raw = bytes(of: tensor)
        let count = tensor.info.elementCount
        if tensor.info.dtype == .f32, count == 0 || Int(bitPattern: raw.baseAddress) % 4 == 0 {
            return try body(UnsafeBufferPointer(start: raw.baseAddress?.assumingMemoryBound(to: Float.self), count: count))
        }
        return try floats(of: tensor).withUnsafeBufferPointer { try body($0) }
    }
}
