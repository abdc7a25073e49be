import Foundation

/// A model file opened for inspection: an `.eqm` file, a GGUF file, or a safetensors file or folder.
public enum InspectedModel {
    case eqm(EQMFile)
    case safetensors(SafetensorsModel)
    case gguf(GGUFFile)

    /// Opens `path`, telling the formats apart by content: a file starting with the EQM magic
    /// (or named `.eqm`, so that a damaged one gets the `.eqm` reader's error) is an `.eqm`
    /// file, one starting with `GGUF` (or named `.gguf`) a GGUF file; anything else is read as
    /// safetensors.
    public static func open(_ path: String) throws -> InspectedModel {
        if EQMSniffer.isEQM(path: path) || path.hasSuffix(".eqm") { return .eqm(try EQMFile(path: path)) }
        if GGUFFile.isGGUF(path: path) || path.hasSuffix(".gguf") { return .gguf(try GGUFFile(path: path)) }
        return .safetensors(try SafetensorsModel(path: path))
    }

    /// Tensor names in file order.
    public var tensorNames: [String] {
        switch self {
        case .eqm(let f): return f.tensors.map(\.name)
        case .safetensors(let m): return m.tensors.map(\.name)
        case .gguf(let f): return f.tensors.map(\.name)
        }
    }
}

/// What to compute besides the header summary and the per-tensor table.
public struct InspectionOptions: Sendable {
    /// Per-tensor value statistics.
    public var statistics: Bool
    /// A safetensors file or folder to compare the values against.
    public var original: String?
    /// Tensors to draw a text histogram of.
    public var histogramTensors: [String]
    /// Where to write the SVG figure, if anywhere.
    public var plotPath: String?
    /// Tensors to plot; empty picks a few representative ones.
    public var plotTensors: [String]
    /// Bins of the text histograms.
    public var histogramBins: Int
    /// Bins of the plotted histograms.
    public var plotBins: Int
    /// Tensors inspected at once.
    public var threads: Int

    /// Options; the defaults give the header and the storage table only.
    public init(statistics: Bool = false, original: String? = nil, histogramTensors: [String] = [],
                plotPath: String? = nil, plotTensors: [String] = [], histogramBins: Int = 32, plotBins: Int = 120,
                threads: Int = Parallel.defaultThreads) {
        self.statistics = statistics; self.original = original; self.histogramTensors = histogramTensors
        self.plotPath = plotPath; self.plotTensors = plotTensors; self.histogramBins = histogramBins
        self.plotBins = plotBins; self.threads = threads
    }
}

/// Why an inspection could not be done; each description is one line naming the file and
/// the tensor involved.
public enum InspectionError: Error, CustomStringConvertible, Equatable {
    case noSuchTensor(file: String, tensor: String, known: [String])
    case notInOriginal(original: String, tensor: String, file: String)
    case shapeMismatch(tensor: String, file: String, shape: [Int], original: String, originalShape: [Int])
    case nothingToPlot(file: String)

    /// One line naming the file and the tensor.
    public var description: String {
        switch self {
        case let .noSuchTensor(file, tensor, known):
            let some = known.prefix(4).joined(separator: ", ") + (known.count > 4 ? ", ..." : "")
            return "\(file): no tensor named \(tensor) (it has \(known.count): \(some)); list them with eqinspect \(file)"
        case let .notInOriginal(original, tensor, file):
            return "\(original): has no tensor \(tensor), which \(file) holds; compare against the model the file was converted from"
        case let .shapeMismatch(tensor, file, shape, original, originalShape):
            return "tensor \(tensor): shape \(shape) in \(file) but \(originalShape) in \(original); compare against the model the file was converted from"
        case .nothingToPlot(let file):
            return "\(file): holds no tensors to plot"
        }
    }
}

/// Computes an `InspectionReport`: reads the header, then goes over the tensors on several
/// threads, one tensor per task, keeping only each tensor's small summary. At most
/// `threads` tensors (and their originals) are decoded at any time, so a model of any size
/// is inspected in bounded memory.
public struct ModelInspector {
    /// What to compute.
    public var options: InspectionOptions

    /// An inspector with `options`.
    public init(options: InspectionOptions = InspectionOptions()) { self.options = options }

    /// Opens `path` (an `.eqm` file, a safetensors file or a model folder) and inspects it.
    public func inspect(path: String) throws -> InspectionReport {
        try inspect(InspectedModel.open(path), path: path)
    }

    /// Inspects an opened model; `path` names it in the report and in errors.
    public func inspect(_ model: InspectedModel, path: String) throws -> InspectionReport {
        var report = try Self.header(of: model, path: path)
        let names = model.tensorNames

        // Resolve every name the user gave before any heavy work, so a typo fails at once.
        let histogramIndices = try options.histogramTensors.map { try Self.resolve($0, in: names, file: path) }
        var plotIndices: [Int] = []
        if options.plotPath != nil {
            plotIndices = try options.plotTensors.map { try Self.resolve($0, in: names, file: path) }
            if plotIndices.isEmpty { plotIndices = Self.representativeTensors(model) }
            if plotIndices.isEmpty { throw InspectionError.nothingToPlot(file: path) }
        }

        // The original, matched by name (with or without a family's optional prefix).
        var original: SafetensorsModel?
        var originalIndex: [Int: SafetensorsModel.Tensor] = [:]
        if let originalPath = options.original {
            let o = try SafetensorsModel(path: originalPath)
            var byCanonical: [String: SafetensorsModel.Tensor] = [:]
            for t in o.tensors where byCanonical[ModelFamilies.matchingName(t.name)] == nil { byCanonical[ModelFamilies.matchingName(t.name)] = t }
            for (i, name) in names.enumerated() {
                guard let t = o.tensor(name) ?? byCanonical[ModelFamilies.matchingName(name)] else {
                    throw InspectionError.notInOriginal(original: originalPath, tensor: name, file: path)
                }
                let shape = Self.shape(of: model, i)
                guard t.info.shape == shape else {
                    throw InspectionError.shapeMismatch(tensor: name, file: path, shape: shape, original: originalPath, originalShape: t.info.shape)
                }
                originalIndex[i] = t
            }
            let matched = Set(originalIndex.values.map(\.name))
            report.comparedWith = originalPath
            report.notInFile = o.tensors.map(\.name).filter { !matched.contains($0) }
            original = o
        }

        let wantHistogram = Set(histogramIndices), wantPlot = Set(plotIndices)
        let count = names.count
        let lock = Lock()
        var tensors = [TensorReport?](repeating: nil, count: count)
        var textHistograms: [Int: Histogram] = [:]
        var plotPanels: [Int: SVGPlot.Panel] = [:]
        let options = self.options
        try Parallel.forEachThrowing(count, threads: options.threads) { i in
            let work = try Self.inspectTensor(i, of: model, original: original.map { ($0, originalIndex[i]!) },
                                              statistics: options.statistics, histogramBins: wantHistogram.contains(i) ? options.histogramBins : nil,
                                              plotBins: wantPlot.contains(i) ? options.plotBins : nil)
            lock.withLock {
                tensors[i] = work.report
                if let h = work.histogram { textHistograms[i] = h }
                if let p = work.panel { plotPanels[i] = p }
            }
        }
        report.tensors = tensors.map { $0! }
        report.histograms = histogramIndices.map { (names[$0], textHistograms[$0]!) }

        if let plotPath = options.plotPath {
            let panels = plotIndices.map { plotPanels[$0]! }
            let plot = SVGPlot(title: "Weights Comparison", panels: panels, columns: panels.count == 1 ? 1 : 2)
            try writeAtomically(Array(plot.render().utf8), to: plotPath)
            report.plotPath = plotPath
            report.plottedTensors = plotIndices.map { names[$0] }
        }
        return report
    }

    /// A tensor's findings plus the histograms drawn from its values.
    struct TensorWork {
        var report: TensorReport
        var histogram: Histogram?
        var panel: SVGPlot.Panel?
    }

    static func shape(of model: InspectedModel, _ i: Int) -> [Int] {
        switch model {
        case .eqm(let f): return f.tensors[i].shape
        case .safetensors(let m): return m.tensors[i].info.shape
        case .gguf(let f): return f.tensors[i].shape
        }
    }

    /// Feeds a tensor's values to a body in order, a piece at a time: (element offset, values).
    typealias ValueStream = ((Int, UnsafeBufferPointer<Float>) throws -> Void) throws -> Void

    /// Elements per piece when dequantizing: 1 MiB of floats, small enough to stay in cache
    /// and to keep memory flat however large the tensor.
    static let chunkElements = 1 << 18

    /// Everything about tensor `i`, computed from its codes and its values streamed in pieces
    /// (a second pass only for histograms, whose range the first pass finds).
    static func inspectTensor(_ i: Int, of model: InspectedModel, original: (SafetensorsModel, SafetensorsModel.Tensor)?,
                              statistics: Bool, histogramBins: Int?, plotBins: Int?) throws -> TensorWork {
        let needValues = statistics || original != nil || histogramBins != nil || plotBins != nil
        var report: TensorReport
        var stream: ValueStream?
        var done: () -> Void = {}
        switch model {
        case .eqm(let file):
            let record = file.tensors[i]
            let dtype: String
            if case .float(let d) = record.encoding { dtype = d.rawValue.lowercased() } else { dtype = "" }
            report = TensorReport(name: record.name, shape: record.shape,
                                  storage: record.quantization.map(TensorReport.storage(of:)) ?? dtype,
                                  sourceDType: record.sourceDType.rawValue, quantization: record.quantization,
                                  elementCount: record.elementCount, storedBytes: record.storedBytes)
            if let q = record.quantization {
                let qt = try file.quantizedTensor(record)
                report.parameterBytes = (record.scales?.length ?? 0) + (record.zeroPoints?.length ?? 0)
                report.codes = CodeEntropy(qt)
                report.clampLimits = CodeEntropy.clampLimits(method: q.method, bits: q.bits, isSigned: q.isSigned)
                report.scaleRange = range(of: qt.scales)
                report.zeroPointRange = qt.zeroPoints.flatMap { range(of: $0) }
                if needValues { stream = dequantizing(qt) }
            } else if needValues {
                let values = try file.floats(record)
                stream = { body in try values.withUnsafeBufferPointer { try body(0, $0) } }
            }
        case .safetensors(let m):
            let t = m.tensors[i]
            report = TensorReport(name: t.name, shape: t.info.shape, storage: t.info.dtype.rawValue.lowercased(),
                                  sourceDType: t.info.dtype.rawValue, quantization: nil,
                                  elementCount: t.info.elementCount, storedBytes: t.info.byteCount)
            if needValues {
                stream = { body in try m.withFloats(of: t) { try body(0, $0) } }
                done = { m.release(t) }
            }
        case .gguf(let file):
            let t = file.tensors[i]
            report = TensorReport(name: t.name, shape: t.shape, storage: t.type.name, sourceDType: t.type.name,
                                  quantization: nil, elementCount: t.elementCount, storedBytes: t.byteCount)
            report.ggmlType = t.type
            if needValues {
                stream = dequantizing(t, of: file)
                done = { file.file.release(t.fileRange) }
            }
        }
        defer { done() }

        var work = TensorWork(report: report)
        guard let stream else { return work }
        let title = report.name + "  (" + report.storage + ")"
        if let (source, tensor) = original {
            defer { source.release(tensor) }
            let shard = source.shards[tensor.shard]
            let base = shard.fileRange(of: tensor.info).lowerBound, width = tensor.info.dtype.byteSize
            try source.withFloats(of: tensor) { originalValues in
                var stats = TensorStatistics(), error = ErrorMetrics()
                try stream { offset, values in
                    stats.add(values)
                    error.add(original: UnsafeBufferPointer(rebasing: originalValues[offset..<(offset + values.count)]), reconstructed: values)
                    // Done with these pages of the original unless the plot reads them again:
                    // resident memory stays at one piece, not one tensor.
                    if plotBins == nil { shard.file.release((base + offset * width)..<(base + (offset + values.count) * width)) }
                }
                work.report.error = error
                if statistics { work.report.statistics = stats }
                var o = TensorStatistics()
                if plotBins != nil { o.add(originalValues) }
                // One range for both plotted series, so the two outlines share their bins.
                let lo = Swift.min(o.minimum, stats.minimum), hi = Swift.max(o.maximum, stats.maximum)
                var text = histogramBins.map { Histogram(lower: Double(stats.minimum), upper: Double(stats.maximum), bins: $0) }
                var plotted = plotBins.map { Histogram(lower: Double(lo), upper: Double(hi), bins: $0) }
                if text != nil || plotted != nil {
                    try stream { _, values in text?.add(values); plotted?.add(values) }
                }
                work.histogram = text
                if let bins = plotBins, let plotted {
                    var ho = Histogram(lower: Double(lo), upper: Double(hi), bins: bins)
                    ho.add(originalValues)
                    work.panel = SVGPlot.Panel(title: title, series: [SVGPlot.Series(label: "original", histogram: ho),
                                                                      SVGPlot.Series(label: "quantized", histogram: plotted)])
                }
            }
            return work
        }

        var stats = TensorStatistics()
        try stream { _, values in stats.add(values) }
        if statistics { work.report.statistics = stats }
        var text = histogramBins.map { Histogram(lower: Double(stats.minimum), upper: Double(stats.maximum), bins: $0) }
        var plotted = plotBins.map { Histogram(lower: Double(stats.minimum), upper: Double(stats.maximum), bins: $0) }
        if text != nil || plotted != nil {
            try stream { _, values in text?.add(values); plotted?.add(values) }
        }
        work.histogram = text
        if let plotted { work.panel = SVGPlot.Panel(title: title, series: [SVGPlot.Series(label: "weights", histogram: plotted)]) }
        return work
    }

    /// The dequantized values of `q`, produced a block of rows at a time into one buffer.
    static func dequantizing(_ q: QuantizedTensor) -> ValueStream {
        { body in
            let rows = q.shape[0], cols = q.shape[1]
            guard rows > 0, cols > 0 else { return }
            let rowsPerChunk = Swift.max(1, chunkElements / cols)
            var buffer = [Float](repeating: 0, count: Swift.min(rows, rowsPerChunk) * cols)
            try buffer.withUnsafeMutableBufferPointer { buf in
                var r = 0
                while r < rows {
                    let end = Swift.min(rows, r + rowsPerChunk)
                    q.dequantizeRows(r..<end, into: buf.baseAddress!)
                    try body(r * cols, UnsafeBufferPointer(rebasing: buf[0..<((end - r) * cols)]))
                    r = end
                }
            }
        }
    }

    /// The dequantized values of a GGUF tensor, a block of rows at a time into one buffer.
    static func dequantizing(_ t: GGUFTensorInfo, of file: GGUFFile) -> ValueStream {
        { body in
            let rows = t.rowCount, cols = t.rowLength
            guard rows > 0, cols > 0 else { return }
            let rowsPerChunk = Swift.max(1, chunkElements / cols)
            var buffer = [Float](repeating: 0, count: Swift.min(rows, rowsPerChunk) * cols)
            try buffer.withUnsafeMutableBufferPointer { buf in
                var r = 0
                while r < rows {
                    let end = Swift.min(rows, r + rowsPerChunk)
                    try file.dequantizeRows(t, r..<end, into: buf.baseAddress!)
                    try body(r * cols, UnsafeBufferPointer(rebasing: buf[0..<((end - r) * cols)]))
                    r = end
                }
            }
        }
    }

    static func range(of xs: [Float]) -> ClosedRange<Float>? {
        guard var lo = xs.first else { return nil }
        var hi = lo
        for x in xs { lo = Swift.min(lo, x); hi = Swift.max(hi, x) }
        return lo...hi
    }

    /// The index of the tensor the user named: the exact name, else the same name with or
    /// without a family's optional prefix (GPT-2's `transformer.`).
    static func resolve(_ name: String, in names: [String], file: String) throws -> Int {
        if let i = names.firstIndex(of: name) { return i }
        if let i = names.firstIndex(where: { ModelFamilies.matchingName($0) == ModelFamilies.matchingName(name) }) { return i }
        throw InspectionError.noSuchTensor(file: file, tensor: name, known: names)
    }

    /// A few tensors that show the model's weight kinds: the token embedding, the first
    /// attention and MLP input projections and the deepest layer's MLP output projection when
    /// the names are a known family's, else up to four spread over the quantized (or all) 2-D tensors.
    public static func representativeTensors(_ model: InspectedModel) -> [Int] {
        let names = model.tensorNames
        var candidates = Array(names.indices)
        if case .eqm(let f) = model {
            let quantized = candidates.filter { f.tensors[$0].quantization != nil }
            if !quantized.isEmpty { candidates = quantized }
        }
        let matrices = candidates.filter { shape(of: model, $0).count == 2 }
        if !matrices.isEmpty { candidates = matrices }
        var picks: [Int] = []
        func add(_ i: Int?) { if let i, !picks.contains(i) { picks.append(i) } }
        let canonical = candidates.map { ($0, ModelFamilies.matchingName(names[$0])) }
        func ends(_ name: String, _ suffixes: [String]) -> Bool { suffixes.contains { name == $0 || name.hasSuffix("." + $0) } }
        add(canonical.first { ends($0.1, ["wte.weight", "model.embed_tokens.weight"]) }?.0)
        add(canonical.first { ends($0.1, ["attn.c_attn.weight", "self_attn.q_proj.weight"]) }?.0)
        add(canonical.first { ends($0.1, ["mlp.c_fc.weight", "mlp.up_proj.weight"]) }?.0)
        // The deepest layer by number: files list "h.10" before "h.9".
        func layer(_ name: String) -> Int { name.split(separator: ".").compactMap { Int($0) }.first ?? -1 }
        add(canonical.filter { ends($0.1, ["mlp.c_proj.weight", "mlp.down_proj.weight"]) }.max { layer($0.1) < layer($1.1) }?.0)
        if picks.count < 2 {
            for k in 0..<4 where !candidates.isEmpty {
                add(candidates[Swift.min(candidates.count - 1, k * (candidates.count - 1) / 3)])
            }
        }
        return picks
    }

    /// The header part of the report: provenance, conversion settings and file size.
    static func header(of model: InspectedModel, path: String) throws -> InspectionReport {
        switch model {
        case .eqm(let f):
            var r = InspectionReport(path: path, kind: .eqm, fileBytes: f.file.count,
                                     formatVersion: "\(f.majorVersion).\(f.minorVersion)")
            let provenance = f.metadata["provenance"]
            r.sources = (provenance?["sources"]?.arrayValue ?? []).map {
                InspectionReport.SourceFile(file: $0["file"]?.stringValue ?? "?", bytes: $0["bytes"]?.intValue, sha256: $0["sha256"]?.stringValue)
            }
            r.tool = provenance?["tool"]?.stringValue
            r.toolVersion = provenance?["tool_version"]?.stringValue
            r.created = provenance?["created"]?.stringValue
            let q = f.quantizationInfo
            r.method = q?["method"]?.stringValue
            r.granularity = q?["granularity"]?.stringValue
            r.bits = q?["bits"]?.intValue
            r.parameters = q?["parameters"]
            r.kept = (q?["kept"]?.arrayValue ?? []).compactMap(\.stringValue)
            r.dropped = (q?["dropped"]?.arrayValue ?? []).compactMap(\.stringValue)
            r.architecture = f.metadata["model"]?["architecture"]?.stringValue
            r.tokenizerFiles = f.tokenizerFileNames
            return r
        case .safetensors(let m):
            var r = InspectionReport(path: path, kind: .safetensors, fileBytes: m.fileBytes, formatVersion: "safetensors")
            r.sources = try m.shards.map {
                InspectionReport.SourceFile(file: ($0.path as NSString).lastPathComponent, bytes: $0.file.count,
                                            sha256: try SHA256Hasher.hex(ofFile: $0.path))
            }
            r.architecture = m.config?["model_type"]?.stringValue
            r.tokenizerFiles = m.tokenizerFiles.map(\.name)
            return r
        case .gguf(let f):
            var r = InspectionReport(path: path, kind: .gguf, fileBytes: f.file.count, formatVersion: "\(f.version)")
            r.sources = [InspectionReport.SourceFile(file: (path as NSString).lastPathComponent, bytes: f.file.count,
                                                     sha256: try SHA256Hasher.hex(ofFile: path))]
            r.architecture = f.value("general.architecture")?.stringValue
            r.gguf = InspectionReport.GGUFHeader(alignment: f.alignment, dataStart: f.dataStart, metadata: f.metadata)
            return r
        }
    }
}
