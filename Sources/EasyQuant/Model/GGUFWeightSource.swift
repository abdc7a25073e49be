/// Weights read from a GGUF file (llama.cpp's format). Tensors are renamed to the family's
/// canonical names through its GGUF name table, dequantized to f32 on load, and brought back
/// to the canonical layout (`GGUFLayoutChange`); the config is the family's reading of the
/// GGUF metadata. Tensors the table does not name (llama.cpp's extras) are not part of the model.
public final class GGUFWeightSource: WeightSource, @unchecked Sendable {
    public let file: GGUFFile
    public let family: any ModelFamily
    public let configJSON: JSONValue?
    public let shapes: [String: [Int]]
    private let names: [String: GGUFTensorInfo]
    private let config: ModelConfig
    private let threads: Int

    public init(file: GGUFFile, threads: Int = Parallel.defaultThreads) throws {
        self.file = file
        self.threads = threads
        family = try ModelFamilies.detect(ggufArchitecture: file.value("general.architecture")?.stringValue, origin: file.path)
        guard let table = family.ggufNames else {
            throw ModelError.unsupported(origin: file.path, reason: "GGUF names of the \(family.name) family are not known")
        }
        names = try canonicalTable(file.tensors.compactMap { t in table.canonical(gguf: t.name).map { ($0, t) } },
                                   family: family, origin: file.path)
        // Shapes in the canonical layout: GGUF stores every matrix [out, in], so a matrix
        // the family stores [in, out] (output axis 1: GPT-2's Conv1D) swaps its two axes.
        let family = self.family
        let canonicalShapes = Dictionary(uniqueKeysWithValues: names.map { name, info in
            (name, family.outputAxis(of: name) == 1 && info.shape.count == 2 ? [info.shape[1], info.shape[0]] : info.shape)
        })
        let json = try family.huggingFaceConfig(gguf: file, shapes: canonicalShapes)
        configJSON = json
        config = try family.config(json: json, shapes: canonicalShapes, origin: file.path)
        shapes = canonicalShapes
    }

    public var origin: String { file.path }
    public var methodDescription: String {
        "gguf " + Set(names.values.map(\.type.name)).sorted().joined(separator: "+")
    }
    public var prefersInt8Compute: Bool { false }

    func info(_ name: String) throws -> GGUFTensorInfo {
        guard let info = names[name] else { throw ModelError.missingTensor(origin: origin, name: name) }
        return info
    }

    /// How canonical tensor `name` is laid out in the file.
    public func layout(of name: String) throws -> GGUFLayoutChange {
        _ = try info(name)
        return family.ggufLayout(of: name, config: config)
    }

    public func floats(_ name: String) throws -> [Float] {
        let info = try info(name)
        return family.ggufLayout(of: name, config: config).toCanonical(try file.floats(of: info, threads: threads), shape: info.shape)
    }

    public func matrix(_ name: String) throws -> WeightMatrix {
        guard let shape = shapes[name], shape.count == 2 else {
            throw ModelError.unsupported(origin: origin, reason: "tensor \(name) is not a matrix")
        }
        return .dense(DenseWeight(rows: shape[0], columns: shape[1], values: try floats(name)))
    }

    /// GGUF files carry their tokenizer in metadata. As a file (for embedding in an `.eqm`),
    /// it is a GGUF of its own with only the `tokenizer.*` keys (`GGUFVocabulary`).
    public func tokenizerFiles() throws -> [String: [UInt8]] {
        let keys = file.metadata.filter { $0.key.hasPrefix("tokenizer.") }
        guard !keys.isEmpty else { return [:] }
        let sink = MemorySink()
        let writer = try GGUFWriter(sink: sink, name: GGUFVocabulary.fileName,
                                    metadata: [(key: "general.architecture", value: .string(family.name))] + keys, tensors: [])
        try writer.finish()
        return [GGUFVocabulary.fileName: sink.bytes]
    }
}

extension GGUFLayoutChange {
    /// `values` (GGUF layout, `shape` as GGUF stores it in PyTorch order) in the canonical layout.
    func toCanonical(_ values: [Float], shape: [Int]) -> [Float] {
        switch self {
        case .none: return values
        case .transposed: return Self.transpose(values, rows: shape[0], columns: shape.count == 2 ? shape[1] : 1)
        case .interleavedRotary(let heads): return Self.permuteRotaryRows(values, rows: shape[0], heads: heads, toGGUF: false)
        }
    }

    /// `values` (canonical layout, canonical `shape`) in the GGUF layout.
    func toGGUF(_ values: [Float], shape: [Int]) -> [Float] {
        switch self {
        case .none: return values
        case .transposed: return Self.transpose(values, rows: shape[0], columns: shape.count == 2 ? shape[1] : 1)
        case .interleavedRotary(let heads): return Self.permuteRotaryRows(values, rows: shape[0], heads: heads, toGGUF: true)
        }
    }

    static func transpose(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = values[r * columns + c] } }
        return out
    }

    /// Reorders the rows (of any width) of each of `heads` heads: canonical row h·d + j·d/2 + i
    /// ↔ GGUF row h·d + 2i + j.
    static func permuteRotaryRows(_ values: [Float], rows: Int, heads: Int, toGGUF: Bool) -> [Float] {
        guard heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else { return values }
        let d = rows / heads, half = d / 2, width = values.count / max(1, rows)
        var out = values
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let canonical = h * d + j * half + i, gguf = h * d + 2 * i + j
                    let (from, to) = toGGUF ? (canonical, gguf) : (gguf, canonical)
                    for c in 0..<width { out[to * width + c] = values[from * width + c] }
                }
            }
        }
        return out
    }
}
