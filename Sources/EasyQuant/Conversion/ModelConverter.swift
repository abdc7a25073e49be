import Foundation

/// What the user asked a conversion to do.
public struct ConversionOptions: Sendable {
    public var method: String
    public var bits: Int
    public var granularity: Granularity
    /// Tensors matching any of these stay in float (see `TensorSelection`).
    public var keep: [String]
    public var zstdLevel: Int
    public var threads: Int
    /// Whether to embed the tokenizer files found beside the source.
    public var embedTokenizer: Bool
    /// A change made to the float tensors before quantization (calibrated methods).
    public var preparation: (any ModelPreparation)?
    /// The method name the file records, when it differs from the weight quantizer's
    /// (smoothquant stores absmax weights, zeroquant group-wise ones).
    public var recordedMethod: String?
    /// The compute mode `eqppl` should use by default ("int8" for W8A8 methods).
    public var compute: ComputeMode?
    /// What the calibration was (recorded in `metadata.quantization.calibration`).
    public var calibration: JSONValue?
    /// Store the source's own codes where it has them (`ConversionSource.storedCodes`: a
    /// GGUF file's Q8_0/Q4_0/Q4_1 matrices) instead of quantizing; every other tensor is
    /// kept in float. `method` is then not used.
    public var keepSourceCodes = false

    public init(method: String = "absmax", bits: Int = 8, granularity: Granularity = .channel, keep: [String] = [],
                zstdLevel: Int = 3, threads: Int = Parallel.defaultThreads, embedTokenizer: Bool = true) {
        self.method = method; self.bits = bits; self.granularity = granularity; self.keep = keep
        self.zstdLevel = zstdLevel; self.threads = threads; self.embedTokenizer = embedTokenizer
    }
}

/// What happens to each source tensor.
public enum TensorAction: Equatable, Sendable {
    /// Quantized along output axis `axis`.
    case quantize(axis: Int)
    /// Stored as F32, with the reason.
    case keep(String)
    /// Left out of the file, with the reason.
    case drop(String)
}

/// Decides, per tensor, whether it is quantized, kept or dropped.
public struct TensorSelection: Sendable {
    public var keepPatterns: [String]
    /// The family that names the tensors; nil for a bare file of tensors (every matrix [out, in]).
    public var family: (any ModelFamily)?
    public init(keepPatterns: [String], family: (any ModelFamily)?) { self.keepPatterns = keepPatterns; self.family = family }

    /// Every 2-D weight is quantized (embeddings included) along the family's output axis;
    /// 1-D tensors (biases, norms), empty tensors and `--keep` matches stay in float;
    /// tensors the family does not count as weights (GPT-2's attention mask buffers) are
    /// dropped. `name` may be a file name or a canonical one.
    public func action(for name: String, shape: [Int]) -> TensorAction {
        guard let canonical = family.map({ $0.canonicalName(name) }) ?? name else { return .drop("buffer, not a weight") }
        if let p = keepPatterns.first(where: { Self.matches(name, canonical: canonical, pattern: $0) }) { return .keep("--keep \(p)") }
        guard shape.count == 2 else { return .keep(shape.count < 2 ? "\(shape.count)-D tensor" : "\(shape.count)-D tensor (only matrices are quantized)") }
        guard shape[0] > 0, shape[1] > 0 else { return .keep("empty tensor") }
        return .quantize(axis: family?.outputAxis(of: canonical) ?? 0)
    }

    /// Refuses a group larger than the inputs of the matrix it cuts (`axis` is the output
    /// channel axis): such a "group" would silently be the whole row.
    public static func checkGroup(_ granularity: Granularity, shape: [Int], axis: Int, name: String) throws {
        guard case .group(let n) = granularity, shape.count == 2 else { return }
        let inputs = shape[axis == 0 ? 1 : 0]
        guard n <= inputs else {
            throw QuantizationError.groupTooLarge(tensor: name, group: n, inputs: inputs)
        }
    }

    /// A pattern with `*`, `?` or `[` is a glob over the whole name (as the file spells it,
    /// or canonical); a plain pattern matches any name that contains it.
    public static func matches(_ name: String, canonical: String, pattern: String) -> Bool {
        if pattern.contains(where: { "*?[".contains($0) }) {
            return fnmatch(pattern, name, 0) == 0 || fnmatch(pattern, canonical, 0) == 0
        }
        return name.contains(pattern)
    }
}

/// What a conversion did, for the summary the tool prints.
public struct ConversionReport: Sendable {
    public var source: String
    public var output: String
    public var method: String
    public var granularity: String
    public var bits: Int
    public var quantized = 0
    public var kept = 0
    public var dropped: [String] = []
    /// Bytes of the source files.
    public var inputBytes = 0
    /// Bytes of the `.eqm` file.
    public var outputBytes = 0
    /// Elements of quantized tensors, and the bytes their codes, scales and zero points take.
    public var quantizedElements = 0
    public var quantizedStoredBytes = 0
    /// Elements of all stored tensors, and the bytes all their blobs take.
    public var totalElements = 0
    public var tensorStoredBytes = 0
    public var seconds = 0.0

    /// Stored bits per quantized weight (codes plus scales and zero points, compressed).
    public var bitsPerWeight: Double { quantizedElements == 0 ? 0 : Double(quantizedStoredBytes * 8) / Double(quantizedElements) }
    /// Stored bits per parameter over all tensors (quantized and float; tokenizer and header excluded).
    public var bitsPerParameter: Double { totalElements == 0 ? 0 : Double(tensorStoredBytes * 8) / Double(totalElements) }
    public var ratio: Double { outputBytes == 0 ? 0 : Double(inputBytes) / Double(outputBytes) }
    public var megabytesPerSecond: Double { seconds == 0 ? 0 : Double(inputBytes) / 1e6 / seconds }
}

/// Converts a safetensors model into an `.eqm` file: reader → quantizer → writer.
///
/// Tensors are read from the memory map, quantized and compressed on `threads` threads,
/// and written in source order; at most a few tensors are in memory at once, and each
/// tensor's pages are released once it is done. The source files are hashed on a thread
/// of their own meanwhile. Nothing appears at `output` unless everything succeeds.
public struct ModelConverter {
    public var options: ConversionOptions
    public var toolVersion: String

    public init(options: ConversionOptions, toolVersion: String = EasyQuantVersion.string) {
        self.options = options; self.toolVersion = toolVersion
    }

    /// Runs the conversion. `progress(done, total)` is called with source bytes processed.
    public func convert(_ source: any ConversionSource, to output: String,
                        progress: ((Int, Int) -> Void)? = nil) throws -> ConversionReport {
        try convert(source, into: EQMWriter(path: output), named: output, progress: progress)
    }

    /// The conversion of a safetensors model (file or folder).
    public func convert(_ source: SafetensorsModel, to output: String, progress: ((Int, Int) -> Void)? = nil) throws -> ConversionReport {
        try convert(SafetensorsConversionSource(source), to: output, progress: progress)
    }

    public func convert(_ source: SafetensorsModel, into writer: EQMWriter, named output: String,
                        progress: ((Int, Int) -> Void)? = nil) throws -> ConversionReport {
        try convert(SafetensorsConversionSource(source), into: writer, named: output, progress: progress)
    }

    /// Converts into a writer of any sink (`EQMWriter(sink: MemorySink())` keeps the file in memory).
    public func convert(_ source: any ConversionSource, into writer: EQMWriter, named output: String,
                        progress: ((Int, Int) -> Void)? = nil) throws -> ConversionReport {
        let start = Date()
        let method = try QuantizationMethods.make(options.method, bits: options.bits)
        let selection = TensorSelection(keepPatterns: options.keep, family: source.family)
        var report = ConversionReport(source: source.path, output: output, method: options.method,
                                      granularity: options.granularity.description, bits: options.bits)
        report.inputBytes = source.fileBytes

        // Model weights must be numbers the quantizers and the network can use: an integer
        // tensor converted to floats would silently make a different model.
        if let bad = source.entries.first(where: { !$0.isFloatingPoint && $0.canonicalName != nil }) {
            throw ModelError.unsupported(origin: source.path, reason: "tensor \(bad.storedName) is \(bad.dtype.rawValue); model weights must be a float type (F32, F16, BF16, F64)")
        }

        // Hash the sources beside the real work.
        let hashes = BackgroundHashes(paths: source.files)
        defer { _ = try? hashes.wait() }

        let recordedMethod = options.recordedMethod ?? options.method
        report.method = recordedMethod
        let plan = source.entries.map { ($0, selection.action(for: $0.storedName, shape: $0.shape)) }
        let work = plan.filter { if case .drop = $0.1 { return false } else { return true } }
        report.dropped = plan.compactMap { if case .drop = $0.1 { return $0.0.storedName } else { return nil } }
        let totalBytes = work.reduce(0) { $0 + $1.0.byteCount }

        let options = self.options
        var done = 0
        try OrderedPipeline.run(count: work.count, threads: options.threads, window: options.threads + 1, produce: { i in
            let (entry, action) = work[i]
            defer { source.release(entry) }
            if options.keepSourceCodes, case .quantize = action {
                if let q = try source.storedCodes(entry) {
                    return try PendingTensor(name: entry.storedName, quantized: q, sourceDType: entry.dtype, level: options.zstdLevel)
                }
                return try Self.encode(entry, action: .keep("no codes to keep"), from: source, method: method, granularity: options.granularity,
                                       preparation: nil, level: options.zstdLevel, threads: options.threads)
            }
            return try Self.encode(entry, action: action, from: source, method: method, granularity: options.granularity,
                                   preparation: options.preparation, level: options.zstdLevel, threads: options.threads)
        }, consume: { i, pending in
            let record = try writer.append(pending)
            if case .quantized = record.encoding {
                report.quantized += 1
                report.quantizedElements += record.elementCount
                report.quantizedStoredBytes += record.storedBytes
            } else {
                report.kept += 1
            }
            report.totalElements += record.elementCount
            report.tensorStoredBytes += record.storedBytes
            done += work[i].0.byteCount
            progress?(done, totalBytes)
        })

        let extras = options.preparation?.extraTensors ?? []
        for extra in extras {
            let record = try writer.append(PendingTensor(name: extra.name, floats: extra.values, shape: extra.shape, sourceDType: .f32, level: options.zstdLevel))
            report.kept += 1
            report.tensorStoredBytes += record.storedBytes
            // LLM.int8's f32 outlier rows are part of the weights they were taken from.
            if extra.name.hasPrefix(OutlierFeatures.prefix) { report.quantizedStoredBytes += record.storedBytes }
        }

        var metadata: [(String, JSONValue)] = []
        var model: [(String, JSONValue)] = [("architecture", .string(source.family?.name ?? "unknown"))]
        if let config = source.configJSON { model.append(("config", config)) }
        metadata.append(("model", .makeObject(model)))
        let tokenizerFiles = options.embedTokenizer ? try source.tokenizerFiles() : []
        if !tokenizerFiles.isEmpty {
            var files: [(String, JSONValue)] = []
            for (name, bytes) in tokenizerFiles {
                let blob = try bytes.withUnsafeBytes { try writer.append(CompressedBlob(compressing: $0, level: options.zstdLevel)) }
                files.append((name, blob.json))
            }
            metadata.append(("tokenizer", .makeObject([("files", .makeObject(files))])))
        }
        let digests = try hashes.wait()
        metadata.append(("provenance", .makeObject([
            ("sources", .array(zip(source.files, digests).map { path, digest in
                .makeObject([("file", .string((path as NSString).lastPathComponent)),
                             ("bytes", JSONValue(Self.fileSize(path))), ("sha256", .string(digest))])
            })),
            ("tool", "eqconvert"),
            ("tool_version", .string(toolVersion)),
            ("created", .string(ISO8601DateFormatter().string(from: Date()))),
        ])))
        var quantization: [(String, JSONValue)] = [
            ("method", .string(recordedMethod)),
            ("granularity", .string(options.granularity.description)),
            ("bits", JSONValue(options.bits)),
            ("parameters", .makeObject([("zstd_level", JSONValue(options.zstdLevel))] + (options.preparation?.parameters ?? []))),
            ("kept", .array(options.keep.map { .string($0) })),
            ("dropped", .array(report.dropped.map { .string($0) })),
        ]
        if let compute = options.compute { quantization.append(("compute", .string(compute.rawValue))) }
        if let calibration = options.calibration { quantization.append(("calibration", calibration)) }
        metadata.append(("quantization", .makeObject(quantization)))
        // LLM.int8's outlier parts change what a layer computes: readers must know them.
        let requires = extras.contains { $0.name.hasPrefix(OutlierFeatures.prefix) } ? ["outliers"] : []
        report.outputBytes = try writer.finish(metadata: .makeObject(metadata), requires: requires)
        report.seconds = Date().timeIntervalSince(start)
        return report
    }

    static func fileSize(_ path: String) -> Int {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : 0
    }

    /// Reads one tensor as floats, quantizes or keeps it, and compresses its blobs.
    static func encode(_ entry: ConversionEntry, action: TensorAction, from source: any ConversionSource,
                       method: any QuantizationMethod, granularity: Granularity, preparation: (any ModelPreparation)?,
                       level: Int, threads: Int) throws -> PendingTensor {
        let name = entry.storedName
        return try withFloats(of: entry, in: source, preparation: preparation) { values in
            switch action {
            case .quantize(let axis):
                try TensorSelection.checkGroup(granularity, shape: entry.shape, axis: axis, name: name)
                let layout = BlockLayout(shape: entry.shape, axis: axis, granularity: granularity)
                // The largest tensors (GPT-2's token embedding comes last in file order) are
                // split over all threads, so no thread idles while one finishes them.
                let q = try method.quantize(values, layout: layout, name: name, threads: values.count >= 1 << 22 ? threads : 1)
                return try PendingTensor(name: name, quantized: q, sourceDType: entry.dtype, level: level)
            case .keep:
                // Weights kept in float must be numbers too (reserved `eqm.` tensors included).
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw QuantizationError.nonFinite(tensor: name, index: bad, value: values[bad])
                }
                return try PendingTensor(name: name, floats: Array(values), shape: entry.shape, sourceDType: entry.dtype, level: level)
            case .drop:
                preconditionFailure("dropped tensors are not encoded")
            }
        }
    }

    /// Calls `body` with the tensor's values as floats, after the preparation's change if it
    /// makes one (preparations see canonical names).
    static func withFloats<R>(of entry: ConversionEntry, in source: any ConversionSource, preparation: (any ModelPreparation)? = nil,
                              _ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        if let preparation, let canonical = entry.canonicalName, preparation.changes(canonical) {
            let prepared = try source.withFloats(entry) { preparation.transform(canonical, Array($0)) }
            return try prepared.withUnsafeBufferPointer { try body($0) }
        }
        return try source.withFloats(entry, body)
    }
}

/// SHA-256 of files, computed on a background thread.
///
/// The conversion always joins it, also when it fails: a tool that exits while the thread
/// is still inside libcrypto would crash in the library's exit-time cleanup.
final class BackgroundHashes: @unchecked Sendable {
    private var result: Result<[String], Error>?
    private let group = DispatchGroup()

    init(paths: [String]) {
        group.enter()
        Thread.detachNewThread { [self] in
            result = Result { try paths.map { try SHA256Hasher.hex(ofFile: $0) } }
            group.leave()
        }
    }

    /// Waits for the digests (may be called more than once).
    func wait() throws -> [String] {
        group.wait()
        return try result!.get()
    }
}

/// The version tools write into files and print.
public enum EasyQuantVersion {
    public static let string = "0.1.0"
}
