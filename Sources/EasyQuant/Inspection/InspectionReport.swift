/// Everything `eqinspect` prints about one model file, as text for people and as one JSON
/// document for scripts.
public struct InspectionReport: Sendable {
    /// What kind of file was inspected.
    public enum Kind: String, Sendable { case eqm, safetensors, gguf }

    /// What a GGUF file's header holds besides its tensors.
    public struct GGUFHeader: Sendable {
        /// Alignment of the data section.
        public var alignment: Int
        /// Absolute offset of the data section.
        public var dataStart: Int
        /// The metadata, in file order.
        public var metadata: [(key: String, value: GGUFValue)]
    }

    /// One row of the per-type totals of a GGUF file.
    public struct TypeTotal: Sendable {
        public var type: String
        public var tensors: Int
        public var elements: Int
        public var bytes: Int
        public var bitsPerWeight: Double { elements == 0 ? 0 : Double(bytes * 8) / Double(elements) }
    }

    /// An input file of the conversion (or a shard of the inspected safetensors model).
    public struct SourceFile: Sendable {
        /// File name.
        public var file: String
        /// Size in bytes, when known.
        public var bytes: Int?
        /// SHA-256 as lowercase hex, when known.
        public var sha256: String?
    }

    /// The inspected path, as given.
    public var path: String
    /// `.eqm` or safetensors.
    public var kind: Kind
    /// Bytes of the file (all shards for a safetensors model).
    public var fileBytes: Int
    /// "1.0" for an `.eqm` file; the version ("3") for GGUF; "safetensors" otherwise.
    public var formatVersion: String
    /// Alignment and metadata, for a GGUF file.
    public var gguf: GGUFHeader?
    /// The conversion's input files (`.eqm`), or the shards themselves (safetensors).
    public var sources: [SourceFile] = []
    /// The tool that wrote the file.
    public var tool: String?
    /// That tool's version.
    public var toolVersion: String?
    /// When the file was written (ISO 8601).
    public var created: String?
    /// Model architecture, e.g. `gpt2`.
    public var architecture: String?
    /// Names of the embedded (or companion) tokenizer files.
    public var tokenizerFiles: [String] = []
    /// Quantization method asked for at conversion.
    public var method: String?
    /// Scale granularity asked for (`channel`, `tensor`, `group:N`).
    public var granularity: String?
    /// Code width asked for.
    public var bits: Int?
    /// `metadata.quantization.parameters` as written (e.g. the zstd level).
    public var parameters: JSONValue?
    /// `--keep` patterns of the conversion.
    public var kept: [String] = []
    /// Tensors the conversion left out (mask buffers).
    public var dropped: [String] = []
    /// Per tensor, in file order.
    public var tensors: [TensorReport] = []
    /// The original compared against, with `--compare`.
    public var comparedWith: String?
    /// Tensors of the original that the file does not hold (e.g. dropped mask buffers).
    public var notInFile: [String] = []
    /// Text histograms, by tensor name, in the order asked for.
    public var histograms: [(name: String, histogram: Histogram)] = []
    /// Where the SVG figure was written, with `--plot`.
    public var plotPath: String?
    /// The tensors it shows.
    public var plottedTensors: [String] = []

    /// An empty report for a file; `ModelInspector` fills it in.
    public init(path: String, kind: Kind, fileBytes: Int, formatVersion: String) {
        self.path = path; self.kind = kind; self.fileBytes = fileBytes; self.formatVersion = formatVersion
    }

    // MARK: Totals

    /// The quantized tensors, in file order.
    public var quantizedTensors: [TensorReport] { tensors.filter(\.isQuantized) }
    /// Elements over all tensors.
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.elementCount } }
    /// Bytes all tensors take (blobs in an `.eqm`, raw data in safetensors).
    public var tensorBytes: Int { tensors.reduce(0) { $0 + $1.storedBytes } }
    /// Stored bits per quantized weight: codes, scales and zero points (as eqconvert reports it).
    public var bitsPerWeight: Double {
        let q = quantizedTensors
        let n = q.reduce(0) { $0 + $1.elementCount }
        return n == 0 ? 0 : Double(q.reduce(0) { $0 + $1.storedBytes } * 8) / Double(n)
    }
    /// Tensors, elements and bytes by storage type, in order of first appearance (GGUF files).
    public var totalsByType: [TypeTotal] {
        var order: [String] = [], totals: [String: TypeTotal] = [:]
        for t in tensors {
            if totals[t.storage] == nil { order.append(t.storage); totals[t.storage] = TypeTotal(type: t.storage, tensors: 0, elements: 0, bytes: 0) }
            totals[t.storage]!.tensors += 1
            totals[t.storage]!.elements += t.elementCount
            totals[t.storage]!.bytes += t.storedBytes
        }
        return order.map { totals[$0]! }
    }
    /// Stored bits per parameter over all tensors (header, tokenizer and padding excluded).
    public var bitsPerParameter: Double { parameterCount == 0 ? 0 : Double(tensorBytes * 8) / Double(parameterCount) }
    /// The whole file's bits per parameter.
    public var fileBitsPerParameter: Double { parameterCount == 0 ? 0 : Double(fileBytes * 8) / Double(parameterCount) }

    /// The entropy bound of the tensor data: codes at their order-0 entropy (per tensor), plus
    /// scales, zero points and float tensors at their stored, compressed size.
    public var boundBytes: Double { tensors.reduce(0) { $0 + $1.boundBytes } }
    /// Actual tensor bytes over the bound (1 = the bound is reached).
    public var actualOverBound: Double { boundBytes == 0 ? 0 : Double(tensorBytes) / boundBytes }

    /// Error over the quantized tensors, each weighted by its element count.
    public var quantizedError: ErrorSummary? { summary(of: quantizedTensors) }
    /// Error over all tensors (float tensors contribute their exact zero error).
    public var allError: ErrorSummary? { summary(of: tensors) }

    private func summary(of list: [TensorReport]) -> ErrorSummary? {
        guard comparedWith != nil else { return nil }
        var s = ErrorSummary()
        for t in list { if let e = t.error { s.add(e) } }
        return s
    }

    // MARK: JSON

    /// One JSON document with plain field names.
    public var json: JSONValue {
        var top: [(String, JSONValue)] = [
            ("file", .string(path)), ("kind", .string(kind.rawValue)), ("format_version", .string(formatVersion)),
            ("file_bytes", JSONValue(fileBytes)),
            ("sources", .array(sources.map { s in
                .makeObject([("file", .string(s.file)), ("bytes", s.bytes.map(JSONValue.init) ?? .null),
                             ("sha256", s.sha256.map(JSONValue.string) ?? .null)])
            })),
        ]
        func optional(_ key: String, _ v: String?) { if let v { top.append((key, .string(v))) } }
        optional("tool", tool); optional("tool_version", toolVersion); optional("created", created)
        optional("architecture", architecture)
        if !tokenizerFiles.isEmpty { top.append(("tokenizer_files", .array(tokenizerFiles.map(JSONValue.string)))) }
        optional("method", method); optional("granularity", granularity)
        if let bits { top.append(("bits", JSONValue(bits))) }
        if let parameters { top.append(("parameters", parameters)) }
        if let gguf {
            top.append(("gguf", .makeObject([
                ("version", .string(formatVersion)), ("alignment", JSONValue(gguf.alignment)), ("data_start", JSONValue(gguf.dataStart)),
                ("metadata", .array(gguf.metadata.map { Self.json(of: $0.key, $0.value) })),
            ])))
            top.append(("totals_by_type", .array(totalsByType.map {
                .makeObject([("type", .string($0.type)), ("tensors", JSONValue($0.tensors)), ("elements", JSONValue($0.elements)),
                             ("bytes", JSONValue($0.bytes)), ("bits_per_weight", .double($0.bitsPerWeight))])
            })))
        }
        if kind == .eqm {
            top.append(("kept", .array(kept.map(JSONValue.string))))
            top.append(("dropped", .array(dropped.map(JSONValue.string))))
        }
        top.append(("totals", .makeObject([
            ("tensors", JSONValue(tensors.count)),
            ("quantized_tensors", JSONValue(quantizedTensors.count)),
            ("float_tensors", JSONValue(tensors.count - quantizedTensors.count)),
            ("parameters", JSONValue(parameterCount)),
            ("file_bytes", JSONValue(fileBytes)),
            ("tensor_bytes", JSONValue(tensorBytes)),
            ("bits_per_weight", .double(bitsPerWeight)),
            ("bits_per_parameter", .double(bitsPerParameter)),
            ("file_bits_per_parameter", .double(fileBitsPerParameter)),
        ])))
        if kind == .eqm {
            top.append(("entropy_bound", .makeObject([
                ("bound_bytes", .double(boundBytes)),
                ("actual_bytes", JSONValue(tensorBytes)),
                ("actual_over_bound", .double(actualOverBound)),
            ])))
        }
        top.append(("tensors", .array(tensors.map(Self.json(of:)))))
        if let comparedWith, let q = quantizedError, let a = allError {
            top.append(("comparison", .makeObject([
                ("original", .string(comparedWith)),
                ("quantized", Self.json(of: q)),
                ("all", Self.json(of: a)),
                ("not_in_file", .array(notInFile.map(JSONValue.string))),
            ])))
        }
        if !histograms.isEmpty {
            top.append(("histograms", .array(histograms.map { name, h in
                .makeObject([("name", .string(name)), ("lower", .double(h.lower)), ("upper", .double(h.upper)),
                             ("counts", JSONValue(h.counts)), ("below", JSONValue(h.below)), ("above", JSONValue(h.above)),
                             ("non_finite", JSONValue(h.nonFinite))])
            })))
        }
        if let plotPath {
            top.append(("plot", .makeObject([("path", .string(plotPath)), ("tensors", .array(plottedTensors.map(JSONValue.string)))])))
        }
        return .makeObject(top)
    }

    static func json(of t: TensorReport) -> JSONValue {
        var m: [(String, JSONValue)] = [
            ("name", .string(t.name)), ("shape", JSONValue(t.shape)), ("storage", .string(t.storage)),
            ("encoding", .string(t.isQuantized || (t.ggmlType?.blockSize ?? 1) > 1 ? "quantized" : "float")), ("source_dtype", .string(t.sourceDType)),
            ("elements", JSONValue(t.elementCount)), ("stored_bytes", JSONValue(t.storedBytes)),
            ("bits_per_weight", .double(t.bitsPerWeight)),
        ]
        if let q = t.quantization {
            m += [("method", .string(q.method)), ("bits", JSONValue(q.bits)), ("signed", .bool(q.isSigned)),
                  ("scheme", .string(q.isSymmetric ? "symmetric" : "asymmetric")),
                  ("axis", q.layout.axis.map(JSONValue.init) ?? .null), ("group_size", JSONValue(q.layout.groupSize)),
                  ("parameter_bytes", JSONValue(t.parameterBytes))]
        }
        if let h = t.entropyBitsPerWeight { m.append(("entropy_bits_per_weight", .double(h))) }
        if t.codes != nil { m.append(("entropy_bound_bytes", .double(t.boundBytes))) }
        if let r = t.scaleRange { m += [("scale_min", .double(Double(r.lowerBound))), ("scale_max", .double(Double(r.upperBound)))] }
        if let r = t.zeroPointRange { m += [("zero_point_min", .double(Double(r.lowerBound))), ("zero_point_max", .double(Double(r.upperBound)))] }
        if let l = t.clampLimits { m.append(("clamp_limits", JSONValue([l.lowerBound, l.upperBound]))) }
        if let s = t.statistics {
            m += [("min", s.count > 0 ? .double(Double(s.minimum)) : .null), ("max", s.count > 0 ? .double(Double(s.maximum)) : .null),
                  ("mean", .double(s.mean)), ("std", .double(s.standardDeviation)), ("abs_max", .double(Double(s.absMax))),
                  ("zero_share", .double(s.zeroShare)), ("non_finite", JSONValue(s.nonFinite))]
            if let c = t.clampShare { m.append(("clamp_share", .double(c))) }
        }
        if let e = t.error {
            m += [("mse", .double(e.mse)), ("max_abs_error", .double(e.maxAbsError)), ("sqnr_db", .double(e.sqnrDB)),
                  ("cosine", .double(e.cosine))]
        }
        return .makeObject(m)
    }

    /// A GGUF metadata entry: key, type, the value itself for scalars, the element type and
    /// count for arrays, and the one-line summary.
    static func json(of key: String, _ v: GGUFValue) -> JSONValue {
        var m: [(String, JSONValue)] = [("key", .string(key)), ("type", .string(v.type.name))]
        switch v {
        case .array(let element, let values):
            m += [("element_type", .string(element.name)), ("count", JSONValue(values.count))]
        case .string(let s): m.append(("value", .string(s)))
        case .bool(let b): m.append(("value", .bool(b)))
        case .float32, .float64: m.append(("value", .double(v.doubleValue!)))
        case .uint64(let x) where x > UInt64(Int64.max): m.append(("value", .string(String(x))))
        default: m.append(("value", JSONValue(v.intValue ?? 0)))
        }
        m.append(("summary", .string(v.summary)))
        return .makeObject(m)
    }

    static func json(of s: ErrorSummary) -> JSONValue {
        .makeObject([("tensors", JSONValue(s.tensors)), ("elements", JSONValue(s.pooled.count)),
                     ("mse", .double(s.pooled.mse)), ("max_abs_error", .double(s.pooled.maxAbsError)),
                     ("sqnr_db", .double(s.pooled.sqnrDB)), ("cosine", .double(s.cosine))])
    }

    // MARK: Text

    /// The report as aligned text: summary, tensor table, and the sections asked for.
    public func text() -> String {
        var out = TextTable.keyValue(summaryPairs())
        if let gguf {
            out += "\nmetadata (\(gguf.metadata.count) keys)\n" + TextTable.keyValue(gguf.metadata.map { ("  " + $0.key, $0.value.summary) })
        }
        out += "\n" + storageTable().render()
        if kind == .gguf {
            var t = TextTable([.init("type", .left), .init("tensors"), .init("weights"), .init("bytes"), .init("bits/w")])
            for r in totalsByType { t.add([r.type, "\(r.tensors)", Self.grouped(r.elements), Self.grouped(r.bytes), Format.fixed(r.bitsPerWeight, 3)]) }
            out += "\ntotals by type\n" + t.render()
        }
        if kind == .eqm {
            out += "\nentropy bound: \(Format.bytes(Int(boundBytes.rounded()))) (codes at their order-0 entropy, scales, zero points and float tensors as stored); "
            out += "actual tensor data \(Format.bytes(tensorBytes)) = \(Format.fixed(actualOverBound * 100, 1))% of the bound\n"
        }
        if tensors.contains(where: { $0.statistics != nil }) { out += "\n" + statisticsTable().render() }
        if let comparedWith, let q = quantizedError, let a = allError {
            out += "\nerror against \(comparedWith)\n" + errorTable().render()
            out += "model-wide, weighted by element count:\n"
            out += TextTable.keyValue([
                ("  quantized tensors", Self.errorLine(q)),
                ("  all tensors", Self.errorLine(a)),
            ])
            if !notInFile.isEmpty {
                let one = notInFile.count == 1
                out += "  (\(notInFile.count) \(one ? "tensor" : "tensors") of the original \(one ? "is" : "are") not in the file and \(one ? "was" : "were") skipped: \(notInFile.prefix(3).joined(separator: ", "))\(notInFile.count > 3 ? ", ..." : ""))\n"
            }
        }
        for (name, h) in histograms {
            out += "\nhistogram of \(name) (\(h.total) values, \(h.bins) bins)\n" + h.renderText()
        }
        if let plotPath { out += "\nplot: \(plotPath) (\(plottedTensors.joined(separator: ", ")))\n" }
        return out
    }

    func summaryPairs() -> [(String, String)] {
        var pairs: [(String, String)] = [("file", path)]
        switch kind {
        case .eqm: pairs.append(("format", ".eqm \(formatVersion)"))
        case .gguf: pairs.append(("format", "GGUF v\(formatVersion)" + (gguf.map { ", alignment \($0.alignment)" } ?? "")))
        case .safetensors: pairs.append(("format", "safetensors"))
        }
        if let architecture { pairs.append(("architecture", architecture)) }
        for (i, s) in sources.enumerated() {
            var line = s.file
            if let b = s.bytes { line += "  \(Format.bytes(b))" }
            if let h = s.sha256 { line += "  sha256 \(h)" }
            pairs.append((i == 0 ? (sources.count > 1 ? "sources" : "source") : "", line))
        }
        if let tool {
            pairs.append(("written by", [tool, toolVersion].compactMap { $0 }.joined(separator: " ") + (created.map { ", " + $0 } ?? "")))
        }
        if let method {
            var line = method
            if let bits { line += ", \(bits)-bit" }
            if let granularity { line += ", granularity \(granularity)" }
            pairs.append(("method", line))
        }
        if let members = parameters?.objectMembers, !members.isEmpty {
            pairs.append(("parameters", members.map { "\($0.key) \($0.value.serialized())" }.joined(separator: ", ")))
        }
        if !kept.isEmpty { pairs.append(("kept in float", kept.joined(separator: ", "))) }
        if !tokenizerFiles.isEmpty { pairs.append(("tokenizer", tokenizerFiles.joined(separator: ", "))) }
        let q = quantizedTensors.count
        var tensorLine = "\(tensors.count)"
        if kind == .eqm { tensorLine += " (\(q) quantized, \(tensors.count - q) float)" + (dropped.isEmpty ? "" : ", \(dropped.count) dropped at conversion") }
        pairs.append(("tensors", tensorLine))
        pairs.append(("weights", Self.grouped(parameterCount)))
        pairs.append(("file size", "\(Format.bytes(fileBytes))  (\(Self.grouped(fileBytes)) bytes)"))
        if kind == .eqm {
            pairs.append(("bits per weight", "\(Format.fixed(bitsPerWeight, 3)) (quantized tensors), \(Format.fixed(bitsPerParameter, 3)) (all tensors), \(Format.fixed(fileBitsPerParameter, 3)) (whole file)"))
        } else {
            pairs.append(("bits per weight", Format.fixed(fileBitsPerParameter, 3) + " (whole file)"))
        }
        return pairs
    }

    func storageTable() -> TextTable {
        if kind == .gguf {
            // GGUF blocks carry their own scales: no separate scale, zero-point or entropy columns.
            var t = TextTable([.init("name", .left), .init("type", .left), .init("shape", .left), .init("bytes"), .init("bits/w")])
            for r in tensors { t.add([r.name, r.storage, Self.shapeText(r.shape), Self.grouped(r.storedBytes), Format.fixed(r.bitsPerWeight, 3)]) }
            return t
        }
        var t = TextTable([.init("name", .left), .init("shape", .left), .init("storage", .left), .init("scales", .left),
                           .init("zero points", .left), .init("bytes"), .init("bits/w"), .init("entropy b/w")])
        for r in tensors {
            t.add([r.name, Self.shapeText(r.shape), r.storage,
                   r.scaleRange.map { Format.scientific(Double($0.lowerBound), 2) + " .. " + Format.scientific(Double($0.upperBound), 2) } ?? "-",
                   r.zeroPointRange.map { Self.number($0.lowerBound) + " .. " + Self.number($0.upperBound) } ?? "-",
                   Self.grouped(r.storedBytes), Format.fixed(r.bitsPerWeight, 3),
                   r.entropyBitsPerWeight.map { Format.fixed($0, 3) } ?? "-"])
        }
        return t
    }

    func statisticsTable() -> TextTable {
        var t = TextTable([.init("name", .left), .init("min"), .init("max"), .init("mean"), .init("std"), .init("abs max"),
                           .init("zeros"), .init("at clamp")])
        for r in tensors {
            guard let s = r.statistics else { continue }
            t.add([r.name, s.count > 0 ? Format.scientific(Double(s.minimum)) : "-", s.count > 0 ? Format.scientific(Double(s.maximum)) : "-",
                   Format.scientific(s.mean), Format.scientific(s.standardDeviation), Format.scientific(Double(s.absMax)),
                   Self.percent(s.zeroShare), r.clampShare.map(Self.percent) ?? "-"])
        }
        return t
    }

    func errorTable() -> TextTable {
        var t = TextTable([.init("name", .left), .init("MSE"), .init("max abs err"), .init("SQNR dB"), .init("cosine")])
        for r in tensors {
            guard let e = r.error else { continue }
            t.add([r.name, Format.scientific(e.mse), Format.scientific(e.maxAbsError), Self.decibels(e.sqnrDB), Format.fixed(e.cosine, 6)])
        }
        return t
    }

    static func errorLine(_ s: ErrorSummary) -> String {
        "\(s.tensors) tensors, \(grouped(s.pooled.count)) weights: MSE \(Format.scientific(s.pooled.mse)), max abs err \(Format.scientific(s.pooled.maxAbsError)), SQNR \(decibels(s.pooled.sqnrDB)) dB, cosine \(Format.fixed(s.cosine, 6))"
    }

    static func decibels(_ x: Double) -> String { x.isInfinite ? (x > 0 ? "exact" : "-inf") : Format.fixed(x, 2) }
    static func percent(_ x: Double) -> String { Format.fixed(x * 100, 2) + "%" }
    static func shapeText(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }

    /// A stored float that is usually an integer (zero points): integers without decimals.
    static func number(_ x: Float) -> String {
        let d = Double(x)
        return d == d.rounded() && abs(d) < 1e15 ? Format.fixed(d, 0) : Format.scientific(d, 3)
    }

    /// 124439808 → "124,439,808".
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }
}
