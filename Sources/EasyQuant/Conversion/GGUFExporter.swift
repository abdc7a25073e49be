import Foundation

/// What `GGUFExporter` is asked to do.
public struct GGUFExportOptions: Sendable {
    /// What to write quantized tensors as when their codes have no exact GGUF form (exact
    /// mappings are always used when they exist). `.f16` also writes matrices kept in float
    /// as F16; vectors (norms, biases) are always F32, as llama.cpp expects.
    public var request: GGUFTypeRequest
    /// Threads encoding tensors (written in order, at most `threads + 1` in memory).
    public var threads: Int
    /// A folder with the tokenizer's files, used instead of the one the `.eqm` embeds.
    public var tokenizerDirectory: String?
    /// `general.name`; nil: the `.eqm` file's name without its extension.
    public var modelName: String?

    public init(request: GGUFTypeRequest = .auto, threads: Int = Parallel.defaultThreads,
                tokenizerDirectory: String? = nil, modelName: String? = nil) {
        self.request = request; self.threads = threads; self.tokenizerDirectory = tokenizerDirectory; self.modelName = modelName
    }
}

/// Why an `.eqm` cannot be written as GGUF; `description` is one line naming the file and
/// what to do.
public struct GGUFExportError: Error, CustomStringConvertible, Equatable {
    public enum Problem: Equatable {
        /// The file's family has no GGUF names or metadata.
        case family(String)
        /// A tensor that llama.cpp's table for the family has no name for.
        case unnamedTensor(String)
        /// No tokenizer is embedded (and none was given).
        case noTokenizer
        /// The tokenizer has more tokens than the model's vocabulary.
        case tokenizerTooLarge(tokens: Int, vocabulary: Int)
    }
    public var path: String
    public var problem: Problem

    public var description: String {
        switch problem {
        case .family(let reason):
            return "\(path): \(reason); GGUF export supports the gpt2 and llama families"
        case .unnamedTensor(let name):
            return "\(path): tensor \(name) has no llama.cpp name in its family's GGUF table, so llama.cpp could not use it; convert without it (e.g. from the original checkpoint)"
        case .noTokenizer:
            return "\(path): no tokenizer is embedded, and llama.cpp needs one in the GGUF file; convert the model folder that has tokenizer.json (or vocab.json + merges.txt), or give the tokenizer's folder"
        case let .tokenizerTooLarge(tokens, vocabulary):
            return "\(path): the tokenizer has \(tokens) tokens but the model's vocabulary only \(vocabulary); the tokenizer does not belong to this model"
        }
    }
}

/// What an export wrote and what it changed.
public struct GGUFExportReport: Sendable {
    /// One tensor as written.
    public struct Tensor: Sendable {
        /// llama.cpp's name, and the `.eqm`'s (canonical) name.
        public var name: String
        public var sourceName: String
        public var type: GGMLType
        /// PyTorch order, as GGUF stores it ([out, in] for matrices).
        public var shape: [Int]
        public var route: GGUFTensorPlan.Route
        /// One line: which route and why (`exact: absmax 8-bit channel codes as Q8_0`, …).
        public var summary: String
        public var elements: Int
        /// Bytes of the tensor's data in the GGUF file.
        public var bytes: Int
        /// Against the `.eqm`'s own values (dequantized codes, outlier features restored,
        /// floats as stored): the largest |difference| and the root mean square.
        public var maxAbsError: Double
        public var rmsError: Double
        /// Whether the tensor was quantized in the `.eqm` (a weight that had codes).
        public var wasQuantized: Bool
    }

    public var source: String
    public var output: String
    public var family: String
    public var method: String
    public var fileType: GGUFFileType
    public var tensors: [Tensor] = []
    /// What does not travel, or travels differently (one line each).
    public var notes: [String] = []
    public var eqmBytes = 0
    public var ggufBytes = 0
    public var seconds = 0.0

    /// Tensors per route.
    public var routeCounts: [GGUFTensorPlan.Route: Int] { Dictionary(grouping: tensors, by: \.route).mapValues(\.count) }
    /// Over every element of every tensor.
    public var maxAbsError: Double { tensors.map(\.maxAbsError).max() ?? 0 }
    public var rmsError: Double {
        let n = tensors.reduce(0.0) { $0 + Double($1.elements) }
        return n == 0 ? 0 : (tensors.reduce(0.0) { $0 + $1.rmsError * $1.rmsError * Double($1.elements) } / n).squareRoot()
    }
    /// GGUF bits per weight of the tensors that were quantized in the `.eqm` (data only).
    public var bitsPerQuantizedWeight: Double {
        let q = tensors.filter(\.wasQuantized)
        let n = q.reduce(0) { $0 + $1.elements }
        return n == 0 ? 0 : Double(q.reduce(0) { $0 + $1.bytes } * 8) / Double(n)
    }
    /// The `count` tensors with the largest errors, largest first.
    public func largestErrors(_ count: Int) -> [Tensor] {
        Array(tensors.sorted { ($0.maxAbsError, $0.name) > ($1.maxAbsError, $1.name) }.prefix(count))
    }

    public var json: JSONValue {
        .makeObject([
            ("source", .string(source)), ("output", .string(output)), ("family", .string(family)), ("method", .string(method)),
            ("file_type", .string(fileType.name)), ("eqm_bytes", JSONValue(eqmBytes)), ("gguf_bytes", JSONValue(ggufBytes)),
            ("bits_per_quantized_weight", .double(bitsPerQuantizedWeight)),
            ("routes", .makeObject(GGUFTensorPlan.Route.allCases.map { ($0.rawValue, JSONValue(routeCounts[$0] ?? 0)) })),
            ("max_abs_error", .double(maxAbsError)), ("rms_error", .double(rmsError)),
            ("notes", .array(notes.map { .string($0) })),
            ("tensors", .array(tensors.map { t in
                .makeObject([("name", .string(t.name)), ("source_name", .string(t.sourceName)), ("type", .string(t.type.name)),
                             ("shape", JSONValue(t.shape)), ("route", .string(t.route.rawValue)), ("summary", .string(t.summary)),
                             ("bytes", JSONValue(t.bytes)), ("max_abs_error", .double(t.maxAbsError)), ("rms_error", .double(t.rmsError))])
            })),
            ("seconds", .double(seconds)),
        ])
    }
}

/// `general.file_type`: llama.cpp's name for what most of the weights are.
public enum GGUFFileType: UInt32, Sendable {
    case allF32 = 0, mostlyF16 = 1, mostlyQ4_0 = 2, mostlyQ4_1 = 3, mostlyQ8_0 = 7, mostlyBF16 = 32

    public var name: String {
        switch self {
        case .allF32: return "ALL_F32"
        case .mostlyF16: return "MOSTLY_F16"
        case .mostlyQ4_0: return "MOSTLY_Q4_0"
        case .mostlyQ4_1: return "MOSTLY_Q4_1"
        case .mostlyQ8_0: return "MOSTLY_Q8_0"
        case .mostlyBF16: return "MOSTLY_BF16"
        }
    }

    /// The type of the matrices holding the most elements.
    static func of(_ matrices: [(type: GGMLType, elements: Int)]) -> GGUFFileType {
        var byType: [GGMLType: Int] = [:]
        for m in matrices { byType[m.type, default: 0] += m.elements }
        guard let top = byType.max(by: { ($0.value, $0.key.rawValue) < ($1.value, $1.key.rawValue) })?.key else { return .allF32 }
        switch top {
        case .Q8_0: return .mostlyQ8_0
        case .Q4_0: return .mostlyQ4_0
        case .Q4_1: return .mostlyQ4_1
        case .F16: return .mostlyF16
        case .BF16: return .mostlyBF16
        default: return .allF32
        }
    }
}

/// Writes an `.eqm` model as a GGUF file llama.cpp runs (docs/GGUF.md "Export"): the family's
/// llama.cpp tensor names (`ModelFamily.ggufNames`) and layouts (`ggufLayout`), moved in code
/// space so quantized codes survive; each quantized tensor's codes carried exactly where a
/// GGUF block type holds them (`GGUFTensorPlan`), requantized or dequantized otherwise as
/// `GGUFExportOptions.request` says; the architecture metadata (`ModelFamily.ggufMetadata`)
/// and the tokenizer embedded (`tokenizer.ggml.*`).
///
/// LLM.int8's outlier features go back into their matrices (as floats, then requantized),
/// since GGUF has no decomposition. Tensors under the reserved `eqm.` prefix (calibration
/// records, AWQ's scales, KV-cache ranges) are not written: they are not weights. Work is
/// streamed: every tensor is planned first (so the header can be written), then encoded on
/// `threads` threads and appended in order.
public struct GGUFExporter {
    public var options: GGUFExportOptions

    public init(options: GGUFExportOptions = GGUFExportOptions()) { self.options = options }

    /// Writes `eqm` to `path` (through a temporary file renamed at the end).
    public func export(_ eqm: EQMFile, to path: String, progress: ((Int, Int) -> Void)? = nil) throws -> GGUFExportReport {
        try export(eqm, named: path, progress: progress) { metadata, declarations in
            try GGUFWriter(path: path, metadata: metadata, tensors: declarations)
        }
    }

    /// Writes `eqm` into any sink (a `MemorySink` keeps the file in memory); `name` is used in messages.
    public func export(_ eqm: EQMFile, into sink: any ByteSink, named name: String,
                       progress: ((Int, Int) -> Void)? = nil) throws -> GGUFExportReport {
        try export(eqm, named: name, progress: progress) { metadata, declarations in
            try GGUFWriter(sink: sink, name: name, metadata: metadata, tensors: declarations)
        }
    }

    private func export(_ eqm: EQMFile, named output: String, progress: ((Int, Int) -> Void)?,
                        makeWriter: ([(key: String, value: GGUFValue)], [GGUFTensorDeclaration]) throws -> GGUFWriter) throws -> GGUFExportReport {
        let start = Date()
        let weights: EQMWeightSource
        do {
            weights = try EQMWeightSource(file: eqm)
        } catch let e as ModelError {
            throw GGUFExportError(path: eqm.path, problem: .family("its model family is not known (\(e.description))"))
        }
        let family = weights.family
        guard let table = family.ggufNames else {
            throw GGUFExportError(path: eqm.path, problem: .family("the \(family.name) family has no llama.cpp tensor names"))
        }
        let config = try weights.modelConfig()
        let architecture: [(key: String, value: GGUFValue)]
        do {
            architecture = try family.ggufMetadata(config: config)
        } catch {
            throw GGUFExportError(path: eqm.path, problem: .family("the \(family.name) family has no GGUF architecture metadata"))
        }

        // Every weight the model has, in file order; the reserved tensors are not weights.
        var notes: [String] = []
        let reserved = eqm.tensors.filter { $0.name.hasPrefix(ExtraTensor.prefix) && !$0.name.hasPrefix(OutlierFeatures.prefix) }
        if !reserved.isEmpty {
            notes.append("\(reserved.count) calibration tensor(s) under eqm. (\(reserved[0].name), ...) are not weights and were not written")
        }
        var items: [Item] = []
        for record in eqm.tensors where !record.name.hasPrefix(ExtraTensor.prefix) {
            guard let canonical = family.canonicalName(record.name) else { continue }
            guard let name = table.gguf(canonical: canonical) else {
                throw GGUFExportError(path: eqm.path, problem: .unnamedTensor(record.name))
            }
            let outliers = try weights.outliers(canonical)
            items.append(Item(record: record, canonical: canonical, name: name, layout: family.ggufLayout(of: canonical, config: config),
                              outliers: outliers, outputIsRows: family.outputAxis(of: canonical) == 0))
        }
        let restored = items.filter { $0.outliers != nil }
        if !restored.isEmpty {
            let features = restored.reduce(0) { $0 + $1.outliers!.count }
            notes.append("LLM.int8: \(features) outlier feature row(s) of \(restored.count) matrices put back into their matrices, which were then requantized (GGUF has no f32 decomposition)")
        }
        if eqm.quantizationInfo?["compute"]?.stringValue == "int8" {
            notes.append("W8A8: the activation quantization the .eqm asks for does not travel; llama.cpp quantizes activations its own way inside its Q8_0/Q4 products")
        }

        // Plans first: the writer needs every type and shape before the first byte.
        let request = options.request
        let plans = try items.map { try $0.plan(eqm, request: request) }
        let fileType = GGUFFileType.of(zip(items, plans).filter { $0.0.record.shape.count == 2 }.map { ($0.1.plan.type, $0.0.record.elementCount) })
        let metadata = try self.metadata(eqm, weights: weights, config: config, architecture: architecture, fileType: fileType)
        let writer = try makeWriter(metadata, plans.map(\.plan.declaration))

        var report = GGUFExportReport(source: eqm.path, output: output, family: family.name, method: weights.methodDescription,
                                      fileType: fileType)
        report.notes = notes
        let work = Array(zip(items, plans))
        try OrderedPipeline.run(count: work.count, threads: options.threads, window: options.threads + 1, produce: { i in
            let (item, plan) = work[i]
            return try item.encode(eqm, plan: plan, request: request)
        }, consume: { i, encoded in
            try writer.append(encoded)
            let (item, plan) = work[i]
            report.tensors.append(GGUFExportReport.Tensor(
                name: item.name, sourceName: item.record.name, type: encoded.plan.type, shape: encoded.plan.shape,
                route: plan.route, summary: plan.summary, elements: item.record.elementCount, bytes: encoded.bytes.count,
                maxAbsError: encoded.maxAbsError, rmsError: encoded.rmsError, wasQuantized: item.record.quantization != nil))
            progress?(i + 1, work.count)
        })
        report.ggufBytes = try writer.finish()
        report.eqmBytes = eqm.file.count
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    /// general.*, the family's architecture keys, EasyQuant's provenance keys, the tokenizer.
    private func metadata(_ eqm: EQMFile, weights: EQMWeightSource, config: ModelConfig,
                          architecture: [(key: String, value: GGUFValue)], fileType: GGUFFileType) throws -> [(key: String, value: GGUFValue)] {
        let name = options.modelName ?? ((eqm.path as NSString).lastPathComponent as NSString).deletingPathExtension
        var out: [(key: String, value: GGUFValue)] = architecture.filter { $0.key == "general.architecture" }
        out += [
            ("general.name", .string(name)),
            ("general.file_type", .uint32(fileType.rawValue)),
            ("general.quantization_version", .uint32(2)),
            ("general.quantized_by", .string("EasyQuant \(EasyQuantVersion.string)")),
        ]
        out += architecture.filter { $0.key != "general.architecture" }
        let q = eqm.quantizationInfo
        out.append(("easyquant.method", .string(q?["method"]?.stringValue ?? "unknown")))
        if let g = q?["granularity"]?.stringValue { out.append(("easyquant.granularity", .string(g))) }
        if let b = q?["bits"]?.intValue, let bits = UInt32(exactly: b) { out.append(("easyquant.bits", .uint32(bits))) }

        let tokenizer: BPETokenizer
        do {
            tokenizer = try EvaluationSetup.tokenizer(for: weights, override: options.tokenizerDirectory)
        } catch EvaluationSetup.Failure.noTokenizer {
            throw GGUFExportError(path: eqm.path, problem: .noTokenizer)
        }
        var description = tokenizer.portableDescription(source: eqm.path)
        guard description.tokens.count <= config.vocabSize else {
            throw GGUFExportError(path: eqm.path, problem: .tokenizerTooLarge(tokens: description.tokens.count, vocabulary: config.vocabSize))
        }
        // llama.cpp sizes the vocabulary by the token list: embedding rows beyond the
        // tokenizer's tokens (padding) get unused placeholder tokens, as its converter does.
        for id in description.tokens.count..<config.vocabSize {
            description.tokens.append("[PAD\(id)]")
            description.tokenTypes?.append(.unused)
        }
        out += try description.ggufMetadata()
        return out
    }

    /// One tensor to write: its `.eqm` record, names, layout change and outlier part.
    struct Item: Sendable {
        let record: EQMTensorRecord
        let canonical: String
        let name: String
        let layout: GGUFLayoutChange
        let outliers: OutlierFeatures?
        /// Whether the canonical matrix is [out, in] (else [in, out]), for restoring outliers.
        let outputIsRows: Bool

        /// The quantized tensor in GGUF's layout, moved in code space; nil when it is not
        /// quantized, carries outliers, or its rows cannot move with their scales.
        func codes(_ eqm: EQMFile) throws -> QuantizedTensor? {
            guard record.quantization != nil, outliers == nil else { return nil }
            let q = try eqm.quantizedTensor(record)
            switch layout {
            case .none: return q
            case .transposed: return q.transposed()
            case .interleavedRotary:
                guard let order = layout.rowOrder(rows: q.shape[0], toGGUF: true) else { return q }
                return q.reorderingRows(order)
            }
        }

        /// The values in GGUF's layout, with outlier features restored: the reference the
        /// float route encodes and measures against.
        func floats(_ eqm: EQMFile) throws -> [Float] {
            var values = try eqm.floats(record)
            if let outliers {
                let shape = record.shape
                guard shape.count == 2 else {
                    throw ModelError.unsupported(origin: eqm.path, reason: "outlier features belong to \(record.name), which is not a matrix")
                }
                try outliers.check(inFeatures: outputIsRows ? shape[1] : shape[0], outFeatures: outputIsRows ? shape[0] : shape[1],
                                   origin: eqm.path, name: canonical)
                values = outliers.restored(into: values, outputIsRows: outputIsRows)
            }
            return layout.toGGUF(values, shape: record.shape)
        }

        /// The shape in GGUF's layout (PyTorch order).
        var ggufShape: [Int] {
            layout == .transposed && record.shape.count == 2 ? [record.shape[1], record.shape[0]] : record.shape
        }

        func plan(_ eqm: EQMFile, request: GGUFTypeRequest) throws -> Planned {
            if let q = try codes(eqm) {
                let plan = try GGUFTensorPlan(quantized: q, name: name, request: request)
                return Planned(plan: plan, route: plan.route, summary: plan.summary, fromCodes: true)
            }
            let shape = ggufShape
            if let quantization = record.quantization {
                // Quantized, but the codes cannot be carried: floats, to the type the request
                // (or the width) says.
                var target: GGMLType
                switch request {
                case .auto: target = quantization.bits > 4 ? .Q8_0 : (quantization.isSymmetric ? .Q4_0 : .Q4_1)
                case .f16: target = .F16
                case .f32: target = .F32
                case .q8_0: target = .Q8_0
                case .q4_0: target = .Q4_0
                case .q4_1: target = .Q4_1
                }
                if target.blockSize > 1, shape.count != 2 || shape[1] % target.blockSize != 0 { target = request == .f32 ? .F32 : .F16 }
                let plan = try GGUFTensorPlan(floats: name, shape: shape, as: target)
                let why = outliers.map { "\($0.count) LLM.int8 outlier feature(s) restored" }
                    ?? "its scale blocks span several rows, which the rotary row order would split"
                let source = "\(quantization.method) \(quantization.bits)-bit"
                let summary = target.blockSize == 1 ? "dequantized from \(source) to \(target.name) (\(why))"
                                                    : "requantized from \(source) to \(target.name) (\(why))"
                return Planned(plan: plan, route: target.blockSize == 1 ? .dequantized : .requantized, summary: summary, fromCodes: false)
            }
            // Float in the .eqm: vectors stay F32 (llama.cpp's norms and biases), matrices F32
            // unless F16 was asked for.
            let type: GGMLType = shape.count == 2 && request == .f16 ? .F16 : .F32
            let plan = try GGUFTensorPlan(floats: name, shape: shape, as: type)
            return Planned(plan: plan, route: plan.route, summary: plan.summary, fromCodes: false)
        }

        func encode(_ eqm: EQMFile, plan: Planned, request: GGUFTypeRequest) throws -> GGUFEncodedTensor {
            if plan.fromCodes, let q = try codes(eqm) {
                return try GGUFTensorEncoder.encode(q, name: name, request: request)
            }
            return try GGUFTensorEncoder.encode(floats: floats(eqm), shape: plan.plan.shape, name: name, as: plan.plan.type)
        }
    }

    /// A tensor's plan with the route and summary the report gives (a float plan made for a
    /// quantized tensor is reported as requantized or dequantized).
    struct Planned: Sendable {
        let plan: GGUFTensorPlan
        let route: GGUFTensorPlan.Route
        let summary: String
        let fromCodes: Bool
    }
}
