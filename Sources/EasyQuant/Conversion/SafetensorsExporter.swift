import Foundation

/// What an export wrote.
public struct ExportReport: Sendable {
    public var source: String
    public var output: String
    public var dtype: DType
    public var tensors = 0
    public var inputBytes = 0
    public var outputBytes = 0
    public var seconds = 0.0
}

/// Writes the dequantized model of an `.eqm` file as safetensors (F32, F16 or BF16), so any
/// safetensors tool can load it. Tensors are decoded in parallel and written in file order.
/// When `output` is an existing folder, the model goes to `model.safetensors` inside it
/// together with the embedded `config.json` and tokenizer files: a Hugging Face model folder.
public struct SafetensorsExporter {
    public var dtype: DType
    public var threads: Int

    public init(dtype: DType = .f32, threads: Int = Parallel.defaultThreads) {
        precondition([.f32, .f16, .bf16].contains(dtype), "export dtype must be F32, F16 or BF16")
        self.dtype = dtype; self.threads = threads
    }

    public func export(_ eqm: EQMFile, to output: String, progress: ((Int, Int) -> Void)? = nil) throws -> ExportReport {
        let start = Date()
        var isDir: ObjCBool = false
        let intoFolder = FileManager.default.fileExists(atPath: output, isDirectory: &isDir) && isDir.boolValue
        let weightsPath = intoFolder ? (output as NSString).appendingPathComponent("model.safetensors") : output

        var metadata: [(String, String)] = [("format", "pt"), ("converted_from", (eqm.path as NSString).lastPathComponent)]
        if let method = eqm.quantizationInfo?["method"]?.stringValue { metadata.append(("eqm_method", method)) }
        // Calibration results under the reserved prefix are not model weights.
        let records = eqm.tensors.filter { !$0.name.hasPrefix(ExtraTensor.prefix) }
        // LLM.int8 layers keep some weight rows apart in f32; they go back into their matrices.
        let weights = try EQMWeightSource(file: eqm)
        let dtype = self.dtype
        let entries = records.map { SafetensorsWriter.Entry(name: $0.name, dtype: dtype, shape: $0.shape) }
        let writer = try SafetensorsWriter(path: weightsPath, entries: entries, metadata: metadata)
        try OrderedPipeline.run(count: records.count, threads: threads, window: threads + 1, produce: { i in
            var values = try eqm.floats(records[i])
            if let name = weights.family.canonicalName(records[i].name), let part = try weights.outliers(name) {
                values = part.restored(into: values, outputIsRows: weights.family.outputAxis(of: name) == 0)
            }
            var bytes = [UInt8](repeating: 0, count: values.count * dtype.byteSize)
            values.withUnsafeBufferPointer { src in
                bytes.withUnsafeMutableBytes { if src.count > 0 { FloatConversion.fromFloat(src, to: dtype, into: $0.baseAddress!) } }
            }
            return bytes
        }, consume: { i, bytes in
            try bytes.withUnsafeBytes { try writer.write($0) }
            progress?(i + 1, records.count)
        })
        try writer.finish()

        if intoFolder {
            if let config = eqm.modelConfig {
                try writeAtomically(Array(config.prettyPrinted().utf8), to: (output as NSString).appendingPathComponent("config.json"))
            }
            for name in eqm.tokenizerFileNames {
                if let bytes = try eqm.tokenizerFile(name) {
                    try writeAtomically(bytes, to: (output as NSString).appendingPathComponent(name))
                }
            }
        }
        var report = ExportReport(source: eqm.path, output: weightsPath, dtype: dtype)
        report.tensors = records.count
        report.inputBytes = eqm.file.count
        report.outputBytes = (try? FileManager.default.attributesOfItem(atPath: weightsPath)[.size] as? Int) ?? 0
        report.seconds = Date().timeIntervalSince(start)
        return report
    }
}

/// Writes a small file through a temporary name and a rename.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let out = try OutputFile(path: path)
    try out.write(bytes)
    try out.commit()
}
